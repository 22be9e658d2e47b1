//! Display names chosen with `name <nick>`.

/// Longest display name, in characters.
pub const MAX_NICK_LEN: usize = 32;

/// Why a display name was refused as invalid (a taken name is the server's call).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NickError {
    /// Empty or longer than [`MAX_NICK_LEN`].
    #[error("a name has 1 to {MAX_NICK_LEN} characters")]
    Length,
    /// A character other than letters, digits, `-`, `_`, `.`.
    #[error("a name may contain only letters, digits, '-', '_' and '.'")]
    Character,
    /// `ClientNN` names are the ones the server assigns.
    #[error("names like ClientNN are reserved for the server's own naming")]
    Reserved,
}

/// Checks a display name: 1 to 32 ASCII letters, digits, `-`, `_` or `.`,
/// and not of the `ClientNN` form the server assigns (so a nick can never
/// collide with a name given to a later client).
///
/// # Errors
/// [`NickError`] naming the rule broken.
pub fn validate_nick(nick: &str) -> Result<(), NickError> {
    if nick.is_empty() || nick.chars().count() > MAX_NICK_LEN {
        return Err(NickError::Length);
    }
    if !nick.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(NickError::Character);
    }
    let lower = nick.to_ascii_lowercase();
    if lower.strip_prefix("client").is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())) {
        return Err(NickError::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_names() {
        for ok in ["alice", "Bob_2", "a.b-c", "x", &"n".repeat(32), "Client", "clientA1"] {
            assert_eq!(validate_nick(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_nick(""), Err(NickError::Length));
        assert_eq!(validate_nick(&"n".repeat(33)), Err(NickError::Length));
        assert_eq!(validate_nick("with space"), Err(NickError::Character));
        assert_eq!(validate_nick("évé"), Err(NickError::Character));
        assert_eq!(validate_nick("a\x1b"), Err(NickError::Character));
        assert_eq!(validate_nick("Client07"), Err(NickError::Reserved));
        assert_eq!(validate_nick("client123"), Err(NickError::Reserved));
    }
}
