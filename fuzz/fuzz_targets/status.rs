//! An `info` body from an untrusted server: parsing never panics, and what
//! parses renders and reads back the same from its own encoding.
#![no_main]

use common::Status;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &str| {
    if let Ok(status) = Status::parse(body) {
        let _ = status.render();
        assert_eq!(Status::parse(&status.encode()), Ok(status));
    }
});
