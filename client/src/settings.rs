//! A session's local [`Settings`]: where downloads go, progress bars, JSON
//! output; set from the command line, changed by `lcd`.

use std::path::PathBuf;

use crate::progress::ProgressMode;

/// Local settings of a session.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where downloads go: `--download-dir` at first, the local folder after `lcd`.
    pub download_dir: PathBuf,
    /// When to draw progress bars.
    pub progress: ProgressMode,
    /// Standard output carries JSON objects only, one per line, each with
    /// a `type` (`--json`).
    pub json: bool,
    /// Standard output is a terminal: `cat` escapes control characters.
    pub terminal: bool,
    /// `--limit-rate`: transfers go at most this many bytes a second.
    pub limit_rate: Option<u64>,
}
