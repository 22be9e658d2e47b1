//! The content hash named in `get` replies and `put` requests.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

/// A 32-byte BLAKE3 hash, written on the wire as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

/// The text was not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a BLAKE3 hash (64 hex digits): '{0}'")]
pub struct DigestParseError(pub String);

impl Digest {
    /// The hash of everything `reader` yields (a file from its current
    /// position to its end).
    ///
    /// # Errors
    /// As the reader's.
    pub fn of_reader(reader: impl Read) -> io::Result<Digest> {
        Ok(Digest::from(blake3::Hasher::new().update_reader(reader)?.finalize()))
    }
}

impl From<blake3::Hash> for Digest {
    fn from(hash: blake3::Hash) -> Digest {
        Digest(*hash.as_bytes())
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DigestParseError(crate::text::escape(s).into_owned());
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| err())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| err())?;
        }
        Ok(Digest(bytes))
    }
}

impl fmt::Display for Digest {
    /// Lower-case hex, written at once (a web answer's `ETag` each time).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xf)];
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let d = Digest(std::array::from_fn(|i| (i * 7) as u8));
        let text = d.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<Digest>().unwrap(), d);
        assert_eq!(text.to_uppercase().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn a_readers_hash_is_blake3_of_its_bytes() {
        let data = vec![42u8; 100_000];
        assert_eq!(Digest::of_reader(&data[..]).unwrap(), Digest::from(blake3::hash(&data)));
        assert_eq!(Digest::of_reader(io::empty()).unwrap().to_string(), blake3::hash(b"").to_hex().as_str());
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert!("abc".parse::<Digest>().is_err());
        assert!("g".repeat(64).parse::<Digest>().is_err());
        assert!("é".repeat(32).parse::<Digest>().is_err());
        assert!("+1".repeat(32).parse::<Digest>().is_err());
    }
}
