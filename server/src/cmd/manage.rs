//! Managing the share: `mkdir`, `rm`, `rmdir`, `rmtree`, `mv`, and `hash`
//! (which only reads). Every change needs `--allow-uploads`, goes through the
//! share's sandbox ([`crate::repo`]) and is logged with who made it.

use common::text::escape;
use common::RemotePath;

use super::files::writes_allowed;
use super::{Caller, Outcome, Refusal};

fn name_below_root(text: &str) -> Result<RemotePath, Refusal> {
    RemotePath::parse_file(text).map_err(|e| Refusal::bad_name(&e, text))
}

/// Logs a change to the share with the session that made it.
fn changed(caller: Caller<'_, '_>, what: String) -> Outcome<'static> {
    tracing::info!(client = %caller.session.name(), user = %caller.session.user(), "{what}");
    Outcome::text(format!("{what}\n"))
}

/// `mkdir <dir>`.
pub fn make_dir<'a>(caller: Caller<'_, '_>, name: &str) -> Result<Outcome<'a>, Refusal> {
    writes_allowed(caller)?;
    let path = name_below_root(name)?;
    caller.shared.repo.make_dir(&path)?;
    Ok(changed(caller, format!("made folder '{}'", escape(&path.to_string()))))
}

/// `rm <name>`: a file.
pub fn remove<'a>(caller: Caller<'_, '_>, name: &str) -> Result<Outcome<'a>, Refusal> {
    writes_allowed(caller)?;
    let path = name_below_root(name)?;
    caller.shared.repo.remove_file(&path)?;
    Ok(changed(caller, format!("removed '{}'", escape(&path.to_string()))))
}

/// `rmdir <dir>` (empty) or `rmtree <dir>` (and all in it).
pub fn remove_dir<'a>(caller: Caller<'_, '_>, name: &str, tree: bool) -> Result<Outcome<'a>, Refusal> {
    writes_allowed(caller)?;
    let path = name_below_root(name)?;
    let entries = caller.shared.repo.remove_dir(&path, tree)?;
    let with = match (tree, entries) {
        (false, _) => String::new(),
        (true, 1) => " and the 1 entry in it".to_string(),
        (true, n) => format!(" and the {n} entries in it"),
    };
    Ok(changed(caller, format!("removed folder '{}'{with}", escape(&path.to_string()))))
}

/// `mv [-f] <from> <to>`.
pub fn rename<'a>(caller: Caller<'_, '_>, from: &str, to: &str, replace: bool) -> Result<Outcome<'a>, Refusal> {
    writes_allowed(caller)?;
    let (from, to) = (name_below_root(from)?, name_below_root(to)?);
    caller.shared.repo.rename(&from, &to, replace)?;
    Ok(changed(caller, format!("moved '{}' to '{}'", escape(&from.to_string()), escape(&to.to_string()))))
}

/// A copy ([`super::Op::Copy`], WebDAV's `COPY`): a file, or a folder with
/// (`recursive`) or without what is in it; `replace` an existing `to`. The
/// reply says whether `to` existed (`replaced=yes`).
pub fn copy<'a>(
    caller: Caller<'_, '_>,
    from: &str,
    to: &str,
    recursive: bool,
    replace: bool,
) -> Result<Outcome<'a>, Refusal> {
    writes_allowed(caller)?;
    let (from, to) = (name_below_root(from)?, name_below_root(to)?);
    let replaced = caller.shared.repo.copy(&from, &to, recursive, replace)?;
    let Outcome::Ok { body, .. } =
        changed(caller, format!("copied '{}' to '{}'", escape(&from.to_string()), escape(&to.to_string())))
    else {
        unreachable!("changed is a text reply")
    };
    let fields = vec![("replaced".to_string(), if replaced { "yes" } else { "no" }.to_string())];
    Ok(Outcome::Ok { fields, body })
}

