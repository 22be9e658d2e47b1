//! Whole folders: `get -r` and `put -r`.
//!
//! Both walk the tree first (the remote one with one `list` per folder, the
//! local one without following symlinks), make the folders, and skip every
//! file already there with the same size and BLAKE3 (the remote hashes come
//! from pipelined `hash` requests), so running the command again finishes at
//! once and an interrupted tree continues where it stopped. Downloads are
//! pipelined: up to [`WINDOW`] requests are in flight while replies stream,
//! so a tree of small files costs no round trip per file. One progress line
//! covers the tree.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::text::escape;
use common::{Digest, ListEntryKind, Request};

use crate::command::Mirror;
use crate::connection::Transfer;
use crate::download::{Pending, Stop, Watch};
use crate::error::ClientError;
use crate::link::Transfers;
use crate::part::local_base_name;
use crate::progress::{Progress, ProgressMode};
use crate::render::{self, print};
use crate::settings::Settings;
use crate::upload::PendingPut;

/// Downloads asked for ahead of the one being read.
pub const WINDOW: usize = 32;

/// A tree as listed: folders and files, by path relative to its top.
#[derive(Debug, Default)]
struct Tree {
    dirs: Vec<String>,
    /// Path and size.
    files: Vec<(String, u64)>,
    /// Symlinks left out (local trees only: the server never lists links out).
    links: usize,
}

/// How a tree transfer went, for its report.
#[derive(Debug, Default)]
struct Tally {
    /// Files and folders removed (`--delete`).
    removed: usize,
    moved: usize,
    bytes: u64,
    identical: usize,
    /// Files that differ from what is there, left alone without `-f`.
    differ: Vec<String>,
    /// Files that failed, with why.
    failed: Vec<String>,
    cancelled: bool,
}

/// What a tree copy was: its verb, the tree as typed, where it went, and
/// the local symlinks it did not follow.
#[derive(Clone, Copy)]
struct Copied<'a> {
    verb: &'a str,
    what: &'a str,
    to: &'a str,
    links: usize,
}

impl Tally {
    /// `get -r 'docs': 12 files ...`; an error when something was left
    /// behind, so a script sees it.
    fn finish(self, copy: &Copied<'_>, started: Instant, json: bool, out: &mut dyn Write) -> Result<(), ClientError> {
        let Copied { verb, what, to, links } = *copy;
        if json {
            let summary = serde_json::json!({
                "type": "tree", "operation": verb, "name": what, "to": to, "files": self.moved, "bytes": self.bytes,
                "identical": self.identical, "differ": self.differ, "failed": self.failed.len(),
                "symlinks_skipped": links, "cancelled": self.cancelled, "removed": self.removed,
            });
            print(out, &render::json_line(&summary))?;
        }
        let files = if self.moved == 1 { "1 file".to_string() } else { format!("{} files", self.moved) };
        let mut line = format!(
            "{verb} -r '{}': {files} ({}, {}), {} identical and skipped",
            escape(what),
            indicatif::BinaryBytes(self.bytes),
            render::rate(self.bytes, started),
            self.identical
        );
        if links > 0 {
            line.push_str(&format!(", {links} symlinks not followed"));
        }
        if self.removed > 0 {
            line.push_str(&format!(", {} removed", self.removed));
        }
        line.push_str(&format!(" -> {}\n", escape(to)));
        if !json {
            print(out, &line)?;
        }
        if self.cancelled {
            return Err(ClientError::Cancelled(format!(": {verb} -r again continues where it stopped")));
        }
        if !self.differ.is_empty() {
            let names: Vec<String> = self.differ.iter().take(5).map(|n| format!("'{}'", escape(n))).collect();
            let more = if self.differ.len() > 5 { ", ..." } else { "" };
            let (n, were) = match self.differ.len() {
                1 => ("1 file differs".to_string(), "was"),
                n => (format!("{n} files differ"), "were"),
            };
            return Err(ClientError::Local(format!(
                "{n} from what is there and {were} left alone ({}{more}); {verb} -r -f replaces them",
                names.join(", ")
            )));
        }
        if let Some(first) = self.failed.first() {
            return Err(ClientError::Local(format!("{} files failed; the first: {first}", self.failed.len())));
        }
        Ok(())
    }
}

