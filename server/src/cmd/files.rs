//! The commands on the share: `list`, `get` and `resume`, `put`.

use std::io::{self, Read, Seek, SeekFrom};
use std::time::Instant;

use common::pace::Pace;
use common::status::Activity;
use common::{Code, Digest, Header, RemotePath};

use super::{Caller, Outcome, Refusal};
use crate::presence::SessionInfo;
use crate::repo::{Download, RepoError, Upload, UploadPlan};

/// A `get` or `resume` reply: the header, then `download.len` bytes of the file.
pub struct FileReply {
    /// `OK <len> blake3=...`, with `offset=` and `size=` when resuming.
    pub header: Header,
    /// The opened file, positioned at the first byte to send.
    pub download: Download,
    /// Its name in the share, for `status` and logs.
    pub name: String,
}

/// `list [dir]`: one line per visible entry, sorted by name.
pub fn list<'a>(caller: Caller<'_, '_>, dir: &str) -> Result<Outcome<'a>, Refusal> {
    let path = RemotePath::parse(dir).map_err(|e| Refusal::bad_name(&e, dir))?;
    Ok(Outcome::Listing(caller.shared.repo.list(&path)?))
}

/// A description of `path` and, with `children`, of what is in it when it
/// is a folder ([`super::Op::Describe`], WebDAV's `PROPFIND`): each entry
/// with its BLAKE3 when that is known without reading the file. The
/// children are read as they are sent, so a big folder is never held.
pub fn describe<'a>(caller: Caller<'_, '_>, path: &str, children: bool) -> Result<Outcome<'a>, Refusal> {
    let path = RemotePath::parse(path).map_err(|e| Refusal::bad_name(&e, path))?;
    let repo = &caller.shared.repo;
    let entry = repo.stat(&path)?;
    let digest = match entry.kind {
        common::ListEntryKind::File => repo.known_digest(&path),
        common::ListEntryKind::Dir => None,
    };
    let children = match entry.kind {
        common::ListEntryKind::Dir if children => Some(repo.entries(&path)?.with_digests(repo)),
        _ => None,
    };
    Ok(Outcome::Described { this: crate::repo::Described { entry, digest }, children })
}

/// One folder of a tree being archived ([`super::Op::ArchiveFolder`]):
/// what `list` shows, less folders reached through a symbolic link, so a
/// walk of the tree never loops.
pub fn archive_folder<'a>(caller: Caller<'_, '_>, dir: &str) -> Result<Outcome<'a>, Refusal> {
    let path = RemotePath::parse(dir).map_err(|e| Refusal::bad_name(&e, dir))?;
    let repo = &caller.shared.repo;
    let mut entries = repo.list(&path)?;
    entries.retain(|e| {
        e.kind == common::ListEntryKind::File
            || RemotePath::parse(&format!("{path}/{}", e.name)).is_ok_and(|child| !repo.is_link(&child))
    });
    Ok(Outcome::Listing(entries))
}

/// A file opened for reading without hashing it.
pub struct PlainFile {
    /// Open, at its start.
    pub file: std::fs::File,
    /// Its length.
    pub len: u64,
    /// When it was last changed.
    pub modified: Option<std::time::SystemTime>,
}

/// A file opened for reading without hashing it ([`super::Op::ReadPlain`]:
/// an archive of a tree, a TFTP read; neither carries a hash), through the
/// same sandbox as `get`.
pub fn open_plain<'a>(caller: Caller<'_, '_>, name: &str) -> Result<Outcome<'a>, Refusal> {
    let path = RemotePath::parse_file(name).map_err(|e| Refusal::bad_name(&e, name))?;
    let (file, meta) = caller.shared.repo.open_file(&path)?;
    Ok(Outcome::Plain(PlainFile { file, len: meta.len(), modified: meta.modified().ok() }))
}

