//! One-shot use, as scp and ssh are used: `file-client HOST[:PORT]:PATH
//! [LOCAL]` downloads, `file-client LOCAL... HOST[:PORT]:PATH` uploads (a
//! folder with `-r`), and `file-client HOST COMMAND ARGS...` runs one
//! command as `-c` would. Each becomes an address and commands for the batch
//! runner, so TLS, logins, verification, exit codes and `--json` are the
//! same as ever.

use std::path::Path;

use crate::cli::Args;
use crate::command::quote_word;
use crate::error::ClientError;

/// `[USER@]HOST[:PORT]:PATH` split into the address and the path; `None`
/// for anything else (an address alone, a local path).
pub fn remote_spec(word: &str) -> Option<(String, String)> {
    if word.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let (host, rest) = match word.strip_prefix('[').or_else(|| word.split_once("@[").map(|(_, r)| r)) {
        Some(_) => {
            let end = word.find(']')?;
            (&word[..=end], &word[end + 1..])
        }
        None => word.split_at(word.find(':')?),
    };
    // A local path with a colon in it (`./a:b`, `dir/x:y`) is no host.
    if host.is_empty() || host.contains('/') {
        return None;
    }
    let rest = rest.strip_prefix(':')?;
    if rest.is_empty() {
        return Some((host.to_string(), String::new()));
    }
    match rest.split_once(':') {
        Some((port, path)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some((format!("{host}:{port}"), path.to_string()))
        }
        // `HOST:PORT` alone is an address.
        _ if rest.bytes().all(|b| b.is_ascii_digit()) => None,
        _ => Some((host.to_string(), rest.to_string())),
    }
}

/// The arguments as the batch runner takes them: an address and commands.
/// Unchanged when there are no words beyond the address.
///
/// # Errors
/// [`ClientError::Usage`] for copies both ways, between two servers, or
/// without a local side.
pub fn plan(args: &Args) -> Result<Args, ClientError> {
    let Some(first) = args.addr.clone() else { return Ok(args.clone()) };
    let mut words = vec![first];
    words.extend(args.rest.iter().cloned());
    let specs: Vec<Option<(String, String)>> = words.iter().map(|w| remote_spec(w)).collect();
    let remote_count = specs.iter().filter(|s| s.is_some()).count();
    let mut planned = args.clone();
    planned.rest.clear();
    let r = if args.recursive { "-r " } else { "" };
    match (remote_count, specs.first().cloned().flatten(), specs.last().cloned().flatten()) {
        (0, _, _) if words.len() == 1 => return Ok(args.clone()),
        // `HOST COMMAND ARGS...`: one command, its words quoted back.
        (0, _, _) => {
            let (command, words) = words[1..].split_first().expect("two words at least");
            let line = std::iter::once(command.clone()).chain(words.iter().map(|w| quote_word(w))).collect::<Vec<_>>();
            planned.commands.push(line.join(" "));
        }
        // Download: `HOST:PATH [LOCAL]`.
        (1, Some((addr, path)), _) if words.len() <= 2 => {
            planned.addr = Some(addr);
            match words.get(1) {
                Some(local) if Path::new(local).is_dir() => {
                    planned.download_dir = local.into();
                    planned.commands.push(format!("get {r}{}", quote_word(&path)));
                }
                Some(_) if args.recursive => {
                    return Err(ClientError::Usage("get -r: the local side must be an existing folder".into()));
                }
                Some(local) => planned.commands.push(format!("get {} {}", quote_word(&path), quote_word(local))),
                None => planned.commands.push(format!("get {r}{}", quote_word(&path))),
            }
        }
        // Upload: `LOCAL... HOST:PATH`.
        (1, _, Some((addr, path))) => {
            planned.addr = Some(addr);
            let locals: Vec<String> = words[..words.len() - 1].iter().map(|w| quote_word(w)).collect();
            let target = if path.is_empty() { String::new() } else { format!(" {}", quote_word(&path)) };
            if args.recursive {
                for local in locals {
                    planned.commands.push(format!("put -r {local}{target}"));
                }
            } else {
                planned.commands.push(format!("put {}{target}", locals.join(" ")));
            }
        }
        _ => {
            return Err(ClientError::Usage(
                "copy from one server (HOST:PATH [LOCAL]) or to one (LOCAL... HOST:PATH), not both".into(),
            ))
        }
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::remote_spec;

    #[test]
    fn remote_specs_are_told_from_addresses_and_local_paths() {
        let spec = remote_spec;
        assert_eq!(spec("nas:docs/a.txt"), Some(("nas".into(), "docs/a.txt".into())));
        assert_eq!(spec("nas:12345:a b.txt"), Some(("nas:12345".into(), "a b.txt".into())));
        assert_eq!(spec("alice@10.0.0.5:2000:/top.txt"), Some(("alice@10.0.0.5:2000".into(), "/top.txt".into())));
        assert_eq!(spec("[::1]:2000:x"), Some(("[::1]:2000".into(), "x".into())));
        assert_eq!(spec("[::1]:x"), Some(("[::1]".into(), "x".into())));
        assert_eq!(spec("nas:"), Some(("nas".into(), String::new())), "the share's top");
        for not in ["nas", "nas:12345", "::1", "10.0.0.5", "./a:b", "dir/x:y", "[::1]:2000", "plain.txt"] {
            assert_eq!(spec(not), None, "{not}");
        }
    }
}
