//! Errors from parsing calendar expressions and computing their elapses.
//!
//! Every parse error carries the byte range of the offending part of the
//! expression, so callers can underline it inside a job file's string, and
//! often a hint saying how to write what was meant.

use std::fmt;
use std::ops::Range;

/// What kind of problem a [`CalendarError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The expression does not follow the grammar of systemd.time(7).
    Syntax,
    /// A value or repetition is outside its field's range.
    OutOfRange,
    /// A number too large to represent.
    Overflow,
    /// More than systemd's 241 elements in one component list.
    TooManyComponents,
    /// The trailing time zone does not exist on this host.
    UnknownZone,
    /// The time zone exists but jobctl cannot compute in it (leap-second
    /// `right/` zones).
    UnsupportedZone,
    /// systemd refuses to compute from this base time (past 9999-12-30).
    BaseTimeOutOfRange,
    /// systemd's safety valve: 1000 iterations without a result. systemd
    /// logs "Infinite loop in calendar calculation" and the timer fails.
    InfiniteLoop,
    /// The arithmetic failed the way `mktime()` fails in systemd; systemd
    /// reports "Invalid argument" for such an elapse.
    Compute,
}

/// A calendar expression that systemd would reject, or an elapse systemd
/// could not compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarError {
    kind: ErrorKind,
    message: String,
    span: Range<usize>,
    hint: Option<String>,
}

impl CalendarError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>, span: Range<usize>) -> Self {
        CalendarError {
            kind,
            message: message.into(),
            span,
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the expression (e.g. `hour 25 is out of range 0..23`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Byte range of the offending part in the expression as given. Empty
    /// (`n..n`) when the problem is a missing part at byte `n`; `0..0` for
    /// errors that are not about a part of the text.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// How to fix it, when there is something specific to say.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CalendarError {}
