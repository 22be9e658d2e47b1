//! A name a client asks for: whatever parses names only something inside
//! the share (no `..`, not absolute, nothing hidden, no backslash or control
//! character, no part over 255 bytes) and normalises to itself.
#![no_main]

use common::path::MAX_COMPONENT_LEN;
use common::RemotePath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(path) = RemotePath::parse(text) {
        let relative = path.as_relative();
        if !path.is_root() {
            for part in relative.split('/') {
                assert!(!part.is_empty() && !part.starts_with('.'), "{relative:?}");
                assert!(part.len() <= MAX_COMPONENT_LEN);
                assert!(!part.contains('\\') && !part.chars().any(char::is_control));
            }
        }
        assert_eq!(RemotePath::parse(&relative), Ok(path));
    }
});
