//! Writing values into unit files so that they mean exactly what they say.
//!
//! systemd reads each directive's value differently (systemd.syntax(7),
//! systemd.service(7), systemd.exec(7)); the encoders here follow the reading
//! of each directive jobctl writes, as systemd 252 implements it:
//!
//! | directive                   | systemd applies, in order                          | encoder            |
//! |-----------------------------|----------------------------------------------------|--------------------|
//! | `ExecStart=` arguments      | split + unquote + C-unescape, `%` specifiers, then `$VAR` expansion at exec | [`exec_arg`] |
//! | `Environment=`              | split + unquote + C-unescape, `%` specifiers       | [`environment_assignment`] |
//! | `Description=`, paths, names | `%` specifiers only (no unquoting)                 | [`plain_value`]    |
//!
//! `stdin` is written as `StandardInputData=` in base64, which needs no escaping.
//!
//! In every case a value must not contain a line break (it would end the
//! directive and start a new one) and a raw value must not end in a backslash
//! (it would continue onto the next line). Values that cannot be encoded
//! safely are rejected with an [`EscapeError`], never written.

use std::fmt::Write;

use thiserror::Error;

use crate::naming::describe_char;

/// The longest single argument accepted, in bytes. Linux caps one argument
/// at 128 KiB (`MAX_ARG_STRLEN`); a job command near that is a mistake.
pub const MAX_ARG_LEN: usize = 32 * 1024;

/// The longest plain value (description, path), in bytes.
pub const MAX_VALUE_LEN: usize = 4096;

/// Why a value cannot be written into a unit file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EscapeError {
    #[error("contains a NUL byte, which no command argument or unit file value can carry")]
    Nul,
    #[error("contains {what}, which would break the unit file line")]
    ControlCharacter { what: String },
    #[error("ends with a backslash, which systemd would read as a line continuation")]
    TrailingBackslash,
    #[error("has leading or trailing whitespace, which systemd would strip")]
    SurroundingWhitespace,
    #[error("is {len} bytes long; the limit is {max}")]
    TooLong { len: usize, max: usize },
}

impl EscapeError {
    /// How to fix a value refused for this reason.
    pub fn hint(&self) -> &'static str {
        match self {
            EscapeError::Nul => "remove the NUL byte",
            EscapeError::ControlCharacter { .. } => {
                "write the value without it (in `command` and `environment` such characters are escaped for you)"
            }
            EscapeError::TrailingBackslash => "remove the trailing backslash",
            EscapeError::SurroundingWhitespace => "remove the leading and trailing whitespace",
            EscapeError::TooLong { .. } => {
                "pass long data in a file the command reads, or on its standard input (the job's `stdin` key)"
            }
        }
    }
}

/// Encodes one `ExecStart=` argument: double-quoted and C-escaped, with `%`
/// doubled (specifiers) and `$` doubled (environment expansion), so that the
/// process receives exactly `arg`.
pub fn exec_arg(arg: &str) -> Result<String, EscapeError> {
    if arg.len() > MAX_ARG_LEN {
        return Err(EscapeError::TooLong {
            len: arg.len(),
            max: MAX_ARG_LEN,
        });
    }
    quoted(arg, true)
}

