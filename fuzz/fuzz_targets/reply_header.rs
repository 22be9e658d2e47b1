//! A header line as the client reads it from an untrusted server: parsing
//! never panics, and what parses encodes (as the client does in an error
//! message) without panicking and reads back the same.
#![no_main]

use common::Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    if let Ok(header) = Header::parse(line) {
        let encoded = header.encode();
        let plain_message = match &header {
            Header::Err { message, .. } => !message.chars().any(char::is_control),
            _ => true,
        };
        if plain_message {
            assert_eq!(Header::parse(&encoded), Ok(header));
        }
    }
});
