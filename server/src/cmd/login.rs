//! `login` and who may do what before it, on a server with accounts
//! (`--users`): until a session logs in, only `help`, `exit` and `login`
//! (and, with `--anonymous read`, everything that only reads).

use std::time::{Duration, Instant};

use common::text::escape;
use common::{Code, Request};

use super::{Caller, Op, Outcome, Refusal};

/// Failed logins a session may make; the last one closes it.
pub const MAX_FAILURES: u32 = 3;

/// `None` when `caller` may do `op` as far as logging in goes; else
/// why not. Rights to write are checked by the writing commands themselves
/// ([`super::files::writes_allowed`]).
pub fn admitted(op: &Op, caller: Caller<'_, '_>) -> Option<Refusal> {
    let config = &caller.shared.config;
    if !config.login_required() || caller.session.account().is_some() {
        return None;
    }
    match op {
        Op::Request(Request::Help | Request::Exit | Request::Login { .. }) => None,
        _ => Some(Refusal::new(Code::Unauthorized, "log in first: login <name> <password> (file-client USER@HOST)")),
    }
}

/// A display name that is an account's may be taken only by that account.
pub fn may_take_name(nick: &str, caller: Caller<'_, '_>) -> Result<(), Refusal> {
    let Some(accounts) = &caller.shared.config.accounts else { return Ok(()) };
    let own = caller.session.account().is_some_and(|a| a.name == nick);
    if accounts.contains(nick) && !own {
        let message = format!("'{}' is an account's name; log in as it to use it", escape(nick));
        return Err(Refusal::new(Code::Forbidden, message));
    }
    Ok(())
}

/// `login <name> <password>`. An unknown name and a wrong password get the
/// same answer after the same work, and every answer, success or failure,
/// comes [`crate::accounts::Penalties::base`] after the attempt began, so
/// silence tells a guesser nothing. A source or account that is penalised
/// (or has a login being checked) is refused at once with `429` and the
/// wait, without a password check. The [`MAX_FAILURES`]th failure closes the
/// session. A login takes the account's name as display name when it is free.
pub fn login<'a>(caller: Caller<'_, '_>, user: &str, password: &str) -> Result<Outcome<'a>, Refusal> {
    let (Some(accounts), Some(checks)) = (&caller.shared.config.accounts, &caller.shared.password_checks) else {
        return Err(Refusal::new(Code::BadRequest, "this server has no accounts (it was started without --users)"));
    };
    let session = caller.session;
    if let Some(account) = session.account() {
        return Err(Refusal::new(Code::Exists, format!("already logged in as {}", account.name)));
    }
    let penalties = &caller.shared.penalties;
    let started = Instant::now();
    let attempt = match penalties.begin(session.addr.ip(), user) {
        Ok(attempt) => attempt,
        Err(wait) => {
            tracing::debug!(client = %session.name(), user = %escape(user), addr = %session.addr, "login refused: penalised");
            return Err(too_many(wait));
        }
    };
    let checked = checks.check(accounts, user, password);
    // Successes and failures alike are answered after the same time.
    std::thread::sleep(penalties.base().saturating_sub(started.elapsed()));
    let account = match checked {
        Err(busy) => return Err(Refusal::new(Code::TooMany, format!("{busy}; try again in 1s")).with_retry_after(1)),
        Ok(None) => {
            attempt.failed();
            let failures = session.login_failed();
            tracing::warn!(client = %session.name(), user = %escape(user), addr = %session.addr, "login failed ({failures} in this session)");
            if failures >= MAX_FAILURES {
                let message = format!("wrong name or password; {MAX_FAILURES} failed logins, closing");
                return Ok(Outcome::Ended {
                    refusal: Refusal::new(Code::Unauthorized, message),
                    reason: "login failed",
                });
            }
            return Err(Refusal::new(Code::Unauthorized, "wrong name or password"));
        }
        Ok(Some(account)) => {
            attempt.succeeded();
            account
        }
    };
    let rights = account.rights();
    let name = account.name.clone();
    session.log_in(account.clone());
    if session.name() != name && caller.shared.presence.rename(session.id, &name).is_err() {
        tracing::debug!(client = %session.name(), "the account's name is in use by another session");
    }
    tracing::info!(client = %session.name(), user = %name, addr = %session.addr, "logged in ({rights})");
    let write = if account.write { "write" } else { "read" };
    let fields = vec![("user".into(), name.clone()), ("rights".into(), write.into())];
    Ok(Outcome::Ok { fields, body: format!("logged in as {name} ({rights})\n").into_bytes() })
}

/// The refusal of a login made too soon: `429`, and how long to wait, in
/// whole seconds (rounded up), as `retry_after=` for programs.
fn too_many(wait: Duration) -> Refusal {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Refusal::new(Code::TooMany, format!("too many failed logins; try again in {secs}s")).with_retry_after(secs)
}
