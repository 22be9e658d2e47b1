//! The commands about who is here: `status` (for people), `info` (the same
//! as data), `name`, `say`.

use common::text::escape;
use common::{Code, Event};

use super::{Caller, Outcome, Refusal};
use crate::presence::{SAY_BURST, SAY_PER_SEC};

/// `status`: the text a person reads; the header carries the counts.
pub fn status<'a>(caller: Caller<'_, '_>) -> Outcome<'a> {
    Outcome::Status { status: Box::new(caller.shared.presence.status(caller.session.id)), records: false }
}

/// `info`: the same state, for programs (as `key=value` records on the line protocol).
pub fn info<'a>(caller: Caller<'_, '_>) -> Outcome<'a> {
    Outcome::Status { status: Box::new(caller.shared.presence.status(caller.session.id)), records: true }
}

/// `name <nick>`: a new display name, unique among those connected; the
/// others are told.
pub fn rename<'a>(caller: Caller<'_, '_>, nick: &str) -> Result<Outcome<'a>, Refusal> {
    common::validate_nick(nick).map_err(|e| Refusal::new(Code::BadRequest, format!("{e}: '{}'", escape(nick))))?;
    super::login::may_take_name(nick, caller)?;
    let old = caller.shared.presence.rename(caller.session.id, nick)?;
    tracing::info!(client = %old, "is now {nick}");
    Ok(Outcome::text(format!("you are now {nick}\n")))
}

/// `say <text>`: the line goes to everyone else, with the sender's name;
/// the reply says how many got it. Each client may say [`SAY_BURST`] bytes
/// at once and [`SAY_PER_SEC`] a second after that; beyond, nothing is sent.
pub fn say<'a>(caller: Caller<'_, '_>, text: &str) -> Result<Outcome<'a>, Refusal> {
    let name = caller.session.name();
    let line = format!("[{name}] {}", escape(text));
    if !caller.session.spend_say(line.len() as u64) {
        let (burst, rate) = (SAY_BURST / 1024, SAY_PER_SEC / 1024);
        let message = format!("too much said too fast (at most {burst} KiB at once, {rate} KiB a second); not sent");
        return Err(Refusal::new(Code::TooMany, message));
    }
    let event = Event::notice(line).with("event", "say").with("name", &name);
    let recipients = caller.shared.presence.broadcast_from(caller.session.id, event);
    Ok(Outcome::Ok { fields: vec![("recipients".into(), recipients.to_string())], body: Vec::new() })
}

#[cfg(test)]
mod tests {

    use super::super::testing::{ok_text, refused, Bench};
    use super::super::{apply_line, Outcome};
    use crate::config::Config;

    #[test]
    fn status_and_info_tell_the_same_state() {
        let bench = Bench::new(Config::default());
        let (me, _) = bench.join(5000);
        let (_other, _) = bench.join(5001);
        let Outcome::Status { status, records: false } = apply_line("status", bench.caller(&me)) else { panic!() };
        assert_eq!((status.clients, status.max_clients), (2, 3));
        let text = status.render();
        assert!(text.contains("\n  Client01 (you)  127.0.0.1:5000  connected "), "{text}");
        assert!(text.contains("\n  Client02  127.0.0.1:5001  connected "), "{text}");

        let Outcome::Status { status: info, records: true } = apply_line("info", bench.caller(&me)) else { panic!() };
        assert_eq!((info.clients, info.max_clients), (2, 3));
        assert_eq!(
            info.sessions.iter().map(|s| (s.name.as_str(), s.you)).collect::<Vec<_>>(),
            [("Client01", true), ("Client02", false)]
        );
        assert_eq!(info.render().lines().nth(2), text.lines().nth(2));
    }

    #[test]
    fn name_is_validated_unique_and_announced() {
        let bench = Bench::new(Config::default());
        let (me, _) = bench.join(1);
        let (other, other_events) = bench.join(2);
        assert_eq!(ok_text(apply_line("name alice", bench.caller(&me))), "you are now alice\n");
        assert_eq!(other_events.try_recv().unwrap().text, "Client01 is now alice\n");
        assert_eq!(refused(apply_line("name ALICE", bench.caller(&other))), (409, "the name 'ALICE' is taken".into()));
        assert_eq!(refused(apply_line("name Client07", bench.caller(&other))).0, 400);
        assert_eq!(refused(apply_line("name a b", bench.caller(&other))).0, 400);
    }

    #[test]
    fn say_reaches_everyone_else_escaped() {
        let bench = Bench::new(Config::default());
        let (me, my_events) = bench.join(1);
        let (_a, a_events) = bench.join(2);
        let (_b, b_events) = bench.join(3);
        let Outcome::Ok { fields, body } = apply_line("say hi\x1b[2J there", bench.caller(&me)) else { panic!() };
        assert_eq!((fields, body), (vec![("recipients".to_string(), "2".to_string())], Vec::new()));
        for events in [&a_events, &b_events] {
            let said = events.try_iter().last().unwrap();
            assert_eq!(said.text, "[Client01] hi\\x1b[2J there\n");
            assert_eq!((said.field("event"), said.field("name")), (Some("say"), Some("Client01")));
        }
        assert!(my_events.try_iter().all(|e| e.field("event") != Some("say")), "not to the sender");
    }

    #[test]
    fn saying_too_much_too_fast_is_refused_and_nothing_is_sent() {
        let bench = Bench::new(Config::default());
        let (me, _) = bench.join(1);
        let (_other, other_events) = bench.join(2);
        // 4 KiB of control characters escape to 16 KiB a line.
        let line = format!("say {}", "\x01".repeat(4000));
        let mut sent = 0;
        let refusal = loop {
            match apply_line(&line, bench.caller(&me)) {
                Outcome::Ok { .. } => sent += 1,
                reply => break refused(reply),
            }
            assert!(sent < 100, "never refused");
        };
        assert_eq!(refusal.0, 429);
        assert!(refusal.1.contains("too much said too fast"), "{}", refusal.1);
        assert!((3..=4).contains(&sent), "{sent} lines of 16 KiB within 64 KiB");
        assert_eq!(other_events.try_iter().filter(|e| e.field("event") == Some("say")).count(), sent);
        assert_eq!(ok_text(apply_line("ping", bench.caller(&me))), "ping ACK\n", "the session goes on");
    }
}