/// `get` (offset 0) and `resume`: the bytes from `offset` on; the hash is
/// always the whole file's, so a resumed download can be checked.
pub fn get<'a>(caller: Caller<'_, '_>, name: &str, offset: u64) -> Result<Outcome<'a>, Refusal> {
    let path = RemotePath::parse_file(name).map_err(|e| Refusal::bad_name(&e, name))?;
    let mut download = caller.shared.repo.open_download(&path, caller.wanted)?;
    if offset > download.len {
        let message = format!("'{path}' has only {} bytes; cannot resume from {offset}", download.len);
        return Err(Refusal::new(Code::BadRequest, message));
    }
    let mut fields = vec![("blake3".into(), download.digest.to_string())];
    if let Some(modified) = download.modified {
        fields.push(("modified".into(), crate::repo::rfc3339(modified)));
    }
    if offset > 0 {
        download
            .file
            .seek(SeekFrom::Start(offset))
            .map_err(|e| RepoError::Io { context: format!("cannot read '{path}'"), source: e })?;
        fields.push(("offset".into(), offset.to_string()));
        fields.push(("size".into(), download.len.to_string()));
        download.len -= offset;
    }
    let header = Header::Ok { len: download.len, fields };
    Ok(Outcome::File(FileReply { header, download, name: path.to_string() }))
}

/// How an upload's bytes are checked before they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Against the BLAKE3 the request announced before the bytes: a
    /// cut-short upload is kept for `put -c`.
    Before(Digest),
    /// Against the BLAKE3 that comes after the bytes, in `END ok blake3=`
    /// (`put … -`, framed only): the client hashes while it sends. A
    /// cut-short upload is kept too, as bytes of unknown content.
    After,
    /// Not at all, for a front end whose clients send no hash (HTTP `PUT`,
    /// TFTP): the file is stored once its bytes have arrived, and nothing
    /// is kept of a cut-short one.
    Unchecked,
}

/// What a `put` line announces about the bytes to come.
pub struct Announced {
    /// How many.
    pub size: u64,
    /// How they are checked.
    pub check: Check,
    /// Replace a file of the name (`-f`).
    pub replace: bool,
    /// The modification time to give the file (`-m`), Unix seconds.
    pub modified: Option<u64>,
    /// Go on from what was kept of a cut-short upload (`-c`).
    pub resume: bool,
}

/// `put [-f] [-c] [-m <secs>] <size> <blake3|-> <name>`: every check that can be made before the
/// bytes are sent (uploads on, the name, the size, the folder, the name
/// free), then a temporary file to receive them.
pub fn put<'a>(caller: Caller<'a, '_>, announced: Announced, name: &str) -> Result<Outcome<'a>, Refusal> {
    let Announced { size, check, replace, modified, resume } = announced;
    let config = &caller.shared.config;
    writes_allowed(caller)?;
    let path = RemotePath::parse_file(name).map_err(|e| Refusal::bad_name(&e, name))?;
    if size > config.max_upload_size {
        let max = config.max_upload_size;
        let message = format!("'{path}' is {size} bytes; this server accepts uploads of at most {max} bytes");
        return Err(Refusal::new(Code::TooLarge, message));
    }
    let digest = match check {
        Check::Before(digest) => digest,
        Check::After if resume => {
            return Err(Refusal::new(Code::BadRequest, "put -c needs the hash before the bytes, not '-'"));
        }
        Check::After | Check::Unchecked => crate::repo::UNKNOWN_CONTENT,
    };
    let plan = UploadPlan { replace, resume, size, digest };
    let mut upload = caller.shared.repo.begin_upload(&path, plan)?;
    if check == Check::Unchecked {
        upload.discard();
    }
    let name = path.to_string();
    Ok(Outcome::Receive(Box::new(Incoming {
        upload,
        size,
        check,
        modified,
        name,
        session: caller.session,
        started: Instant::now(),
        failed: None,
        rate: caller.shared.config.max_rate_per_client,
    })))
}

/// A reader no faster than its pace (none: as fast as it comes).
struct Paced<'r, R: Read> {
    inner: &'r mut R,
    pace: Option<Pace>,
}

impl<R: Read> Read for Paced<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(pace) = &mut self.pace else { return self.inner.read(buf) };
        let most = usize::try_from(pace.chunk()).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..most])?;
        pace.took(n as u64);
        Ok(n)
    }
}