/// One progress line for a tree: bytes of all its files, and how many are done.
struct TreeBar {
    bar: Progress,
    /// Bytes of the files finished.
    done: u64,
    files: usize,
    total_files: usize,
    current: u64,
}

impl TreeBar {
    fn new(mode: ProgressMode, verb: &str, name: &str, bytes: u64, files: usize) -> TreeBar {
        let mut tree = TreeBar {
            bar: Progress::new(mode, verb, name, bytes, 0),
            done: 0,
            files: 0,
            total_files: files,
            current: 0,
        };
        tree.bar.set_message(&format!("0/{files} files"));
        tree
    }

    /// A whole file of `bytes` is done (or skipped).
    fn file_done(&mut self, bytes: u64) {
        self.done += bytes;
        self.current = 0;
        self.files += 1;
        self.bar.set(self.done);
        self.bar.set_message(&format!("{}/{} files", self.files, self.total_files));
    }
}

impl Watch for TreeBar {
    fn begin(&mut self, _name: &str, offset: u64, _len: u64) {
        self.current = offset;
        self.bar.set(self.done + offset);
    }

    fn step(&mut self, offset: u64, step: Transfer) {
        match step {
            Transfer::Moved(n) => {
                self.current = offset + n;
                self.bar.set(self.done + self.current);
            }
            Transfer::Waiting => self.bar.tick(),
        }
    }

    fn end(&mut self, _whole: bool) {}
}

