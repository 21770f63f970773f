//! Text shared by the formats: making recorded text safe to show, bounding
//! it, and the facts every human-readable format lists.

use crate::Notification;

/// Characters that must never reach a display raw besides the C0/C1 controls:
/// line and paragraph separators, and the bidirectional overrides and
/// isolates that reorder what a reader sees.
fn is_invisible_hazard(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// One line for a header or a title: every control character, line break and
/// hazard becomes a space; runs of spaces collapse; trimmed.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_control() || is_invisible_hazard(c) {
            ' '
        } else {
            c
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Multi-line text for a body or a code block: CRLF and lone CR become LF,
/// tabs stay, every other control character (ESC, NUL, C1 …) and hazard is
/// written as a visible escape (`\x1b`, `\u{202e}`).
pub(crate) fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            c if c.is_control() && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || is_invisible_hazard(c) => {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// The detail of an attempt: one line of printable ASCII, at most 300
/// characters.
pub(crate) fn detail(s: &str) -> String {
    const MAX: usize = 300;
    let mut out = String::with_capacity(s.len().min(MAX));
    for c in s.chars() {
        let c = match c {
            ' '..='~' => c,
            c if c.is_control() || c.is_whitespace() => ' ',
            _ => '?',
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let mut out = out.trim_end().to_string();
    if out.len() > MAX {
        out.truncate(MAX - 3);
        out.push_str("...");
    }
    out
}

/// At most `max` characters: the start of `s`, ending in "…" when cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` characters: the end of `s` (the last lines matter most),
/// starting after a line break where one is near, behind a "…" line when
/// cut.
pub(crate) fn tail_chars(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(2); // "…\n"
    let skip = count - keep;
    let start = s.char_indices().nth(skip).map_or(s.len(), |(i, _)| i);
    let mut rest = &s[start..];
    // Start at a whole line unless that throws away more than half.
    if let Some(nl) = rest.find('\n')
        && nl < rest.len() / 2
    {
        rest = &rest[nl + 1..];
    }
    format!("…\n{rest}")
}

/// `SIGKILL` for 9; `signal 70` for a number that names none here.
pub(crate) fn signal_name(n: i32) -> String {
    match nix::sys::signal::Signal::try_from(n) {
        Ok(sig) => sig.as_str().to_string(),
        Err(_) => format!("signal {n}"),
    }
}

/// `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`, `3 d 4 h`.
pub(crate) fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{}.{} s", s, (ms % 1000) / 100),
        60_000..3_600_000 => format!("{} min {} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The run's status as a reader wants it: `failed (exit 3)`,
/// `killed (SIGKILL)`, `timeout (exit 143)`.
pub(crate) fn status_line(n: &Notification) -> Option<String> {
    let status = n.status.as_deref().map(one_line);
    let how = match (n.exit_code, n.signal) {
        (_, Some(sig)) => Some(signal_name(sig)),
        (Some(code), None) => Some(format!("exit {code}")),
        (None, None) => None,
    };
    match (status, how) {
        (Some(s), Some(h)) => Some(format!("{s} ({h})")),
        (Some(s), None) => Some(s),
        (None, Some(h)) => Some(h),
        (None, None) => None,
    }
}

/// The summary line, or one made from the event when the caller gave none.
pub(crate) fn summary(n: &Notification) -> String {
    let s = one_line(&n.summary);
    if s.is_empty() {
        one_line(&format!("{} {} on {}", n.job, n.event, n.host))
    } else {
        s
    }
}

/// The key facts, in the order a reader on a phone wants them, each value one
/// line. The journal hint and the output are shown apart.
pub(crate) fn facts(n: &Notification) -> Vec<(String, String)> {
    let mut facts = Vec::new();
    let mut push = |label: &str, value: String| {
        if !value.is_empty() {
            facts.push((label.to_string(), value));
        }
    };
    push("Status", status_line(n).unwrap_or_default());
    push("Job", one_line(&n.job));
    push("Host", one_line(&n.host));
    push("Event", one_line(&n.event));
    push(
        "Started",
        n.started.as_deref().map(one_line).unwrap_or_default(),
    );
    push(
        "Ended",
        n.ended.as_deref().map(one_line).unwrap_or_default(),
    );
    push("Duration", n.duration_ms.map(duration).unwrap_or_default());
    if n.failure_streak > 1 {
        push("Failures in a row", n.failure_streak.to_string());
    }
    for (label, value) in &n.details {
        let label = one_line(label);
        push(
            if label.is_empty() { "Detail" } else { &label },
            one_line(value),
        );
    }
    push("Run", n.run_id.as_deref().map(one_line).unwrap_or_default());
    push(
        "Invocation",
        n.invocation_id.as_deref().map(one_line).unwrap_or_default(),
    );
    facts
}

/// The output tail made visible, without trailing blank lines; `None` when
/// there is none.
pub(crate) fn output(n: &Notification) -> Option<String> {
    let tail = visible(n.output_tail.as_deref()?);
    let tail = tail.trim_end_matches(['\n', ' ', '\t']);
    (!tail.is_empty()).then(|| tail.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_every_break_and_control() {
        assert_eq!(
            one_line("a\r\nb\u{1b}[31m\u{2028}c\u{202e}d\t"),
            "a b [31m c d"
        );
        assert_eq!(one_line("  spaced   out  "), "spaced out");
    }

    #[test]
    fn visible_escapes_controls_and_keeps_lines() {
        assert_eq!(
            visible("a\r\nb\rc\u{1b}[0m\u{0}\u{85}\u{202e}\tz"),
            "a\nb\nc\\x1b[0m\\x00\\x85\\u{202e}\tz"
        );
    }

    #[test]
    fn detail_is_one_short_ascii_line() {
        assert_eq!(detail("HTTP 500:\n  über\u{1b}x"), "HTTP 500: ?ber x");
        let long = "x".repeat(1000);
        assert_eq!(detail(&long).len(), 300);
    }

    #[test]
    fn tails_keep_the_end_at_a_line_start() {
        let s = "line1\nline2\nline3\nline4";
        assert_eq!(tail_chars(s, 100), s);
        let t = tail_chars(s, 14);
        assert!(t.chars().count() <= 14, "{t:?}");
        assert!(t.starts_with("…\n") && t.ends_with("line4"), "{t:?}");
        assert_eq!(t, "…\nline3\nline4");
        // Multi-byte characters are never split.
        let u = tail_chars(&"é".repeat(50), 10);
        assert_eq!(u, format!("…\n{}", "é".repeat(8)));
        assert_eq!(truncate_chars("ééééé", 3), "éé…");
    }

    #[test]
    fn durations_and_signals_read_well() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(245_000), "4 min 5 s");
        assert_eq!(duration(7_380_000), "2 h 3 min");
        assert_eq!(duration(2 * 86_400_000 + 3_600_000), "2 d 1 h");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(70), "signal 70");
    }
}
