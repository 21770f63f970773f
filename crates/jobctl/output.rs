//! The one way out (jj's `Ui` is the model): commands print through here
//! and never with `println!`/`eprintln!`. stdout carries a command's output
//! (text made by [`crate::view`], or `--json`: [`print_text`],
//! [`print_json`]); stderr carries what is said about it, one line each,
//! always escaped ([`escape`]): `Warning:` ([`warn`]), `Hint:` ([`hint`]),
//! `Error:` ([`error`], also how [`crate::error::CliError`] is reported),
//! and `jobctl:` notes ([`note`]: waiting for a lock, how a run ended). So
//! `--json` output stays JSON, and a closed pipe (`jobctl list | head`) is
//! success everywhere.
//!
//! What streams is written where it is produced, with the same rules:
//! `calendar`'s elapses (computed as they are written), `logs --raw` (the
//! stored bytes), `run --follow` (the journal), and the shim's own record
//! when no journal answers (`journal.rs`).

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use serde::Serialize;

use crate::env;

/// Whether to colour output written to stdout.
#[allow(dead_code)]
pub fn use_color() -> bool {
    env::var_os(env::NO_COLOR).is_none() && io::stdout().is_terminal()
}

/// The version of every `--json` document's shape, in its `schema` field
/// (`jobctl.list/v1` …). Adding a field keeps the version; removing or
/// renaming one, or changing its type or meaning, is a new version
/// (docs/json.md).
pub const JSON_VERSION: &str = "v1";

/// A `--json` document: `schema` (`jobctl.KIND/v1`) first, `host` where the
/// document is about this host's jobs or runs (so documents from several
/// hosts can be put together), then the command's own fields.
#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    schema: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<Option<String>>,
    #[serde(flatten)]
    body: &'a T,
}

/// Writes `value` (a struct or map) as the `--json` document of kind `kind`
/// (docs/json.md), without `host`. See [`print_json_with`].
pub fn print_json<T: Serialize>(kind: &str, value: &T) -> io::Result<()> {
    print_json_with(kind, false, value)
}

/// Writes `value` as the `--json` document of kind `kind` with this host's
/// name in `host` (`null` if it cannot be read).
pub fn print_json_host<T: Serialize>(kind: &str, value: &T) -> io::Result<()> {
    print_json_with(kind, true, value)
}

/// Writes `value` as pretty JSON followed by a newline to stdout, as it is
/// serialized (buffered, not built in memory first), under `schema` (and
/// `host` when `host` is set). A broken pipe is not an error, as for
/// [`print_text`]. Inside [`capture_json`] the document goes to that buffer
/// instead (jobctl-web answers with it).
fn print_json_with<T: Serialize>(kind: &str, host: bool, body: &T) -> io::Result<()> {
    let value = Document {
        schema: format!("jobctl.{kind}/{JSON_VERSION}"),
        host: host.then(crate::host::hostname),
        body,
    };
    JSON_PRINTED.with(|p| p.set(true));
    let captured = CAPTURE.with_borrow_mut(|capture| {
        capture
            .as_mut()
            .map(|buf| serde_json::to_writer(&mut *buf, &value).map_err(io::Error::other))
    });
    if let Some(result) = captured {
        return result;
    }
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, &value)
        .map_err(|e| match e.io_error_kind() {
            Some(kind) => io::Error::new(kind, e),
            None => io::Error::other(e),
        })
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            // The buffer would retry the write when dropped.
            let _ = out.into_parts();
            Ok(())
        }
        other => other,
    }
}

