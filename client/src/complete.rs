//! Tab completion at the prompt: command names, remote names for `get` and
//! `list` (from the last listing of that folder, or fetched when needed),
//! local paths for `put`, `lls` and `lcd`.

use std::cell::RefCell;
use std::rc::Rc;

use common::ListEntryKind;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::command::{quote_word, COMMANDS};
use crate::session::Session;

/// The prompt's helper; shares the session with the command loop, which
/// never runs a command while a line is being edited.
pub struct Completion {
    session: Rc<RefCell<Session>>,
    files: FilenameCompleter,
}

impl Completion {
    /// Completes against `session`.
    pub fn new(session: Rc<RefCell<Session>>) -> Completion {
        Completion { session, files: FilenameCompleter::new() }
    }

    fn remote(&self, line: &str, pos: usize) -> (usize, Vec<Pair>) {
        let start = word_start(&line[..pos]);
        let word = unquote(&line[start..pos]);
        let (dir, prefix) = word.rsplit_once('/').unwrap_or(("", &word));
        let Ok(mut session) = self.session.try_borrow_mut() else { return (start, Vec::new()) };
        let candidates = session
            .remote_entries(dir)
            .into_iter()
            .filter(|e| e.name.starts_with(prefix))
            .map(|e| {
                let slash = if e.kind == ListEntryKind::Dir { "/" } else { "" };
                let full =
                    if dir.is_empty() { format!("{}{slash}", e.name) } else { format!("{dir}/{}{slash}", e.name) };
                Pair { display: format!("{}{slash}", common::text::escape(&e.name)), replacement: quote_word(&full) }
            })
            .collect();
        (start, candidates)
    }
}

/// The word being typed as the name it means: quotes (closed or still
/// open, anywhere in it: `'sub dir/'dee`) and backslash escapes (`sub\ dir/`) taken out.
fn unquote(word: &str) -> String {
    let (mut out, mut quote, mut escaped) = (String::new(), None, false);
    for c in word.chars() {
        match (quote, c) {
            _ if escaped => {
                out.push(c);
                escaped = false;
            }
            (None, '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (_, c) => out.push(c),
        }
    }
    out
}

/// Where the word under the cursor starts, minding quotes.
fn word_start(before: &str) -> usize {
    let mut start = 0;
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        match (quote, c) {
            _ if escaped => escaped = false,
            (None, '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, c) if c.is_whitespace() => start = i + c.len_utf8(),
            _ => {}
        }
    }
    start
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let Some((keyword, _)) = before.trim_start().split_once(char::is_whitespace) else {
            let typed = before.trim_start();
            let start = pos - typed.len();
            let names = COMMANDS.iter().filter(|c| c.name.starts_with(typed));
            let pairs = names.map(|c| Pair { display: c.name.to_string(), replacement: format!("{} ", c.name) });
            return Ok((start, pairs.collect()));
        };
        match keyword.to_ascii_lowercase().as_str() {
            "get" | "list" | "ls" | "cat" | "rm" | "rmdir" | "mv" | "cd" | "hash" | "mkdir" => {
                Ok(self.remote(line, pos))
            }
            "put" | "lls" | "lcd" => self.files.complete(line, pos, ctx),
            "help" => {
                let start = word_start(before);
                let typed = &before[start..];
                let names = COMMANDS.iter().filter(|c| c.name.starts_with(typed));
                Ok((start, names.map(|c| Pair { display: c.name.into(), replacement: c.name.into() }).collect()))
            }
            _ => Ok((pos, Vec::new())),
        }
    }
}

impl Hinter for Completion {
    type Hint = String;
}

impl Highlighter for Completion {}

impl Validator for Completion {}

impl Helper for Completion {}

#[cfg(test)]
mod tests {
    use super::{unquote, word_start};

    #[test]
    fn a_partly_quoted_or_escaped_word_means_its_name() {
        assert_eq!(unquote("'tree/sub dir/'dee"), "tree/sub dir/dee");
        assert_eq!(unquote("tree/sub\\ dir/"), "tree/sub dir/");
        assert_eq!(unquote("\"open quote/x"), "open quote/x");
        assert_eq!(unquote("plain"), "plain");
    }

    #[test]
    fn the_word_under_the_cursor_minds_quotes() {
        assert_eq!(word_start("get ab"), 4);
        assert_eq!(word_start("get \"a b"), 4);
        assert_eq!(word_start("get a\\ b"), 4);
        assert_eq!(word_start("get x "), 6);
    }
}
