//! Small text helpers both programs need: making untrusted text safe to print,
//! reading human sizes from the command line, writing durations for people,
//! and percent-encoding a value so it fits a `key=value` field.

use std::borrow::Cow;

/// Escapes every control character (and DEL) as `\xNN`, `\n`, `\t`, `\r`, so
/// text from the other side can never move a terminal's cursor or change its
/// state. Used for single-line text: names, error messages.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_keeping(s, &[])
}

/// Like [`escape`] but keeps line feeds and tabs: for multi-line bodies such as
/// `status` and `help` that are printed as they are.
pub fn escape_multiline(s: &str) -> Cow<'_, str> {
    escape_keeping(s, &['\n', '\t'])
}

/// True for characters that change how a terminal shows the text around
/// them without being seen: bidirectional overrides and isolates, marks
/// (`evil\u{202e}txt.exe` shows as `evilexe.txt`).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// True for what must never reach a terminal raw: control characters (C0,
/// DEL and C1, whose U+009B starts an escape sequence on some terminals) and
/// bidirectional controls.
pub fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

fn escape_keeping<'a>(s: &'a str, keep: &[char]) -> Cow<'a, str> {
    let needs = |c: char| is_unsafe_for_terminal(c) && !keep.contains(&c);
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if !needs(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// `1 byte`, `6 bytes`: an exact count, in words.
pub fn byte_count(n: u64) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

/// A size for people, in powers of 1024: `512 B`, `1.50 KiB`, `3.00 GiB`.
pub fn binary_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let (mut value, mut unit) = (n as f64 / 1024.0, 0);
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// A size on the command line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size '{0}': use a number of bytes, optionally with K, M, G or T (powers of 1024)")]
pub struct SizeParseError(pub String);

/// Reads `1048576`, `512K`, `10M`, `2G`, `1T` (also `10MB`, `10MiB`, any case);
/// the suffixes are powers of 1024.
///
/// # Errors
/// [`SizeParseError`] when the text is not such a size or overflows `u64`.
pub fn parse_size(s: &str) -> Result<u64, SizeParseError> {
    let err = || SizeParseError(s.to_string());
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| err())?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(err()),
    };
    number.checked_mul(1u64 << shift).ok_or_else(err)
}

/// At most `max` characters of `text`, with `…` and the number of
/// characters left out when it is cut: for logs, where a hostile name of
/// 4 KiB (16 KiB escaped) must not be written whole.
pub fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((end, _)) => {
            let rest = text[end..].chars().count();
            Cow::Owned(format!("{}… ({rest} more characters)", &text[..end]))
        }
    }
}

/// `1h 02m 03s`, `4m 05s`, `7s`.
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m {sec:02}s"),
        (h, min, sec) => format!("{h}h {min:02}m {sec:02}s"),
    }
}

/// Makes `value` fit a `key=value` field: every byte that is not an ASCII
/// letter, digit or one of `-._~/:@+,[]` becomes `%XX` (so spaces, `=`, `%`,
/// control characters and non-ASCII text all survive the trip).
pub fn encode_value(value: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~/:@+,[]".contains(&b);
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`encode_value`]; `None` for a broken `%` escape or bytes that
/// are not UTF-8.
pub fn decode_value(field: &str) -> Option<String> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = field.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes_read_as_people_expect() {
        assert_eq!(binary_size(0), "0 B");
        assert_eq!(binary_size(1023), "1023 B");
        assert_eq!(binary_size(1536), "1.50 KiB");
        assert_eq!(binary_size(3 << 30), "3.00 GiB");
    }

    #[test]
    fn escape_neutralises_terminal_sequences() {
        assert_eq!(escape("plain name.txt"), "plain name.txt");
        assert_eq!(escape("evil\x1b[2Jname"), "evil\\x1b[2Jname");
        assert_eq!(escape("a\nb\rc\td\x7f"), "a\\nb\\rc\\td\\x7f");
        assert_eq!(escape("\u{9b}31m"), "\\x9b31m");
        assert_eq!(escape_multiline("a\tb\nc\x07"), "a\tb\nc\\x07");
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
    }

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512kib"), Ok(512 << 10));
        assert_eq!(parse_size("1TB"), Ok(1 << 40));
    }

    #[test]
    fn bad_sizes_are_errors() {
        for bad in ["", "M", "-1", "1.5G", "10X", "99999999999999999999", "16777216T"] {
            assert!(parse_size(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn long_text_is_shortened_on_a_character_boundary() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("ééééé", 2), "éé… (3 more characters)");
        assert_eq!(shorten(&"x".repeat(5000), 300).len(), 300 + "… (4700 more characters)".len());
    }

    #[test]
    fn durations_read_naturally() {
        use std::time::Duration;
        assert_eq!(human_duration(Duration::from_secs(7)), "7s");
        assert_eq!(human_duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(human_duration(Duration::from_secs(3723)), "1h 02m 03s");
    }

    #[test]
    fn field_values_round_trip() {
        for value in ["plain.txt", "big file.iso", "a=b%c", "docs/ü ñ.txt", "tab\there\n", "", "[::1]:80"] {
            let encoded = encode_value(value);
            assert!(!encoded.contains([' ', '=', '\n', '\t']), "{encoded}");
            assert_eq!(decode_value(&encoded).as_deref(), Some(value));
        }
        assert_eq!(encode_value("big file.iso"), "big%20file.iso");
        for broken in ["%", "%4", "%zz", "%ff"] {
            assert_eq!(decode_value(broken), None, "{broken}");
        }
    }
}
