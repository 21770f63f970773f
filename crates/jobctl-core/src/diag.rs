//! Diagnostics: errors and warnings about a file, pointing at a line, a column
//! and a key, with a hint saying how to fix it.
//!
//! Validation never stops at the first problem: decoders push every
//! diagnostic they find into a [`Diagnostics`] list, and the caller reports
//! them all.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is valid but probably not what its author meant.
    Warning,
    /// The file cannot be used.
    Error,
}

/// One finding about one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file, as the caller named it.
    pub file: String,
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: usize,
    /// 1-based column in characters; 0 when the problem is about the file as a whole.
    pub column: usize,
    /// The dotted key the problem is about (`retry.delay`), when there is one.
    pub key: Option<String>,
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `error: FILE:LINE:COL: key `KEY`: MESSAGE` and an indented `hint:` line.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: {}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Maps byte offsets of one source text to lines and columns.
#[derive(Debug, Clone)]
pub struct SourceMap<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceMap { text, line_starts }
    }

    /// 1-based line and character column of a byte offset (clamped to the text).
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_index];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line_index + 1, column)
    }

    pub fn text(&self) -> &'a str {
        self.text
    }
}

/// The diagnostics found in one file.
#[derive(Debug, Clone)]
pub struct Diagnostics<'a> {
    file: String,
    source: SourceMap<'a>,
    items: Vec<Diagnostic>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(file: impl Into<String>, text: &'a str) -> Self {
        Diagnostics {
            file: file.into(),
            source: SourceMap::new(text),
            items: Vec::new(),
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn source(&self) -> &SourceMap<'a> {
        &self.source
    }

    /// Records a problem at a byte range of the source (or the whole file for `None`).
    pub fn push(
        &mut self,
        severity: Severity,
        span: Option<Range<usize>>,
        key: Option<&str>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let (line, column) = span.map_or((0, 0), |s| self.source.line_column(s.start));
        self.items.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line,
            column,
            key: key.map(str::to_string),
            message: message.into(),
            hint,
        });
    }

    pub fn error(
        &mut self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        self.push(Severity::Error, Some(span), Some(key), message, hint.into());
    }

    pub fn warning(
        &mut self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        self.push(
            Severity::Warning,
            Some(span),
            Some(key),
            message,
            hint.into(),
        );
    }

    /// Whether an error was recorded for a key matching `matches`.
    pub fn has_error_for(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.items
            .iter()
            .any(|d| d.is_error() && d.key.as_deref().is_some_and(&matches))
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics, in source order.
    pub fn into_vec(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| (d.line, d.column));
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let map = SourceMap::new("a = 1\nbé = \"x\"\n");
        assert_eq!(map.line_column(0), (1, 1));
        assert_eq!(map.line_column(4), (1, 5));
        assert_eq!(map.line_column(6), (2, 1));
        // "é" is two bytes but one column.
        assert_eq!(map.line_column(9), (2, 3));
        assert_eq!(map.line_column(1000), (3, 1));
    }

    #[test]
    fn display_names_file_position_key_and_hint() {
        let mut diags = Diagnostics::new("jobs.d/x.toml", "comand = []\n");
        diags.error(
            0..6,
            "comand",
            "unknown key",
            Some("did you mean `command`?".to_string()),
        );
        let all = diags.into_vec();
        assert_eq!(
            all[0].to_string(),
            "error: jobs.d/x.toml:1:1: `comand`: unknown key\n  hint: did you mean `command`?"
        );
    }
}
