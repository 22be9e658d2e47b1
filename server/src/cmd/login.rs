//! `login` and who may do what before it, on a server with accounts
//! (`--users`): until a session logs in, only `help`, `exit` and `login`
//! (and, with `--anonymous read`, everything that only reads).

use std::net::IpAddr;

use common::text::escape;
use common::{Code, Request};

use super::{Caller, Refusal, Reply};

/// Failed logins a session may make; the last one closes it.
pub const MAX_FAILURES: u32 = 3;

/// `None` when `caller` may make `request` as far as logging in goes; else
/// why not. Rights to write are checked by the writing commands themselves
/// ([`super::files::writes_allowed`]).
pub fn admitted(request: &Request, caller: Caller<'_, '_>) -> Option<Refusal> {
    let config = &caller.shared.config;
    if config.accounts.is_none() || config.anonymous_read || caller.session.account().is_some() {
        return None;
    }
    match request {
        Request::Help | Request::Exit | Request::Login { .. } => None,
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
/// same answer after the same work; each failure waits as the address's
/// [`crate::accounts::Throttle`] says, and the [`MAX_FAILURES`]th closes the
/// session. A login takes the account's name as display name when it is free.
pub fn login<'a>(caller: Caller<'_, '_>, user: &str, password: &str) -> Result<Reply<'a>, Refusal> {
    let Some(accounts) = &caller.shared.config.accounts else {
        return Err(Refusal::new(Code::BadRequest, "this server has no accounts (it was started without --users)"));
    };
    if let Some(account) = caller.session.account() {
        return Err(Refusal::new(Code::Exists, format!("already logged in as {}", account.name)));
    }
    let (session, ip): (_, IpAddr) = (caller.session, caller.session.addr.ip());
    let Some(account) = accounts.check(user, password) else {
        let wait = caller.shared.throttle.failed(ip);
        let failures = session.login_failed();
        tracing::warn!(client = %session.name(), user = %escape(user), addr = %session.addr, "login failed ({failures} in this session)");
        std::thread::sleep(wait);
        let refusal = Refusal::new(Code::Unauthorized, "wrong name or password");
        if failures >= MAX_FAILURES {
            let message = format!("wrong name or password; {MAX_FAILURES} failed logins, closing");
            return Ok(Reply::Ended { refusal: Refusal::new(Code::Unauthorized, message), reason: "login failed" });
        }
        return Err(refusal);
    };
    caller.shared.throttle.succeeded(ip);
    let rights = account.rights();
    let name = account.name.clone();
    session.log_in(account.clone());
    if session.name() != name && caller.shared.presence.rename(session.id, &name).is_err() {
        tracing::debug!(client = %session.name(), "the account's name is in use by another session");
    }
    tracing::info!(client = %session.name(), user = %name, addr = %session.addr, "logged in ({rights})");
    let write = if account.write { "write" } else { "read" };
    let fields = vec![("user".into(), name.clone()), ("rights".into(), write.into())];
    Ok(Reply::Ok { fields, body: format!("logged in as {name} ({rights})\n").into_bytes() })
}
