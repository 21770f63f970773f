//! Output helpers shared by commands: JSON printing, colour decisions, and
//! treating a closed pipe (`jobctl list | head`) as success.

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

use crate::env;

/// Whether to colour output written to stdout.
#[allow(dead_code)]
pub fn use_color() -> bool {
    env::var_os(env::NO_COLOR).is_none() && io::stdout().is_terminal()
}

/// Writes `value` as pretty JSON followed by a newline to stdout, as it is
/// serialized (buffered, not built in memory first). A broken pipe is not an
/// error, as for [`print_text`].
pub fn print_json<T: Serialize>(value: &T) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, value)
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