impl Transfers<'_> {
    /// `get -r DIR`: the remote folder `root` (`word` as typed, relative
    /// to the share's top) into `DIR` in the download folder.
    pub(crate) fn get_tree(
        &mut self,
        word: &str,
        root: &str,
        force: bool,
        mirror: Mirror,
        out: &mut dyn Write,
    ) -> Result<(), ClientError> {
        let started = Instant::now();
        let root = root.to_string();
        // A mirror makes the destination equal: what differs is replaced.
        let force = force || mirror.delete;
        let local_root = if root.is_empty() {
            self.settings.download_dir.clone()
        } else {
            self.settings.download_dir.join(local_base_name(&root)?)
        };
        if !self.link.is_remote_dir(&root)? {
            return Err(ClientError::Usage(format!("get -r: '{}' is not a folder on the server", escape(word))));
        }
        let tree = self.remote_tree(&root)?;
        // What is here and not there: removed with --delete.
        let here = if local_root.is_dir() { local_tree(&local_root)? } else { Tree::default() };
        let extra = extras(&here, &tree);
        if !mirror.dry_run {
            local_dir(&local_root)?;
            for dir in &tree.dirs {
                local_dir(&local_root.join(dir))?;
            }
        }
        let mut tally = Tally::default();
        // What is there already: the same size is checked by hash, anything
        // else is fetched (or, without -f, left alone).
        let (mut fetch, mut check) = (Vec::new(), Vec::new());
        for (rel, size) in &tree.files {
            match fs::symlink_metadata(local_root.join(rel)) {
                Err(_) => fetch.push((rel.clone(), *size)),
                Ok(meta) if meta.is_file() && meta.len() == *size => check.push((rel.clone(), *size)),
                Ok(meta) if meta.is_file() && force => fetch.push((rel.clone(), *size)),
                Ok(_) => tally.differ.push(rel.clone()),
            }
        }
        let remote = |rel: &str| if root.is_empty() { rel.to_string() } else { format!("{root}/{rel}") };
        let names: Vec<String> = check.iter().map(|(rel, _)| remote(rel)).collect();
        let hashes = self.remote_hashes(&names)?;
        for ((rel, size), remote_hash) in check.into_iter().zip(hashes) {
            let local = local_hash(&local_root.join(&rel))?;
            if Some(local) == remote_hash {
                tally.identical += 1;
            } else if force {
                fetch.push((rel, size));
            } else {
                tally.differ.push(rel);
            }
        }
        if mirror.dry_run {
            let fetching: Vec<&str> = fetch.iter().map(|(rel, _)| rel.as_str()).collect();
            return plan(out, self.settings.json, "get", &fetching, mirror.delete.then_some(&extra));
        }
        let bytes: u64 = fetch.iter().map(|(_, size)| size).sum();
        let mut bar = TreeBar::new(self.settings.progress, "get", &root, bytes, fetch.len());
        let stop = Stop::new(self.link.interrupt_flag());
        let mut in_flight: VecDeque<(String, Pending)> = VecDeque::new();
        let mut next = fetch.iter();
        loop {
            while in_flight.len() < WINDOW && !tally.cancelled {
                let Some((rel, _)) = next.next() else { break };
                let dir = local_root.join(rel).parent().map_or_else(|| local_root.clone(), Path::to_path_buf);
                match self.start_download(&dir, &remote(rel), force, true) {
                    Ok(pending) => in_flight.push_back((rel.clone(), pending)),
                    Err(e @ ClientError::Connection(_)) => return Err(e),
                    Err(e) => tally.failed.push(format!("'{}': {e}", escape(rel))),
                }
            }
            let Some((rel, pending)) = in_flight.pop_front() else { break };
            match self.finish_download(pending, &stop, &mut bar) {
                Ok(got) => {
                    tally.moved += 1;
                    tally.bytes += got.bytes;
                    bar.file_done(got.bytes);
                }
                Err(ClientError::Cancelled(_)) => tally.cancelled = true,
                Err(e @ (ClientError::Connection(_) | ClientError::OutputClosed)) => return Err(e),
                Err(e) => tally.failed.push(format!("'{}': {e}", escape(rel.as_str()))),
            }
            if stop.is_interrupted() {
                tally.cancelled = true;
            }
        }
        bar.bar.finish();
        self.end_stop(&stop, Ok(()))?;
        // Only once everything came: a mirror never loses a file to a failure.
        if mirror.delete && !tally.cancelled && tally.failed.is_empty() {
            tally.removed = remove_local(&local_root, &extra)?;
        }
        let to = local_root.to_string_lossy().into_owned();
        tally.finish(&Copied { verb: "get", what: word, to: &to, links: 0 }, started, self.settings.json, out)
    }

    /// `put -r DIR [REMOTE]`: the local folder `word` (found by
    /// [`local_folder`]) into `root` (relative to the share's top) on the
    /// server. Symlinks are not followed.
    pub(crate) fn put_tree(
        &mut self,
        word: &str,
        local_root: &Path,
        root: &str,
        force: bool,
        mirror: Mirror,
        out: &mut dyn Write,
    ) -> Result<(), ClientError> {
        let started = Instant::now();
        let (local_root, root) = (local_root.to_path_buf(), root.to_string());
        // A mirror makes the destination equal: what differs is replaced.
        let force = force || mirror.delete;
        let local = local_tree(&local_root)?;
        let exists = self.link.is_remote_dir(&root)?;
        let there = if exists { self.remote_tree(&root)? } else { Tree::default() };
        let extra = extras(&there, &local);
        let remote = |rel: &str| if root.is_empty() { rel.to_string() } else { format!("{root}/{rel}") };
        if !mirror.dry_run {
            if !exists {
                self.make_remote_dir(&root)?;
            }
            for dir in &local.dirs {
                if !there.dirs.contains(dir) {
                    self.make_remote_dir(&remote(dir))?;
                }
            }
        }
        let sizes: HashMap<&str, u64> = there.files.iter().map(|(rel, size)| (rel.as_str(), *size)).collect();
        let mut tally = Tally::default();
        let (mut send, mut check) = (Vec::new(), Vec::new());
        for (rel, size) in &local.files {
            match sizes.get(rel.as_str()) {
                None => send.push((rel.clone(), *size, false)),
                Some(there) if there == size => check.push((rel.clone(), *size)),
                Some(_) if force => send.push((rel.clone(), *size, true)),
                Some(_) => tally.differ.push(rel.clone()),
            }
        }
        let names: Vec<String> = check.iter().map(|(rel, _)| remote(rel)).collect();
        let hashes = self.remote_hashes(&names)?;
        for ((rel, size), remote_hash) in check.into_iter().zip(hashes) {
            if Some(local_hash(&local_root.join(&rel))?) == remote_hash {
                tally.identical += 1;
            } else if force {
                send.push((rel, size, true));
            } else {
                tally.differ.push(rel);
            }
        }
        if mirror.dry_run {
            let sending: Vec<&str> = send.iter().map(|(rel, _, _)| rel.as_str()).collect();
            return plan(out, self.settings.json, "put", &sending, mirror.delete.then_some(&extra));
        }
        let bytes: u64 = send.iter().map(|(_, size, _)| size).sum();
        let mut bar = TreeBar::new(self.settings.progress, "put", &root, bytes, send.len());
        // The tree's line shows the progress; each file's own bar stays hidden.
        let quiet = Settings { progress: ProgressMode::Never, ..self.settings.clone() };
        let mut quietly = Transfers { link: &mut *self.link, settings: &quiet };
        quietly.put_files(send, &local_root, &remote, &mut tally, &mut bar)?;
        bar.bar.finish();
        // Only once everything went: a mirror never loses a file to a failure.
        if mirror.delete && !tally.cancelled && tally.failed.is_empty() {
            for (rel, _) in &extra.files {
                self.link.text_request(&Request::Remove(remote(rel)))?;
                tally.removed += 1;
            }
            for rel in &extra.dirs {
                self.link.text_request(&Request::RemoveTree(remote(rel)))?;
                tally.removed += 1;
            }
        }
        let to = format!("/{root}");
        tally.finish(&Copied { verb: "put", what: word, to: &to, links: local.links }, started, self.settings.json, out)
    }

    /// Uploads `send` (relative name, size, replace) in turn. One upload's
    /// request goes while the server stores the one before: replies come in
    /// order, so only each go-ahead is waited for.
    fn put_files(
        &mut self,
        send: Vec<(String, u64, bool)>,
        local_root: &Path,
        remote_of: &dyn Fn(&str) -> String,
        tally: &mut Tally,
        bar: &mut TreeBar,
    ) -> Result<(), ClientError> {
        let mut files = send.into_iter();
        let mut next = self.request_next_put(&mut files, local_root, remote_of, tally)?;
        while let Some((mut upload, rel, size)) = next.take() {
            let sent = self.put_bytes(&mut upload);
            if sent.is_ok() && !self.link.is_interrupted() {
                next = self.request_next_put(&mut files, local_root, remote_of, tally)?;
            }
            match sent.and_then(|()| self.put_report(upload)) {
                Ok(_) => {
                    tally.moved += 1;
                    tally.bytes += size;
                    bar.file_done(size);
                }
                Err(ClientError::Cancelled(_)) => {
                    tally.cancelled = true;
                    return Ok(());
                }
                Err(e @ ClientError::Connection(_)) => return Err(e),
                Err(e) => tally.failed.push(format!("'{}': {e}", escape(&rel))),
            }
            if self.link.is_interrupted() {
                tally.cancelled = true;
                if let Some((ahead, _, _)) = next {
                    self.withdraw_put(ahead)?;
                }
                return Ok(());
            }
            if next.is_none() {
                // This one's bytes were refused, so nothing was sent ahead.
                next = self.request_next_put(&mut files, local_root, remote_of, tally)?;
            }
        }
        Ok(())
    }

    /// Sends the `put` request of the next file of `files` that can be
    /// read (one that cannot is counted as failed); `None` when none is left.
    fn request_next_put(
        &mut self,
        files: &mut impl Iterator<Item = (String, u64, bool)>,
        local_root: &Path,
        remote_of: &dyn Fn(&str) -> String,
        tally: &mut Tally,
    ) -> Result<Option<(PendingPut, String, u64)>, ClientError> {
        for (rel, size, replace) in files {
            // A file cut short by an earlier run goes on from what the server kept.
            let how = crate::command::PutHow { replace, resume: true };
            match self.put_request(&local_root.join(&rel), &remote_of(&rel), how) {
                Ok(upload) => return Ok(Some((upload, rel, size))),
                Err(e @ ClientError::Connection(_)) => return Err(e),
                Err(e) => tally.failed.push(format!("'{}': {e}", escape(&rel))),
            }
        }
        Ok(None)
    }

    /// Every folder and file below remote folder `root`, one `list` each.
    fn remote_tree(&mut self, root: &str) -> Result<Tree, ClientError> {
        let mut tree = Tree::default();
        let mut pending = VecDeque::from([String::new()]);
        while let Some(rel) = pending.pop_front() {
            let dir = match (root.is_empty(), rel.is_empty()) {
                (_, true) => root.to_string(),
                (true, false) => rel.clone(),
                (false, false) => format!("{root}/{rel}"),
            };
            let mut entries = Vec::new();
            self.link.each_entry(&dir, &mut |entry| entries.push(entry))?;
            for entry in entries {
                let path = if rel.is_empty() { entry.name } else { format!("{rel}/{}", entry.name) };
                match entry.kind {
                    ListEntryKind::Dir => {
                        tree.dirs.push(path.clone());
                        pending.push_back(path);
                    }
                    ListEntryKind::File => tree.files.push((path, entry.size)),
                }
            }
        }
        Ok(tree)
    }

    /// The BLAKE3 of each remote file, asked for all at once (pipelined);
    /// `None` for one the server could not hash.
    fn remote_hashes(&mut self, names: &[String]) -> Result<Vec<Option<Digest>>, ClientError> {
        let mut hashes = Vec::with_capacity(names.len());
        for chunk in names.chunks(WINDOW * 4) {
            for name in chunk {
                self.link.conn().send(&Request::Hash(name.clone()))?;
            }
            for _ in chunk {
                let hash = match self.link.read_text_reply() {
                    Ok(body) => body.split_whitespace().next().and_then(|hex| hex.parse().ok()),
                    Err(ClientError::Remote { .. }) => None,
                    Err(e) => return Err(e),
                };
                hashes.push(hash);
            }
        }
        Ok(hashes)
    }

    /// `mkdir`, where a folder of that name already there is fine.
    fn make_remote_dir(&mut self, dir: &str) -> Result<(), ClientError> {
        match self.link.text_request(&Request::Mkdir(dir.to_string())) {
            Ok(_) => Ok(()),
            Err(ClientError::Remote { code: common::Code::Exists, .. }) if self.link.is_remote_dir(dir)? => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A local folder for a download, made if missing; never a symlink.
/// The local folder `put -r WORD` sends, and the remote name it takes when
/// none is given (its own).
///
/// # Errors
/// [`ClientError::Usage`] when `word` is not a folder (symlinks are not
/// followed) or has no usable name.
pub(crate) fn local_folder(word: &str) -> Result<(PathBuf, String), ClientError> {
    let local_root = crate::local::expand_home(word);
    let meta = fs::symlink_metadata(&local_root).map_err(|e| ClientError::Local(format!("'{word}': {e}")))?;
    if !meta.is_dir() {
        return Err(ClientError::Usage(format!(
            "put -r: '{}' is not a folder (symlinks are not followed)",
            escape(word)
        )));
    }
    let name = local_root
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .unwrap_or_default();
    Ok((local_root, name))
}

fn local_dir(path: &Path) -> Result<(), ClientError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(meta) if meta.file_type().is_symlink() => {
            Err(ClientError::Local(format!("'{}' is a symlink; a tree is never written through one", path.display())))
        }
        Ok(_) => Err(ClientError::Local(format!("'{}' exists and is not a folder", path.display()))),
        Err(_) => {
            fs::create_dir(path).map_err(|e| ClientError::Local(format!("cannot make '{}': {e}", path.display())))
        }
    }
}