/// Encodes `KEY=VALUE` for `Environment=`: double-quoted and C-escaped with
/// `%` doubled (`$` is not expanded in `Environment=`). The key must already
/// be a valid variable name. systemd accepts tabs and newlines in values;
/// other control characters are rejected, as systemd would ignore the line.
pub fn environment_assignment(key: &str, value: &str) -> Result<String, EscapeError> {
    if value.len() > MAX_ARG_LEN {
        return Err(EscapeError::TooLong {
            len: value.len(),
            max: MAX_ARG_LEN,
        });
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n'))
    {
        return Err(control_error(c));
    }
    quoted(&format!("{key}={value}"), false)
}

/// Checks and encodes a value systemd takes verbatim apart from `%`
/// specifiers (`Description=`, paths, names): no line breaks or other control
/// characters, no trailing backslash, no surrounding whitespace.
pub fn plain_value(value: &str) -> Result<String, EscapeError> {
    check_plain(value)?;
    Ok(value.replace('%', "%%"))
}

/// The checks of [`plain_value`] without the encoding, for values systemd
/// does not expand specifiers in (the `X-Jobctl-*` keys, comments).
pub fn check_plain(value: &str) -> Result<(), EscapeError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(EscapeError::TooLong {
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(control_error(c));
    }
    if value.trim_end().ends_with('\\') {
        return Err(EscapeError::TrailingBackslash);
    }
    if value.trim() != value {
        return Err(EscapeError::SurroundingWhitespace);
    }
    Ok(())
}

/// Checks a raw value from the `*_extra` tables: passed through as written
/// (specifiers included: the escape hatch is for people who want them), but
/// unable to start a new line or continue onto the next one.
pub fn check_raw_directive_value(value: &str) -> Result<(), EscapeError> {
    if value.len() > MAX_ARG_LEN {
        return Err(EscapeError::TooLong {
            len: value.len(),
            max: MAX_ARG_LEN,
        });
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(control_error(c));
    }
    if value.trim_end().ends_with('\\') {
        return Err(EscapeError::TrailingBackslash);
    }
    Ok(())
}

/// A single-line comment text: control characters shown as `?`.
pub fn comment_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn control_error(c: char) -> EscapeError {
    if c == '\0' {
        EscapeError::Nul
    } else {
        EscapeError::ControlCharacter {
            what: describe_char(c),
        }
    }
}

/// `"…"` with C escapes for `\`, `"` and control characters, `%` doubled,
/// and `$` doubled when `escape_dollar`.
fn quoted(text: &str, escape_dollar: bool) -> Result<String, EscapeError> {
    if text.contains('\0') {
        return Err(EscapeError::Nul);
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' if escape_dollar => out.push_str("$$"),
            c if c.is_control() => push_c_escape(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

fn push_c_escape(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
    }
}

/// Reads the words of an `ExecStart=` value the way systemd does for the
/// forms the encoders above produce (bare words, and double-quoted words
/// with C escapes), then undoes `%%` and `$$`. A `%` or `$` that systemd
/// would expand comes back as `<SPECIFIER>` or `<VARIABLE>`, so a caller can
/// see that expansion would have changed the word.
///
/// This is the parse-back check used by the unit tests and the fuzzer; the
/// real check runs rendered units on a real systemd
/// (tests/systemd_injection.rs).
pub fn read_exec_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ') {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next().ok_or("unterminated quote")? {
                    '"' => break,
                    '\\' => match chars.next().ok_or("dangling escape")? {
                        'n' => word.push('\n'),
                        't' => word.push('\t'),
                        'r' => word.push('\r'),
                        '\\' => word.push('\\'),
                        '"' => word.push('"'),
                        'x' => word.push(hex_char(&mut chars, 2)?),
                        'u' => word.push(hex_char(&mut chars, 4)?),
                        other => return Err(format!("unexpected escape \\{other}")),
                    },
                    c => word.push(c),
                }
            }
            if chars.peek().is_some_and(|c| *c != ' ') {
                return Err("a quoted word must be followed by a space".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                if matches!(c, '"' | '\'' | '\\') || c.is_control() {
                    return Err(format!("unexpected {c:?} in a bare word"));
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(expand_markers(&word));
    }
    Ok(words)
}

fn hex_char(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    digits: usize,
) -> Result<char, String> {
    let hex: String = chars.by_ref().take(digits).collect();
    u32::from_str_radix(&hex, 16)
        .ok()
        .and_then(char::from_u32)
        .ok_or_else(|| format!("bad escape digits {hex:?}"))
}

/// `%%` → `%` and `$$` → `$`; a lone `%` or `$` becomes a marker.
fn expand_markers(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' | '$' if chars.peek() == Some(&c) => {
                chars.next();
                out.push(c);
            }
            '%' => out.push_str("<SPECIFIER>"),
            '$' => out.push_str("<VARIABLE>"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hostile_values() -> Vec<String> {
        let mut values: Vec<String> = [
            "plain",
            "",
            " leading and trailing ",
            "new\nline",
            "carriage\rreturn",
            "semi;colon",
            ";",
            "\\;",
            "double\"quote",
            "single'quote",
            "back\\slash",
            "trailing\\",
            "%n %i %% %",
            "$HOME ${HOME} $$ $",
            "-leading-dash",
            "@at",
            "+plus",
            "!bang",
            "!!double",
            ":colon",
            "tab\there",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}control",
            "unicode é 🚀",
            "[Service]\nExecStart=/bin/sh -c evil",
            "a\\\nb",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        values.push("x".repeat(MAX_ARG_LEN));
        values
    }

    #[test]
    fn exec_args_read_back_to_themselves() {
        for value in hostile_values() {
            let encoded = exec_arg(&value).unwrap();
            assert!(
                !encoded.contains('\n') && !encoded.contains('\r'),
                "{encoded:?}"
            );
            assert_eq!(
                read_exec_words(&encoded),
                Ok(vec![value.clone()]),
                "{encoded:?}"
            );
        }
    }

    #[test]
    fn exec_arg_rejects_nul_and_oversize() {
        assert_eq!(exec_arg("a\0b"), Err(EscapeError::Nul));
        assert!(matches!(
            exec_arg(&"x".repeat(MAX_ARG_LEN + 1)),
            Err(EscapeError::TooLong { .. })
        ));
    }

    #[test]
    fn environment_values_keep_dollars_and_double_percent() {
        assert_eq!(
            environment_assignment("A", "$HOME 100% \"q\"").unwrap(),
            "\"A=$HOME 100%% \\\"q\\\"\""
        );
        assert_eq!(
            environment_assignment("A", "two\nlines").unwrap(),
            "\"A=two\\nlines\""
        );
        assert!(matches!(
            environment_assignment("A", "cr\r"),
            Err(EscapeError::ControlCharacter { .. })
        ));
    }

    #[test]
    fn plain_values_are_single_safe_lines() {
        assert_eq!(plain_value("Backup 100%").unwrap(), "Backup 100%%");
        assert!(matches!(
            plain_value("a\nExecStart=/bin/evil"),
            Err(EscapeError::ControlCharacter { .. })
        ));
        assert_eq!(plain_value("ends\\"), Err(EscapeError::TrailingBackslash));
        assert_eq!(plain_value("ends\\  "), Err(EscapeError::TrailingBackslash));
        assert_eq!(plain_value(" x"), Err(EscapeError::SurroundingWhitespace));
        assert_eq!(plain_value("a\0"), Err(EscapeError::Nul));
    }

    #[test]
    fn raw_directive_values() {
        assert!(check_raw_directive_value("%N-%i").is_ok());
        assert!(check_raw_directive_value("a\nb").is_err());
        assert!(check_raw_directive_value("a\\").is_err());
    }
}