/// Uploads and every other change to the share need `--allow-uploads`,
/// and on a server with accounts, an account with the right to write.
pub fn writes_allowed(caller: Caller<'_, '_>) -> Result<(), Refusal> {
    if caller.shared.config.accounts.is_some() {
        match caller.session.account() {
            None => {
                return Err(Refusal::new(Code::Unauthorized, "log in with an account that may write to change files"))
            }
            Some(account) if !account.write => {
                let message = format!("the account '{}' may only read", account.name);
                return Err(Refusal::new(Code::Forbidden, message));
            }
            Some(_) => {}
        }
    }
    if caller.shared.config.allow_uploads {
        return Ok(());
    }
    let message = "uploads are disabled on this server (it was started without --allow-uploads)";
    Err(Refusal::new(Code::Forbidden, message))
}

/// An accepted upload waiting for its bytes. Dropped before [`Incoming::finish`],
/// nothing is stored.
pub struct Incoming<'a> {
    upload: Upload<'a>,
    size: u64,
    check: Check,
    /// The time to give the stored file, Unix seconds.
    modified: Option<u64>,
    name: String,
    session: &'a SessionInfo,
    started: Instant,
    /// Writing failed (the disk is full); the bytes were read all the same.
    failed: Option<io::Error>,
    /// `--max-rate-per-client`: the bytes are read no faster.
    rate: Option<u64>,
}

