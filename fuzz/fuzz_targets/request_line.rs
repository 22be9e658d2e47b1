//! A request line as the server reads it: parsing never panics, and a
//! parsed command (other than an echo, which is the line itself) reads back
//! the same from its own encoding.
#![no_main]

use common::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    if let Ok(request) = Request::parse(line) {
        let _ = request.summary();
        if !matches!(request, Request::Echo(_)) {
            assert_eq!(Request::parse(&request.encode()), Ok(request));
        }
    }
});
