//! Reading the files jobctl parses, with a cap on how much is read: a path
//! that names `/dev/zero`, a pipe that never ends or a huge sparse file fails
//! at once with a clear message instead of filling memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The configuration, crontabs.
pub const TEXT_LIMIT: u64 = 1 << 20;
/// Job files: above the largest job the keys allow (a command and
/// environment of 2 MiB together, as Linux execs, plus TOML's quoting), so
/// that an oversized job gets the loader's message naming the key and line.
pub const JOB_FILE_LIMIT: u64 = 4 << 20;
/// Files jobctl writes itself and reads back: unit files, `overrides.json`.
pub const STATE_LIMIT: u64 = 16 << 20;

/// The whole file at `path`, or an error when it holds more than `limit`
/// bytes (only `limit + 1` bytes are read to find out).
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    read_limited_from(File::open(path)?, limit)
}

/// Like [`read_limited`], from any reader (standard input).
pub fn read_limited_from(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// [`read_limited`] as UTF-8 text.
pub fn read_text_limited(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_limited(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the file is not UTF-8 text"))
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!(
            "the file is larger than {}, the most jobctl reads from it",
            human(limit)
        ),
    )
}

/// `1 MiB`, `16 MiB`, or bytes.
fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_more() {
        assert_eq!(read_limited_from(&b"abcd"[..], 4).unwrap(), b"abcd");
        let err = read_limited_from(&b"abcde"[..], 4).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            err.to_string(),
            "the file is larger than 4 bytes, the most jobctl reads from it"
        );
        // An endless source stops after limit + 1 bytes.
        let err = read_limited(Path::new("/dev/zero"), TEXT_LIMIT).unwrap_err();
        assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
    }
}
