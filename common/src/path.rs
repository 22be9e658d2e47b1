//! Names a client asks the server for, checked before the file system sees them.
//!
//! This is the first of two fences: the server also opens every name through a
//! capability handle on the shared folder (`cap-std`), so a symlink that leads
//! out is refused there even though its name passes here.

use crate::reply::Code;

/// A relative path inside the share: `/`-separated, no `..`, no hidden
/// components, no control characters or backslashes. `a//b` and `./a` are
/// accepted and normalised to `a/b` and `a`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemotePath {
    components: Vec<String>,
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Nothing left after normalising, where a file was needed.
    #[error("a file name is required")]
    Empty,
    /// Starts with `/`.
    #[error("absolute paths are not allowed")]
    Absolute,
    /// Contains a `..` component.
    #[error("'..' is not allowed in names")]
    ParentDir,
    /// A component starts with a dot: hidden and temporary files are not served.
    #[error("hidden files are not served")]
    Hidden,
    /// Backslashes are refused so no platform reads them as a separator.
    #[error("backslashes are not allowed in names")]
    Backslash,
    /// NUL or another control character.
    #[error("control characters are not allowed in names")]
    ControlChar,
    /// A component longer than any file system takes.
    #[error("a part of the name is longer than {MAX_COMPONENT_LEN} bytes")]
    TooLong,
}

/// Longest component of a name, in bytes: what Linux file systems take.
pub const MAX_COMPONENT_LEN: usize = 255;

impl PathError {
    /// The reply code a server sends for this refusal.
    pub fn code(&self) -> Code {
        match self {
            PathError::Absolute | PathError::ParentDir | PathError::Hidden => Code::Forbidden,
            PathError::Empty | PathError::Backslash | PathError::ControlChar | PathError::TooLong => Code::BadRequest,
        }
    }
}

impl RemotePath {
    /// The share itself, as named by `list` with no argument.
    pub fn root() -> Self {
        RemotePath { components: Vec::new() }
    }

    /// Checks and normalises a name; the empty name is the root.
    ///
    /// # Errors
    /// [`PathError`] naming the first rule the text breaks.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        if text.chars().any(char::is_control) {
            return Err(PathError::ControlChar);
        }
        if text.contains('\\') {
            return Err(PathError::Backslash);
        }
        if text.starts_with('/') {
            return Err(PathError::Absolute);
        }
        let mut components = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(PathError::ParentDir),
                p if p.starts_with('.') => return Err(PathError::Hidden),
                p if p.len() > MAX_COMPONENT_LEN => return Err(PathError::TooLong),
                p => components.push(p.to_string()),
            }
        }
        Ok(RemotePath { components })
    }

    /// Like [`RemotePath::parse`] but the path must name something below the root.
    ///
    /// # Errors
    /// [`PathError::Empty`] for the root, else as [`RemotePath::parse`].
    pub fn parse_file(text: &str) -> Result<Self, PathError> {
        let path = Self::parse(text)?;
        if path.is_root() {
            return Err(PathError::Empty);
        }
        Ok(path)
    }

    /// True for the share itself.
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The last component: what a client names its local copy.
    pub fn file_name(&self) -> Option<&str> {
        self.components.last().map(String::as_str)
    }

    /// The normalised text, `.` for the root.
    pub fn as_relative(&self) -> String {
        if self.is_root() {
            ".".to_string()
        } else {
            self.components.join("/")
        }
    }

    /// The path of the folder holding this one (the root for a top-level name).
    pub fn parent(&self) -> RemotePath {
        let mut components = self.components.clone();
        components.pop();
        RemotePath { components }
    }
}

impl std::fmt::Display for RemotePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_relative())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_names_are_accepted_and_normalised() {
        assert_eq!(RemotePath::parse("a.txt").unwrap().as_relative(), "a.txt");
        assert_eq!(RemotePath::parse("docs//./a b.txt").unwrap().as_relative(), "docs/a b.txt");
        assert_eq!(RemotePath::parse("docs/").unwrap().as_relative(), "docs");
        assert!(RemotePath::parse("").unwrap().is_root());
        assert!(RemotePath::parse(".").unwrap().is_root());
        assert_eq!(RemotePath::parse("x/y").unwrap().file_name(), Some("y"));
        assert_eq!(RemotePath::parse("x/y").unwrap().parent().as_relative(), "x");
        assert_eq!(RemotePath::parse("naïve…").unwrap().as_relative(), "naïve…");
    }

    #[test]
    fn escapes_and_tricks_are_refused() {
        let long = "x".repeat(256);
        let cases = [
            ("../etc/passwd", PathError::ParentDir),
            ("docs/../../x", PathError::ParentDir),
            ("..", PathError::ParentDir),
            ("/etc/passwd", PathError::Absolute),
            ("..\\x", PathError::Backslash),
            ("a\0b", PathError::ControlChar),
            ("a\nb", PathError::ControlChar),
            ("a\x1b[1m", PathError::ControlChar),
            (".hidden", PathError::Hidden),
            ("docs/.uploads/x", PathError::Hidden),
            (long.as_str(), PathError::TooLong),
        ];
        for (text, want) in cases {
            assert_eq!(RemotePath::parse(text), Err(want), "{text:?}");
        }
        assert_eq!(RemotePath::parse_file("./"), Err(PathError::Empty));
        let longest = "y".repeat(MAX_COMPONENT_LEN);
        assert_eq!(RemotePath::parse(&format!("d/{longest}")).unwrap().file_name(), Some(longest.as_str()));
    }

    #[test]
    fn refusals_map_to_codes() {
        assert_eq!(PathError::ParentDir.code(), Code::Forbidden);
        assert_eq!(PathError::ControlChar.code(), Code::BadRequest);
    }
}