/// A local tree, symlinks left out (and counted).
fn local_tree(root: &Path) -> Result<Tree, ClientError> {
    let mut tree = Tree::default();
    let mut pending = VecDeque::from([PathBuf::new()]);
    while let Some(rel) = pending.pop_front() {
        let dir = root.join(&rel);
        let read =
            fs::read_dir(&dir).map_err(|e| ClientError::Local(format!("cannot read '{}': {e}", dir.display())))?;
        let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            let path = rel.join(&name);
            let Ok(kind) = entry.file_type() else { continue };
            let text = path.to_string_lossy().into_owned();
            if kind.is_symlink() {
                tree.links += 1;
            } else if kind.is_dir() {
                tree.dirs.push(text);
                pending.push_back(path);
            } else if kind.is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                tree.files.push((text, size));
            }
        }
    }
    Ok(tree)
}

/// What `ours` has that `theirs` does not: files in folders they both
/// have, and the top-most folders they lack (with all in them).
fn extras(ours: &Tree, theirs: &Tree) -> Tree {
    let their_files: std::collections::HashSet<&str> = theirs.files.iter().map(|(rel, _)| rel.as_str()).collect();
    let their_dirs: std::collections::HashSet<&str> = theirs.dirs.iter().map(String::as_str).collect();
    let mut dirs: Vec<String> = Vec::new();
    for dir in &ours.dirs {
        let inside_one = dirs.iter().any(|d| dir.starts_with(&format!("{d}/")));
        if !their_dirs.contains(dir.as_str()) && !inside_one {
            dirs.push(dir.clone());
        }
    }
    let files = ours
        .files
        .iter()
        .filter(|(rel, _)| !their_files.contains(rel.as_str()))
        .filter(|(rel, _)| !dirs.iter().any(|d| rel.starts_with(&format!("{d}/"))))
        .cloned()
        .collect();
    Tree { dirs, files, links: 0 }
}