/// `hash <name>`: `<blake3 hex>  <name>`, the line `b3sum` prints, so the
/// file can be checked with a tool the user has.
pub fn hash<'a>(caller: Caller<'_, '_>, name: &str) -> Result<Outcome<'a>, Refusal> {
    let path = name_below_root(name)?;
    let download = caller.shared.repo.open_download(&path, caller.wanted)?;
    Ok(Outcome::text(format!("{}  {path}\n", download.digest)))
}

#[cfg(test)]
mod tests {
    use super::super::apply_line;
    use super::super::testing::{ok_text, refused, Bench};
    use crate::config::Config;

    fn writable() -> Bench {
        Bench::new(Config { allow_uploads: true, ..Config::default() })
    }

    #[test]
    fn make_move_and_remove_inside_the_share() {
        let bench = writable();
        bench.add("a.txt", b"a");
        let (me, _) = bench.join(1);
        let run = |line: &str| apply_line(line, bench.caller(&me));
        assert_eq!(ok_text(run("mkdir new dir")), "made folder 'new dir'\n");
        assert_eq!(refused(run("mkdir new dir")).0, 409);
        assert_eq!(refused(run("mkdir no/such")).0, 404);
        assert_eq!(ok_text(run("mv a.txt \"new dir/b c.txt\"")), "moved 'a.txt' to 'new dir/b c.txt'\n");
        assert!(bench.dir.path().join("new dir/b c.txt").exists() && !bench.dir.path().join("a.txt").exists());
        bench.add("x.txt", b"x");
        assert_eq!(refused(run("mv x.txt \"new dir/b c.txt\"")).0, 409, "no replacing without -f");
        assert_eq!(ok_text(run("mv -f x.txt \"new dir/b c.txt\"")), "moved 'x.txt' to 'new dir/b c.txt'\n");
        assert_eq!(std::fs::read(bench.dir.path().join("new dir/b c.txt")).unwrap(), b"x");
        assert_eq!(refused(run("rmdir new dir")).0, 409, "not empty");
        assert_eq!(refused(run("rm new dir")).0, 400, "a folder is not removed by rm");
        assert_eq!(ok_text(run("rmtree new dir")), "removed folder 'new dir' and the 1 entry in it\n");
        bench.add("two/a", b"a");
        bench.add("two/b", b"b");
        assert_eq!(ok_text(run("rmtree two")), "removed folder 'two' and the 2 entries in it\n");
        assert_eq!(refused(run("rm gone.txt")).0, 404);
    }

    #[test]
    fn nothing_outside_the_share_or_hidden_and_nothing_without_write_rights() {
        let bench = writable();
        let (me, _) = bench.join(1);
        let run = |line: &str| apply_line(line, bench.caller(&me));
        for bad in ["rm ../x", "mkdir /etc/x", "rmtree .uploads", "mv a ../b", "rmdir .", "rmtree "] {
            let code = refused(run(bad)).0;
            assert!(code == 403 || code == 400, "{bad}: {code}");
        }
        // A link leading out is never followed: not into, not through.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep.txt"), b"k").unwrap();
        std::os::unix::fs::symlink(outside.path(), bench.dir.path().join("out")).unwrap();
        bench.add("a.txt", b"a");
        assert_eq!(refused(run("mv a.txt out/a.txt")).0, 403);
        assert_eq!(refused(run("rm out/keep.txt")).0, 403);
        assert_eq!(refused(run("rmtree out")).0, 400, "a link is not a folder to empty");
        assert_eq!(ok_text(run("rm out")), "removed 'out'\n", "the link itself goes");
        assert!(outside.path().join("keep.txt").exists() && bench.dir.path().join("a.txt").exists());
        let read_only = Bench::new(Config::default());
        read_only.add("a.txt", b"a");
        let (me, _) = read_only.join(1);
        assert_eq!(refused(apply_line("rm a.txt", read_only.caller(&me))).0, 403);
        assert_eq!(refused(apply_line("mkdir d", read_only.caller(&me))).0, 403);
        let hash = ok_text(apply_line("hash a.txt", read_only.caller(&me)));
        assert_eq!(hash, format!("{}  a.txt\n", blake3::hash(b"a").to_hex()));
    }
}
