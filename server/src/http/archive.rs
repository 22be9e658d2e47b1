//! A folder as one download: `DIR/?tar` or `DIR/?zip`, uncompressed,
//! streamed as the tree is walked (no temporary file; memory holds one
//! folder's listing per level and one buffer). Entries are named relative to
//! the folder, under a top folder of its name. Folders reached through a
//! symbolic link are left out (see [`cmd::Op::ArchiveFolder`]), so a walk
//! never loops; a file that vanishes meanwhile is left out too.

use std::io::{self, BufWriter, Read, Write};
use std::time::SystemTime;

use chrono::{DateTime, Datelike, Timelike, Utc};
use common::ListEntryKind;

use crate::cmd::{self, Caller, Op, Outcome, PlainFile};

/// The archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// POSIX tar (GNU long names).
    Tar,
    /// Zip, stored (no compression), zip64 where needed.
    Zip,
}

impl Format {
    /// The file name extension and the content type.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Format::Tar => ("tar", "application/x-tar"),
            Format::Zip => ("zip", "application/zip"),
        }
    }
}

/// Bytes buffered between the archive writer and the connection.
const BUFFER: usize = 256 * 1024;

/// Counts what passes to the connection.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One file or folder of the walk, with its name in the archive.
enum Item {
    Folder { share: String, name: String },
    File { share: String, name: String },
}

/// Writes the tree under `dir` (a share path, "" for the top) to `out` as
/// `format`; the bytes written.
///
/// # Errors
/// The connection's writes, or a file that shrank while being read.
pub fn write_tree(caller: Caller<'_, '_>, dir: &str, top: &str, format: Format, out: impl Write) -> io::Result<u64> {
    let mut out = Counting { inner: BufWriter::with_capacity(BUFFER, out), count: 0 };
    let mut sink: Box<dyn Sink + '_> = match format {
        Format::Tar => Box::new(TarSink(tar::Builder::new(&mut out))),
        Format::Zip => Box::new(ZipSink(Some(zip::ZipWriter::new_stream(&mut out)))),
    };
    // Depth first; one folder's listing per level waits on the stack.
    let mut stack = vec![vec![Item::Folder { share: dir.to_string(), name: top.to_string() }]];
    while let Some(level) = stack.last_mut() {
        let Some(item) = level.pop() else {
            stack.pop();
            continue;
        };
        match item {
            Item::Folder { share, name } => {
                sink.folder(&name)?;
                let Outcome::Listing(entries) = cmd::apply(Op::ArchiveFolder(share.clone()), caller) else { continue };
                let join = |base: &str, child: &str| {
                    if base.is_empty() {
                        child.to_string()
                    } else {
                        format!("{base}/{child}")
                    }
                };
                let mut items: Vec<Item> = entries
                    .into_iter()
                    .map(|e| {
                        let (share, name) = (join(&share, &e.name), join(&name, &e.name));
                        match e.kind {
                            ListEntryKind::Dir => Item::Folder { share, name },
                            ListEntryKind::File => Item::File { share, name },
                        }
                    })
                    .collect();
                items.reverse(); // popped in name order
                stack.push(items);
            }
            Item::File { share, name } => {
                let Outcome::Plain(PlainFile { file, len, modified }) =
                    cmd::apply(Op::ReadPlain(share.clone()), caller)
                else {
                    tracing::debug!("left '{share}' out of an archive: it cannot be opened now");
                    continue;
                };
                sink.file(&name, file, len, modified)?;
            }
        }
    }
    sink.finish()?;
    drop(sink);
    out.flush()?;
    Ok(out.count)
}

/// What one format does with folders and files.
trait Sink {
    fn folder(&mut self, name: &str) -> io::Result<()>;
    fn file(&mut self, name: &str, file: std::fs::File, len: u64, modified: Option<SystemTime>) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
}

/// The file's bytes, exactly `len` of them, or an error: an archive entry
/// announces its size first.
fn exactly(file: std::fs::File, len: u64) -> impl Read {
    struct Exactly<R> {
        inner: R,
        left: u64,
    }
    impl<R: Read> Read for Exactly<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Ok(0);
            }
            let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
            let n = self.inner.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a file shrank while being archived"));
            }
            self.left -= n as u64;
            Ok(n)
        }
    }
    Exactly { inner: file, left: len }
}

fn unix_secs(time: Option<SystemTime>) -> u64 {
    time.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs())
}

struct TarSink<W: Write>(tar::Builder<W>);

impl<W: Write> Sink for TarSink<W> {
    fn folder(&mut self, name: &str) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(unix_secs(Some(SystemTime::now())));
        self.0.append_data(&mut header, format!("{name}/"), io::empty())
    }

    fn file(&mut self, name: &str, file: std::fs::File, len: u64, modified: Option<SystemTime>) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(len);
        header.set_mtime(unix_secs(modified));
        self.0.append_data(&mut header, name, exactly(file, len))
    }

    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
}

/// `None` once finished.
struct ZipSink<W: Write>(Option<zip::ZipWriter<zip::write::StreamWriter<W>>>);

impl<W: Write> ZipSink<W> {
    fn options(modified: Option<SystemTime>, large: bool) -> zip::write::SimpleFileOptions {
        let when = DateTime::<Utc>::from(modified.unwrap_or_else(SystemTime::now));
        let stamp = zip::DateTime::from_date_and_time(
            u16::try_from(when.year()).unwrap_or(1980),
            when.month() as u8,
            when.day() as u8,
            when.hour() as u8,
            when.minute() as u8,
            when.second() as u8,
        )
        .unwrap_or_default();
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(stamp)
            .large_file(large)
    }
}

impl<W: Write> ZipSink<W> {
    fn writer(&mut self) -> io::Result<&mut zip::ZipWriter<zip::write::StreamWriter<W>>> {
        self.0.as_mut().ok_or_else(|| io::Error::other("the zip is finished"))
    }
}

impl<W: Write> Sink for ZipSink<W> {
    fn folder(&mut self, name: &str) -> io::Result<()> {
        self.writer()?.add_directory(name, Self::options(None, false)).map_err(io::Error::other)
    }

    fn file(&mut self, name: &str, file: std::fs::File, len: u64, modified: Option<SystemTime>) -> io::Result<()> {
        let zip = self.writer()?;
        zip.start_file(name, Self::options(modified, len >= u64::from(u32::MAX))).map_err(io::Error::other)?;
        io::copy(&mut exactly(file, len), zip)?;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        match self.0.take() {
            Some(zip) => zip.finish().map(drop).map_err(io::Error::other),
            None => Ok(()),
        }
    }
}