impl Incoming<'_> {
    /// Bytes announced.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether its hash comes after the bytes (`put … -`), which only
    /// frames can carry.
    pub fn hash_at_end(&self) -> bool {
        self.check == Check::After
    }

    /// Bytes already there, kept of an earlier attempt (`put -c`): the
    /// client sends the rest.
    pub fn offset(&self) -> u64 {
        self.upload.written()
    }

    /// The go-ahead: `OK 0`, with `offset=` when resuming.
    pub fn go_ahead(&self) -> Header {
        match self.offset() {
            0 => Header::ok(0),
            offset => Header::Ok { len: 0, fields: vec![("offset".into(), offset.to_string())] },
        }
    }

    /// Reads exactly the announced bytes from `from`, showing the progress
    /// in `status` and counting it as a sign of life. A disk that fails
    /// meanwhile is reported by [`Incoming::finish`]; the bytes are read all
    /// the same, so the session goes on.
    ///
    /// # Errors
    /// When the connection fails or ends early; the session cannot go on
    /// (the rest of the bytes would be read as requests).
    pub fn receive(&mut self, from: &mut impl Read) -> io::Result<()> {
        let clock = &self.session.clock;
        clock.set_activity(Activity::Put { file: self.name.clone(), size: self.size, done: 0 });
        let offset = self.offset();
        let until = crate::repo::Until::Length(self.size - offset);
        let mut paced = Paced { inner: from, pace: self.rate.map(Pace::new) };
        let result = crate::repo::receive(&mut paced, &mut self.upload, until, |n| clock.set_transferred(offset + n));
        self.failed = result?;
        Ok(())
    }

    /// For an upload announced without a hash (`digest: None`, as TFTP's
    /// WRQ, whose length may be unknown): reads `from` to its end, at most
    /// the announced size, which is then the limit rather than the length.
    ///
    /// # Errors
    /// What `from` reports (the transfer failed), or more bytes than the
    /// limit ([`io::ErrorKind::FileTooLarge`]); nothing is stored then.
    pub fn receive_to_end(&mut self, from: &mut impl Read) -> io::Result<()> {
        let clock = &self.session.clock;
        clock.set_activity(Activity::Put { file: self.name.clone(), size: self.size, done: 0 });
        let until = crate::repo::Until::End(self.size);
        self.failed = crate::repo::receive(from, &mut self.upload, until, |n| clock.set_transferred(n))?;
        Ok(())
    }

    /// Logs why the upload ends without its bytes (the temporary goes when
    /// this is dropped).
    pub fn abandon(self, why: &dyn std::fmt::Display) {
        let (name, written, size) = (&self.name, self.upload.written(), self.size);
        tracing::info!(client = %self.session.name(), user = %self.session.user(), "upload of '{name}' abandoned after {written} of {size} bytes: {why}");
    }

    /// Checks the hash and stores the file under its name. `sent` is the
    /// hash that came after the bytes (`END ok blake3=`), if any: required
    /// when the request announced `-`, and when both came they must agree.
    pub fn finish(mut self, sent: Option<Digest>) -> Outcome<'static> {
        if let Some(e) = self.failed.take() {
            self.upload.discard();
            let err = RepoError::from_io(e, self.upload.target(), "cannot write");
            tracing::warn!(client = %self.session.name(), "upload of '{}' failed: {err}", self.name);
            return Outcome::Refused(err.into());
        }
        let expected = match (self.check, sent) {
            (Check::Before(announced), Some(sent)) if announced != sent => {
                self.upload.discard();
                let message =
                    format!("the hash after the bytes of '{}' is not the one announced; nothing was stored", self.name);
                return Outcome::Refused(Refusal::new(Code::BadRequest, message));
            }
            (Check::Before(announced), _) => announced,
            (Check::After, Some(sent)) => sent,
            (Check::After, None) => {
                self.upload.discard();
                let message =
                    format!("'{}' was announced with '-': END ok must carry blake3=; nothing was stored", self.name);
                return Outcome::Refused(Refusal::new(Code::BadRequest, message));
            }
            (Check::Unchecked, _) => self.upload.digest_so_far(),
        };
        let modified = self.modified.map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        match self.upload.commit(&expected, modified) {
            Ok(n) => {
                let secs = self.started.elapsed().as_secs_f64();
                tracing::info!(client = %self.session.name(), user = %self.session.user(), "stored '{}': {n} bytes in {secs:.3}s", self.name);
                Outcome::text(format!("stored '{}' ({})\n", self.name, common::text::byte_count(n)))
            }
            Err(e) => Outcome::Refused(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::super::testing::{listing, ok_text, refused, Bench};
    use super::super::{apply_line, Outcome};
    use crate::config::Config;
    use common::Digest;

    fn uploads_on() -> Config {
        Config { allow_uploads: true, max_upload_size: 100, ..Config::default() }
    }

    #[test]
    fn list_shows_visible_entries_and_refuses_bad_names() {
        let bench = Bench::new(Config::default());
        bench.add("b.txt", b"bb");
        bench.add("docs/a.txt", b"a");
        bench.add(".hidden", b"h");
        let (me, _) = bench.join(1);
        let entries = listing(apply_line("list", bench.caller(&me)));
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["b.txt", "docs"]);
        assert_eq!((entries[0].kind, entries[0].size), (common::ListEntryKind::File, 2));
        assert_eq!(entries[1].kind, common::ListEntryKind::Dir);
        assert_eq!(listing(apply_line("list docs", bench.caller(&me))).len(), 1);
        assert_eq!(refused(apply_line("list ../etc", bench.caller(&me))).0, 403);
        assert_eq!(refused(apply_line("list nope", bench.caller(&me))).0, 404);
        assert_eq!(refused(apply_line("list b.txt", bench.caller(&me))), (400, "'b.txt' is not a folder".into()));
    }

    #[test]
    fn get_gives_the_file_with_its_hash_and_resume_the_rest() {
        let bench = Bench::new(Config::default());
        bench.add("a b.txt", b"hello world");
        let (me, _) = bench.join(1);
        let Outcome::File(mut whole) = apply_line("get a b.txt", bench.caller(&me)) else { panic!("no file") };
        assert_eq!(whole.header.field("blake3"), Some(blake3::hash(b"hello world").to_hex().as_str()));
        let mut bytes = String::new();
        whole.download.file.read_to_string(&mut bytes).unwrap();
        assert_eq!((bytes.as_str(), whole.download.len, whole.name.as_str()), ("hello world", 11, "a b.txt"));

        let Outcome::File(mut rest) = apply_line("resume 6 a b.txt", bench.caller(&me)) else { panic!("no file") };
        let modified =
            crate::repo::rfc3339(std::fs::metadata(bench.dir.path().join("a b.txt")).unwrap().modified().unwrap());
        assert_eq!(whole.header.field("modified"), Some(modified.as_str()));
        assert_eq!(
            rest.header.encode(),
            format!(
                "OK 5 blake3={} modified={modified} offset=6 size=11\n",
                Digest::from(blake3::hash(b"hello world"))
            )
        );
        bytes.clear();
        rest.download.file.read_to_string(&mut bytes).unwrap();
        assert_eq!(bytes, "world");
        let (code, message) = refused(apply_line("resume 12 a b.txt", bench.caller(&me)));
        assert_eq!((code, message.as_str()), (400, "'a b.txt' has only 11 bytes; cannot resume from 12"));
    }

    #[test]
    fn get_refuses_what_it_cannot_send() {
        let bench = Bench::new(Config::default());
        bench.add("docs/a.txt", b"a");
        let (me, _) = bench.join(1);
        let caller = bench.caller(&me);
        assert_eq!(refused(apply_line("get nope.txt", caller)), (404, "no such file 'nope.txt'".into()));
        assert_eq!(refused(apply_line("get docs", caller)), (400, "'docs' is not a regular file".into()));
        assert_eq!(
            refused(apply_line("get ../../etc/passwd", caller)),
            (403, "'..' is not allowed in names: '../../etc/passwd'".into())
        );
        assert_eq!(refused(apply_line("get a\\b", caller)).0, 400);
    }

    #[test]
    fn put_stores_verified_bytes_and_refuses_before_any_byte() {
        let bench = Bench::new(uploads_on());
        bench.add("taken.txt", b"x");
        let (me, _) = bench.join(1);
        let caller = bench.caller(&me);
        let data = b"uploaded bytes";
        let line = format!("put {} {} new.txt", data.len(), Digest::from(blake3::hash(data)));
        let Outcome::Receive(mut incoming) = apply_line(&line, caller) else { panic!("not accepted") };
        assert_eq!(incoming.size(), data.len() as u64);
        assert!(!bench.dir.path().join("new.txt").exists(), "invisible until complete");
        incoming.receive(&mut &data[..]).unwrap();
        assert_eq!(ok_text(incoming.finish(None)), "stored 'new.txt' (14 bytes)\n");
        assert_eq!(std::fs::read(bench.dir.path().join("new.txt")).unwrap(), data);

        let hash = Digest::from(blake3::hash(b"x"));
        assert_eq!(
            refused(apply_line(&format!("put 1 {hash} taken.txt"), caller)),
            (409, "'taken.txt' exists already".into())
        );
        assert_eq!(refused(apply_line(&format!("put 101 {hash} big.bin"), caller)).0, 413);
        assert_eq!(refused(apply_line(&format!("put 1 {hash} nodir/x"), caller)).0, 404);
        assert_eq!(refused(apply_line(&format!("put 1 {hash} .hidden"), caller)).0, 403);
    }

    #[test]
    fn a_put_that_does_not_match_its_hash_stores_nothing_and_one_cut_short_is_kept_for_put_c() {
        let bench = Bench::new(uploads_on());
        let (me, _) = bench.join(1);
        let caller = bench.caller(&me);
        let wrong = Digest([0; 32]);
        let Outcome::Receive(mut incoming) = apply_line(&format!("put 3 {wrong} x.bin"), caller) else { panic!() };
        incoming.receive(&mut &b"abc"[..]).unwrap();
        assert_eq!(
            refused(incoming.finish(None)),
            (400, "upload of 'x.bin' does not match its hash; nothing was stored".into())
        );
        let left = || std::fs::read_dir(bench.dir.path().join(".uploads")).unwrap().count();
        assert_eq!(left(), 0, "wrong bytes are not kept");
        let good = Digest::from(blake3::hash(b"abc"));
        let Outcome::Receive(mut short) = apply_line(&format!("put 3 {good} y.bin"), caller) else { panic!() };
        assert!(short.receive(&mut &b"ab"[..]).is_err());
        drop(short);
        assert_eq!(left(), 1, "what arrived is kept");
        assert!(!bench.dir.path().join("x.bin").exists() && !bench.dir.path().join("y.bin").exists());
        // put -c asks for the rest only, and the whole is checked.
        let Outcome::Receive(mut rest) = apply_line(&format!("put -c 3 {good} y.bin"), caller) else { panic!() };
        assert_eq!(rest.offset(), 2);
        rest.receive(&mut &b"c"[..]).unwrap();
        assert_eq!(ok_text(rest.finish(None)), "stored 'y.bin' (3 bytes)\n");
        assert_eq!(std::fs::read(bench.dir.path().join("y.bin")).unwrap(), b"abc");
        assert_eq!(left(), 0, "nothing is left once stored");
    }

    #[test]
    fn a_put_whose_hash_comes_after_the_bytes_is_checked_against_it() {
        let bench = Bench::new(uploads_on());
        let (me, _) = bench.join(1);
        let caller = bench.caller(&me);
        let good = Digest::from(blake3::hash(b"abc"));
        let left = || std::fs::read_dir(bench.dir.path().join(".uploads")).unwrap().count();
        let receive = |name: &str, bytes: &[u8]| {
            let Outcome::Receive(mut incoming) = apply_line(&format!("put 3 - {name}"), caller) else { panic!() };
            assert!(incoming.hash_at_end());
            incoming.receive(&mut &bytes[..]).unwrap();
            incoming
        };
        assert_eq!(ok_text(receive("a.bin", b"abc").finish(Some(good))), "stored 'a.bin' (3 bytes)\n");
        assert_eq!(std::fs::read(bench.dir.path().join("a.bin")).unwrap(), b"abc");
        let (code, message) = refused(receive("b.bin", b"abd").finish(Some(good)));
        assert_eq!((code, message.as_str()), (400, "upload of 'b.bin' does not match its hash; nothing was stored"));
        let (code, message) = refused(receive("c.bin", b"abc").finish(None));
        assert_eq!(code, 400);
        assert!(message.contains("END ok must carry blake3="), "{message}");
        assert!(!bench.dir.path().join("b.bin").exists() && !bench.dir.path().join("c.bin").exists());
        assert_eq!(left(), 0, "nothing is kept of a complete upload that was refused");

        // Announced before and after: they must agree.
        let Outcome::Receive(mut both) = apply_line(&format!("put 3 {good} d.bin"), caller) else { panic!() };
        both.receive(&mut &b"abc"[..]).unwrap();
        assert_eq!(refused(both.finish(Some(Digest::from(blake3::hash(b"xyz"))))).0, 400);
        assert!(!bench.dir.path().join("d.bin").exists());

        // Cut short: kept, and put -c (which must give its hash first) goes on from it.
        let Outcome::Receive(mut short) = apply_line("put 3 - e.bin", caller) else { panic!() };
        assert!(short.receive(&mut &b"ab"[..]).is_err());
        drop(short);
        assert_eq!(left(), 1, "what arrived is kept");
        assert_eq!(refused(apply_line("put -c 3 - e.bin", caller)).0, 400);
        let Outcome::Receive(mut rest) = apply_line(&format!("put -c 3 {good} e.bin"), caller) else { panic!() };
        assert_eq!(rest.offset(), 2);
        rest.receive(&mut &b"c"[..]).unwrap();
        assert_eq!(ok_text(rest.finish(None)), "stored 'e.bin' (3 bytes)\n");
        assert_eq!(left(), 0);

        // Kept bytes of another version: the whole fails its hash, they go,
        // and the next put -c starts afresh.
        let Outcome::Receive(mut short) = apply_line("put 3 - f.bin", caller) else { panic!() };
        assert!(short.receive(&mut &b"ab"[..]).is_err());
        drop(short);
        let other = Digest::from(blake3::hash(b"xyz"));
        let Outcome::Receive(mut rest) = apply_line(&format!("put -c 3 {other} f.bin"), caller) else { panic!() };
        assert_eq!(rest.offset(), 2);
        rest.receive(&mut &b"z"[..]).unwrap();
        assert_eq!(refused(rest.finish(None)).0, 400);
        assert_eq!(left(), 0);
        let Outcome::Receive(fresh) = apply_line(&format!("put -c 3 {other} f.bin"), caller) else { panic!() };
        assert_eq!(fresh.offset(), 0);
    }

    #[test]
    fn put_is_forbidden_without_uploads() {
        let bench = Bench::new(Config::default());
        let (me, _) = bench.join(1);
        let line = format!("put 1 {} x", Digest([0; 32]));
        let (code, message) = refused(apply_line(&line, bench.caller(&me)));
        assert_eq!(code, 403);
        assert!(message.contains("--allow-uploads"), "{message}");
    }
}
