//! Property tests: the parsers never panic on any input, and what the
//! encoders write parses back to the same value.

use file_share_common::{Digest, Header, ListEntry, ListEntryKind, RemotePath, Request};
use proptest::prelude::*;

/// A name as a client may send it: printable, no line breaks, not padded.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._/-]{1,40}".prop_map(|s| s.trim().to_string()).prop_filter("non-empty", |s| !s.is_empty())
}

proptest! {
    #[test]
    fn parsers_never_panic(line in any::<String>()) {
        let _ = Request::parse(&line);
        let _ = Header::parse(&line);
        let _ = RemotePath::parse(&line);
        let _ = ListEntry::parse(&line);
        let _ = line.parse::<Digest>();
    }

    #[test]
    fn requests_round_trip(name in name(), size in any::<u64>(), bytes in any::<[u8; 32]>()) {
        for request in [
            Request::Get(name.clone()),
            Request::List(name.clone()),
            Request::Put { size, digest: Some(Digest(bytes)), name: name.clone(), replace: false, modified: None, resume: false },
            Request::Put { size, digest: None, name: name.clone(), replace: true, modified: None, resume: false },
        ] {
            prop_assert_eq!(Request::parse(&request.encode()), Ok(request));
        }
    }

    #[test]
    fn headers_round_trip(len in any::<u64>(), code in 100u16..1000, message in "[ -~]{0,80}") {
        let ok = Header::Ok { len, fields: vec![("blake3".into(), Digest([7; 32]).to_string())] };
        prop_assert_eq!(Header::parse(&ok.encode()), Ok(ok));
        let event = Header::Event { len, fields: Vec::new() };
        prop_assert_eq!(Header::parse(&event.encode()), Ok(event));
        let err = Header::err(file_share_common::Code::from_number(code), &message);
        prop_assert_eq!(Header::parse(&err.encode()), Ok(err));
    }

    #[test]
    fn accepted_paths_never_escape(text in "[a-z./\\\\]{0,20}") {
        if let Ok(path) = RemotePath::parse(&text) {
            let rel = path.as_relative();
            prop_assert!(!rel.starts_with('/'));
            prop_assert!(rel.split('/').all(|c| c != ".." && (c == "." || !c.starts_with('.'))));
        }
    }

    #[test]
    fn list_entries_round_trip(name in "[^/\n\r]{1,30}", size in any::<u64>()) {
        let entry = ListEntry { kind: ListEntryKind::File, size, modified: "2026-11-21T09:00:00Z".into(), name };
        prop_assert_eq!(ListEntry::parse(&entry.encode()), Some(entry));
    }
}