thread_local! {
    /// Set once a command has printed its JSON: an error that ends it after
    /// that is not printed as a second JSON object ([`json_printed`]). Per
    /// thread, so that jobctl-web's concurrent requests do not share it.
    static JSON_PRINTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where [`print_json`] writes inside [`capture_json`].
    static CAPTURE: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Whether [`print_json`] was called: `--json` prints one object, so an
/// error after the report goes to stderr only.
pub fn json_printed() -> bool {
    JSON_PRINTED.with(std::cell::Cell::get)
}

/// Runs `f` with [`print_json`] writing (compact) into a buffer instead of
/// stdout, on this thread; returns what `f` returned and the document(s)
/// written. This is how jobctl-web answers with exactly the CLI's `--json`.
pub fn capture_json<R>(f: impl FnOnce() -> R) -> (R, Vec<u8>) {
    JSON_PRINTED.with(|p| p.set(false));
    CAPTURE.with_borrow_mut(|c| *c = Some(Vec::new()));
    let result = f();
    let buf = CAPTURE.with_borrow_mut(Option::take).unwrap_or_default();
    (result, buf)
}

/// Diagnostics about files (`error: FILE:LINE:COL: `key`: message` and an
/// indented `hint:`), one after the other on stderr, escaped.
pub fn diagnostics(diagnostics: &[jobctl_core::diag::Diagnostic]) {
    let mut text = String::new();
    for d in diagnostics {
        text.push_str(&d.to_string());
        text.push('\n');
    }
    if !text.is_empty() {
        let _ = print_error_text(&escape(&text, Lines::Keep));
    }
}

/// Writes text to stderr (diagnostics, warnings).
pub fn print_error_text(text: &str) -> io::Result<()> {
    let mut err = io::stderr().lock();
    match err.write_all(text.as_bytes()).and_then(|()| err.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes text to stdout, ignoring a broken pipe (the reader went away, which
/// is not an error for a command-line tool).
pub fn print_text(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// What [`escape`] does with line breaks and tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    /// Keep `\n` and `\t` (a job's output, multi-line messages).
    Keep,
    /// Escape them too (a table cell, a name, one line of a report).
    Escape,
}

/// Makes text that a user may have written safe to print on root's
/// terminal: every control character (U+0000–U+001F, U+007F–U+009F, so ESC,
/// CSI, carriage return, backspace, bell …) becomes `\xNN`, one per byte of
/// its UTF-8 encoding, and so does every byte that is not UTF-8, as
/// systemd's `utf8_escape_non_printable()` shows them in `systemctl` and
/// `journalctl`. Printable text, backslashes included, is left as it is.
/// This is the one escaping function: every command that prints text from a
/// history database, a user's crontab or a database error goes through it;
/// `--raw` (where offered) prints the stored bytes instead, and `--json`
/// escapes by JSON's own rules.
pub fn escape<T: AsRef<[u8]> + ?Sized>(text: &T, lines: Lines) -> Cow<'_, str> {
    let bytes = text.as_ref();
    let keep = |c: char| lines == Lines::Keep && (c == '\n' || c == '\t');
    let is_control = |c: char| (c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c)) && !keep(c);
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text.chars().any(is_control)
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    let hex = |out: &mut String, b: u8| {
        use std::fmt::Write as _;
        let _ = write!(out, "\\x{b:02x}");
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_control(c) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    hex(&mut out, b);
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            hex(&mut out, *b);
        }
    }
    Cow::Owned(out)
}

/// Writes `PREFIX: TEXT` and a line break on stderr, escaped ([`escape`]:
/// what is said quotes file names, database errors and rows that users
/// wrote). Line breaks in the text are kept.
fn say(prefix: &str, text: &str) {
    let _ = print_error_text(&format!("{prefix}: {}\n", escape(text, Lines::Keep)));
}

/// `Warning: TEXT` on stderr: something the operator should know; the
/// command goes on.
pub fn warn(text: &str) {
    say("Warning", text);
}

/// `Hint: TEXT` on stderr: what to do about the line before.
pub fn hint(text: &str) {
    say("Hint", text);
}

/// `Error: TEXT` on stderr: a failure the command reports and goes on
/// after (its exit status says so), or the error that ends it.
pub fn error(text: &str) {
    say("Error", text);
}

/// `Caused by: TEXT` on stderr, after an [`error`].
pub fn caused_by(text: &str) {
    say("Caused by", text);
}

/// `jobctl: TEXT` on stderr: what a command reports besides its output
/// (waiting for a lock; how a run ended).
pub fn note(text: &str) {
    say("jobctl", text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters_as_systemd_does() {
        let cases: &[(&[u8], Lines, &str)] = &[
            (b"plain text", Lines::Escape, "plain text"),
            (
                b"x\x1b[2J\x1b[31mFAKE",
                Lines::Escape,
                "x\\x1b[2J\\x1b[31mFAKE",
            ),
            (b"a\nb\tc\rd", Lines::Escape, "a\\x0ab\\x09c\\x0dd"),
            (b"a\nb\tc\rd", Lines::Keep, "a\nb\tc\\x0dd"),
            (
                b"bell\x07 del\x7f nul\x00",
                Lines::Keep,
                "bell\\x07 del\\x7f nul\\x00",
            ),
            // C1 controls: U+009B is CSI on terminals that take 8-bit controls.
            ("c1 \u{9b}31m".as_bytes(), Lines::Keep, "c1 \\xc2\\x9b31m"),
            // Not UTF-8: each byte shown; valid text around it kept.
            (
                b"bad \xff\xfe ok \xc3",
                Lines::Keep,
                "bad \\xff\\xfe ok \\xc3",
            ),
            // Printable text is never touched, backslashes and Unicode included.
            (
                "caf\u{e9} \\x1b \u{2603}".as_bytes(),
                Lines::Escape,
                "caf\u{e9} \\x1b \u{2603}",
            ),
        ];
        for (input, lines, want) in cases {
            assert_eq!(escape(*input, *lines), *want, "{input:?} {lines:?}");
        }
        assert!(matches!(
            escape("no change", Lines::Escape),
            Cow::Borrowed(_)
        ));
    }
}
