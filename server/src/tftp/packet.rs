//! TFTP packets (RFC 1350, options RFC 2347): parsing never panics on any
//! bytes, and encoding a parsed packet gives it back.

use std::fmt;

/// Largest block size a client may ask for (RFC 2348).
pub const MAX_BLKSIZE: usize = 65464;

/// TFTP error codes (RFC 1350, 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0: see the message.
    Undefined,
    /// 1: file not found.
    NotFound,
    /// 2: access violation.
    AccessViolation,
    /// 3: disk full or allocation exceeded.
    DiskFull,
    /// 4: illegal TFTP operation.
    IllegalOperation,
    /// 5: unknown transfer ID.
    UnknownTransfer,
    /// 6: file already exists.
    FileExists,
    /// 8: option negotiation refused.
    BadOptions,
}

impl ErrorCode {
    fn number(self) -> u16 {
        match self {
            ErrorCode::Undefined => 0,
            ErrorCode::NotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTransfer => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::BadOptions => 8,
        }
    }

    fn from_number(n: u16) -> ErrorCode {
        match n {
            1 => ErrorCode::NotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTransfer,
            6 => ErrorCode::FileExists,
            8 => ErrorCode::BadOptions,
            _ => ErrorCode::Undefined,
        }
    }
}

/// One TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// 1 and 2: a read or write request, with its options in order (names
    /// lower-cased).
    Request {
        /// True for a write (WRQ).
        write: bool,
        /// The file name as sent.
        name: String,
        /// `octet` or `netascii` (lower-cased); anything else is refused later.
        mode: String,
        /// Options, lower-cased names, values as sent.
        options: Vec<(String, String)>,
    },
    /// 3: a block of the file.
    Data {
        /// Its number (wraps past 65,535).
        block: u16,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// 4: all blocks up to this one arrived.
    Ack(u16),
    /// 5: the transfer ends.
    Error {
        /// Why.
        code: ErrorCode,
        /// Said how.
        message: String,
    },
    /// 6: the options the server takes.
    OptionAck(Vec<(String, String)>),
}

/// Bytes that are not a TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// NUL-terminated strings from `bytes`, each as text (lossless for ASCII;
/// a name that is not UTF-8 is refused).
fn strings(bytes: &[u8]) -> Result<Vec<String>, Malformed> {
    if bytes.last() != Some(&0) {
        return Err(Malformed("a string is not NUL-terminated"));
    }
    bytes[..bytes.len() - 1]
        .split(|&b| b == 0)
        .map(|s| String::from_utf8(s.to_vec()).map_err(|_| Malformed("a string is not UTF-8")))
        .collect()
}

impl Packet {
    /// Reads a packet.
    ///
    /// # Errors
    /// [`Malformed`] for anything that is not one.
    pub fn parse(bytes: &[u8]) -> Result<Packet, Malformed> {
        if bytes.len() < 4 {
            return Err(Malformed("too short"));
        }
        let opcode = u16::from_be_bytes([bytes[0], bytes[1]]);
        let rest = &bytes[2..];
        let number = u16::from_be_bytes([rest[0], rest[1]]);
        match opcode {
            1 | 2 => {
                let parts = strings(rest)?;
                if parts.len() < 2 || parts.len() % 2 != 0 {
                    return Err(Malformed("a request is a name, a mode and option pairs"));
                }
                let options =
                    parts[2..].chunks(2).map(|pair| (pair[0].to_ascii_lowercase(), pair[1].clone())).collect();
                Ok(Packet::Request {
                    write: opcode == 2,
                    name: parts[0].clone(),
                    mode: parts[1].to_ascii_lowercase(),
                    options,
                })
            }
            3 => Ok(Packet::Data { block: number, bytes: rest[2..].to_vec() }),
            4 if rest.len() == 2 => Ok(Packet::Ack(number)),
            5 => {
                let message = match &rest[2..] {
                    [] => String::new(),
                    text => strings(text)?.join(" "),
                };
                Ok(Packet::Error { code: ErrorCode::from_number(number), message })
            }
            6 => {
                let parts = strings(rest)?;
                if parts.len() % 2 != 0 {
                    return Err(Malformed("options come in pairs"));
                }
                Ok(Packet::OptionAck(parts.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()))
            }
            _ => Err(Malformed("unknown opcode")),
        }
    }

    /// The packet's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let text = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        match self {
            Packet::Request { write, name, mode, options } => {
                out.extend_from_slice(&(if *write { 2u16 } else { 1 }).to_be_bytes());
                text(&mut out, name);
                text(&mut out, mode);
                for (k, v) in options {
                    text(&mut out, k);
                    text(&mut out, v);
                }
            }
            Packet::Data { block, bytes } => {
                out.extend_from_slice(&3u16.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
                out.extend_from_slice(bytes);
            }
            Packet::Ack(block) => {
                out.extend_from_slice(&4u16.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => {
                out.extend_from_slice(&5u16.to_be_bytes());
                out.extend_from_slice(&code.number().to_be_bytes());
                text(&mut out, &message.replace('\0', " "));
            }
            Packet::OptionAck(options) => {
                out.extend_from_slice(&6u16.to_be_bytes());
                for (k, v) in options {
                    text(&mut out, k);
                    text(&mut out, v);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_with_options_parse_and_round_trip() {
        let bytes = b"\x00\x01boot/fw.bin\x00OCTET\x00BlkSize\x001468\x00tsize\x000\x00";
        let packet = Packet::parse(bytes).unwrap();
        assert_eq!(
            packet,
            Packet::Request {
                write: false,
                name: "boot/fw.bin".into(),
                mode: "octet".into(),
                options: vec![("blksize".into(), "1468".into()), ("tsize".into(), "0".into())],
            }
        );
        assert_eq!(Packet::parse(&packet.encode()), Ok(packet));
        for p in [
            Packet::Data { block: 65535, bytes: vec![1, 2, 3] },
            Packet::Ack(0),
            Packet::Error { code: ErrorCode::NotFound, message: "no such file".into() },
            Packet::OptionAck(vec![("windowsize".into(), "16".into())]),
        ] {
            assert_eq!(Packet::parse(&p.encode()), Ok(p));
        }
    }

    #[test]
    fn no_bytes_make_it_panic_and_what_parses_round_trips() {
        // A cheap deterministic fuzz: every short prefix and many random packets.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let len = (next() % 40) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| (next() % 8) as u8).collect();
            if len >= 2 {
                bytes[1] = (next() % 8) as u8;
                bytes[0] = 0;
            }
            if let Ok(packet) = Packet::parse(&bytes) {
                let again = Packet::parse(&packet.encode());
                // An error's text is joined and re-split; the rest is exact.
                if !matches!(packet, Packet::Error { .. }) {
                    assert_eq!(again.as_ref(), Ok(&packet), "{bytes:?}");
                }
            }
        }
    }
}
