//! Writing roff (man(7)) safely: every text goes through one of these, so
//! that no character of the source can become a request, an escape or a
//! macro argument boundary.

use std::fmt::Write as _;

/// Escapes text for roff: a backslash prints as one (`\e`), `-` is the
/// ASCII hyphen-minus that can be copied into a shell (`\-`), and `'` and
/// `` ` `` stay ASCII quotes (`\(aq`, `\(ga`) rather than becoming curly
/// ones. Characters outside ASCII are left for [`ascii_only`].
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '\'' => out.push_str("\\(aq"),
            '`' => out.push_str("\\(ga"),
            _ => out.push(c),
        }
    }
    out
}

/// Text lines in fill mode: each line of `s` escaped, and protected from
/// starting with a control character (`.`, `'`) or a space (which would
/// break the line).
pub fn text(s: &str) -> String {
    s.lines()
        .map(|line| text_line(line.trim_start()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line, already escaped or not: `\&` before a leading `.`.
fn text_line(line: &str) -> String {
    let escaped = escape(line);
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// A paragraph of text.
pub fn text_paragraph(s: &str) -> String {
    format!(".PP\n{}\n", text(s))
}

/// A macro argument: escaped, double-quoted when it holds a space, a `"`
/// written as `\(dq`.
pub fn arg(s: &str) -> String {
    let escaped = escape(s).replace('"', "\\(dq");
    if escaped.is_empty() || escaped.contains(' ') {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

/// A reference to another page, `name(section)`, as `.BR name (section)`;
/// anything after the closing parenthesis (a comma) stays with it.
pub fn man_ref(reference: &str) -> String {
    match reference.split_once('(') {
        Some((name, rest)) => format!(".BR {} ({}", arg(name), escape(rest)),
        None => format!(".B {}", arg(reference)),
    }
}

/// A literal block: lines kept as they are (no filling), indented.
pub fn literal_block(lines: &[&str]) -> String {
    let mut s = String::from(".RS 4\n.nf\n");
    for line in lines {
        let _ = writeln!(s, "{}", literal_line(line));
    }
    s.push_str(".fi\n.RE\n");
    s
}

/// A line of a literal block: escaped, protected from a leading control
/// character; spaces are kept.
fn literal_line(line: &str) -> String {
    let escaped = escape(line);
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// clap's help text (a long about, verbatim or not) as roff: paragraphs at
/// blank lines, filled; indented lines (the examples, aligned lists) kept
/// line for line, as `--help` shows them.
pub fn help_text(help: &str) -> String {
    let mut out = String::new();
    let mut first = true;
    for paragraph in help.split("\n\n") {
        let lines: Vec<&str> = paragraph.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            continue;
        }
        if !first {
            out.push_str(".PP\n");
        }
        first = false;
        let mut i = 0;
        while i < lines.len() {
            if lines[i].starts_with(' ') {
                let start = i;
                while i < lines.len() && lines[i].starts_with(' ') {
                    i += 1;
                }
                let block: Vec<&str> = lines[start..i].iter().map(|l| dedent(l, 2)).collect();
                out.push_str(&literal_block(&block));
            } else {
                out.push_str(&text_line(lines[i]));
                out.push('\n');
                i += 1;
            }
        }
    }
    out
}

fn dedent(line: &str, by: usize) -> &str {
    let spaces = line.len() - line.trim_start_matches(' ').len();
    &line[spaces.min(by)..]
}

/// The finished page: clap_mangen's apostrophe string defined once, after
/// `.TH`, not once per section rendered; no paragraph macro right after a
/// heading or a second break around a blank line (both are no-ops that
/// mandoc warns about); no trailing spaces; only ASCII ([`ascii_only`]).
pub fn tidy(page: &str) -> String {
    const AQ: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let uses_aq = page.contains(AQ);
    let page = page.replace(AQ, "").replace(".br\n\n.br\n", ".sp\n");
    let mut out = String::with_capacity(page.len());
    let mut after_heading = false;
    for line in page.lines() {
        if after_heading && line == ".PP" {
            continue;
        }
        after_heading = line.starts_with(".SH ") || line.starts_with(".SS ");
        out.push_str(line.trim_end_matches(' '));
        out.push('\n');
        if uses_aq && line.starts_with(".TH ") {
            out.push_str(AQ);
        }
    }
    ascii_only(&out)
}

/// Replaces every character outside ASCII by its roff escape (`\[u2014]`),
/// which groff and mandoc read whatever the page's encoding is taken to be.
pub fn ascii_only(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let _ = write!(out, "\\[u{:04X}]", c as u32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_in_a_text_becomes_a_request_or_an_escape() {
        assert_eq!(
            text(".rm x\n'so /etc/passwd"),
            "\\&.rm x\n\\(aqso /etc/passwd"
        );
        assert_eq!(text("a \\fB b"), "a \\efB b");
        assert_eq!(text("--user"), "\\-\\-user");
        assert_eq!(arg("a \"b\""), "\"a \\(dqb\\(dq\"");
        assert_eq!(ascii_only("a — b…"), "a \\[u2014] b\\[u2026]");
    }

    #[test]
    fn help_text_keeps_examples_line_for_line() {
        let help = "Start a job.\n\nExamples:\n  jobctl run a\n  jobctl run b --wait\n";
        assert_eq!(
            help_text(help),
            "Start a job.\n.PP\nExamples:\n.RS 4\n.nf\njobctl run a\njobctl run b \\-\\-wait\n.fi\n.RE\n"
        );
    }
}
