//! Bookmarks, as `~/.ssh/config` and lftp's: named servers in
//! `~/.config/file-client/config.toml` (`$XDG_CONFIG_HOME/file-client/`),
//! so `file-client work` means what the file says:
//!
//! ```toml
//! [hosts.work]
//! address = "192.168.2.53:12345"
//! tls = true
//! user = "alice"
//! fingerprint = "3A:9F:...:C2"
//! download_dir = "~/Downloads/work"
//! ```
//!
//! What the command line says wins over a bookmark.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::cli::Args;
use crate::error::ClientError;

/// One named server.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Bookmark {
    /// `HOST`, `HOST:PORT`, `[IPv6]:PORT`.
    pub address: String,
    /// Speak TLS.
    #[serde(default)]
    pub tls: bool,
    /// Log in to this account.
    pub user: Option<String>,
    /// Accept only this certificate (implies TLS).
    pub fingerprint: Option<String>,
    /// Where downloads go.
    pub download_dir: Option<String>,
}

/// The file's content.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    hosts: BTreeMap<String, Bookmark>,
}

/// Where the bookmarks live: `$XDG_CONFIG_HOME/file-client/config.toml`,
/// else `~/.config/file-client/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("file-client").join("config.toml"))
}

/// The bookmark named `name`, if the file has one.
///
/// # Errors
/// [`ClientError::Usage`] for a file that cannot be read or is not valid.
pub fn find(name: &str) -> Result<Option<Bookmark>, ClientError> {
    let Some(path) = config_path() else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ClientError::Usage(format!("cannot read {}: {e}", path.display()))),
    };
    let config: Config =
        toml::from_str(&text).map_err(|e| ClientError::Usage(format!("{}: {}", path.display(), e.message())))?;
    Ok(config.hosts.get(name).cloned())
}

/// `args` with the bookmark its address names applied (what the command
/// line gave stays).
///
/// # Errors
/// As [`find`], and for a fingerprint that is not one.
pub fn apply(args: &Args) -> Result<Args, ClientError> {
    let Some(addr) = &args.addr else { return Ok(args.clone()) };
    let (user, name) = addr.split_once('@').map_or((None, addr.as_str()), |(u, n)| (Some(u), n));
    let Some(mark) = find(name)? else { return Ok(args.clone()) };
    let mut applied = args.clone();
    let user = user.map(str::to_string).or(mark.user.clone());
    applied.addr = Some(match user {
        Some(user) => format!("{user}@{}", mark.address),
        None => mark.address.clone(),
    });
    if applied.fingerprint.is_none() {
        if let Some(fp) = &mark.fingerprint {
            let parsed = common::tls::parse_fingerprint(fp).ok_or_else(|| {
                ClientError::Usage(format!("bookmark '{name}': fingerprint '{fp}' is not 64 hex digits"))
            })?;
            applied.fingerprint = Some(parsed);
        }
    }
    applied.tls |= mark.tls || applied.fingerprint.is_some();
    if let (Some(dir), true) = (&mark.download_dir, args.download_dir == std::path::Path::new(".")) {
        applied.download_dir = crate::local::expand_home(dir);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bookmark_file_reads_and_rejects_what_it_does_not_know() {
        let config: Config = toml::from_str(
            "[hosts.work]\naddress = \"10.0.0.5:2000\"\ntls = true\nuser = \"alice\"\ndownload_dir = \"~/dl\"\n",
        )
        .unwrap();
        let work = &config.hosts["work"];
        assert_eq!((work.address.as_str(), work.tls, work.user.as_deref()), ("10.0.0.5:2000", true, Some("alice")));
        assert!(toml::from_str::<Config>("[hosts.x]\naddress = \"a\"\nport = 1\n").is_err(), "a typo is an error");
    }
}