/// Removes `extra` (relative to `root`) from the local tree: files, then
/// folders with all in them. Nothing outside `root`: the names come from
/// walking it, links never followed.
fn remove_local(root: &Path, extra: &Tree) -> Result<usize, ClientError> {
    let fail = |path: &Path, e: std::io::Error| ClientError::Local(format!("cannot remove '{}': {e}", path.display()));
    for (rel, _) in &extra.files {
        let path = root.join(rel);
        fs::remove_file(&path).map_err(|e| fail(&path, e))?;
    }
    for rel in &extra.dirs {
        let path = root.join(rel);
        fs::remove_dir_all(&path).map_err(|e| fail(&path, e))?;
    }
    Ok(extra.files.len() + extra.dirs.len())
}

/// `-n`: what a tree copy would do, and nothing done: `verb` for each name
/// to copy, `remove` for each to remove (with `--delete`).
fn plan(out: &mut dyn Write, json: bool, verb: &str, copy: &[&str], remove: Option<&Tree>) -> Result<(), ClientError> {
    let removals: Vec<String> = remove
        .map(|extra| {
            extra.files.iter().map(|(rel, _)| rel.clone()).chain(extra.dirs.iter().map(|d| format!("{d}/"))).collect()
        })
        .unwrap_or_default();
    let lines = copy.iter().map(|rel| (verb, rel.to_string())).chain(removals.into_iter().map(|rel| ("remove", rel)));
    for (action, name) in lines {
        let line = if json {
            render::json_line(&serde_json::json!({ "type": "plan", "action": action, "name": name }))
        } else {
            format!("would {action} {}\n", escape(&name))
        };
        print(out, &line)?;
    }
    Ok(())
}

/// BLAKE3 of a local file.
fn local_hash(path: &Path) -> Result<Digest, ClientError> {
    let file =
        fs::File::open(path).map_err(|e| ClientError::Local(format!("cannot read '{}': {e}", path.display())))?;
    Digest::of_reader(io::BufReader::with_capacity(256 * 1024, file))
        .map_err(|e| ClientError::Local(format!("cannot read '{}': {e}", path.display())))
}
