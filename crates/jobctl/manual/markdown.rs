//! The section-5 pages, `jobctl.toml(5)` and `jobctl-config.toml(5)`, made
//! from docs/job-file.md, so that the reference is written once.
//!
//! The converter reads the Markdown that page is written in and nothing
//! more: `#`/`##`/`###` headings, paragraphs with `` `code` ``, `**bold**`
//! and `[links](…)`, fenced code blocks, tables and `-` lists. Anything
//! else (a deeper heading, a numbered list, a quote, HTML, an unclosed
//! `` ` ``) is an error naming the line, so the page can never silently
//! lose text: extend the converter when the document needs more.

use std::fmt::Write as _;

use super::roff;
use super::{Header, Page};

/// One block of the document, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
enum Block {
    Heading(usize, String),
    Paragraph(String),
    Code(Vec<String>),
    Table(Vec<Vec<String>>),
    List(Vec<String>),
}

/// The headings of docs/job-file.md that the pages are cut at.
const CONFIG_SECTION: &str = "The global configuration";
const FORMATS_SECTION: &str = "Value formats";

/// `jobctl.toml.5` (every section but the configuration's) and
/// `jobctl-config.toml.5` (the configuration and the value formats).
pub fn file_format_pages(doc: &str, header: &Header) -> Result<Vec<Page>, String> {
    let blocks = parse(doc)?;
    // The preamble (before the first `##`) and the `##` sections.
    let mut preamble = Vec::new();
    let mut sections: Vec<(String, Vec<Block>)> = Vec::new();
    for block in blocks {
        match block {
            Block::Heading(1, _) => {}
            Block::Heading(2, title) => sections.push((title, Vec::new())),
            other => match sections.last_mut() {
                Some((_, body)) => body.push(other),
                None => preamble.push(other),
            },
        }
    }
    let section = |title: &str| {
        sections
            .iter()
            .find(|(t, _)| t == title)
            .map(|(_, body)| body)
            .ok_or_else(|| format!("docs/job-file.md has no section \"## {title}\""))
    };

    let mut job = String::new();
    job.push_str(&header.th("jobctl.toml", "5"));
    job.push_str(".SH NAME\njobctl.toml \\- job files of jobctl, one job per file\n");
    job.push_str(
        ".SH SYNOPSIS\n.I /etc/jobctl/jobs.d/NAME.toml\n.br\n.I ~/.config/jobctl/jobs.d/NAME.toml\n",
    );
    job.push_str(".SH DESCRIPTION\n");
    job.push_str(&render_blocks(preamble.iter().filter(
        |b| !matches!(b, Block::Paragraph(p) if p.starts_with("Contents:")),
    ))?);
    for (title, body) in &sections {
        if title == CONFIG_SECTION {
            job.push_str(&format!(
                ".SH {}\n{}",
                roff::arg(&heading_text(title, true)),
                roff::text_paragraph("The configuration, its [defaults] for every job and its [history] settings are described in jobctl-config.toml(5).")
            ));
            continue;
        }
        job.push_str(&format!(".SH {}\n", roff::arg(&heading_text(title, true))));
        job.push_str(&render_blocks(body.iter())?);
    }
    job.push_str(&see_also(&[
        "jobctl(1)",
        "jobctl-validate(1)",
        "jobctl-render(1)",
        "jobctl-apply(1)",
        "jobctl-config.toml(5)",
        "systemd.service(5)",
        "systemd.timer(5)",
        "systemd.time(7)",
        "crontab(5)",
    ]));

    let mut config = String::new();
    config.push_str(&header.th("jobctl-config.toml", "5"));
    config.push_str(".SH NAME\njobctl-config.toml \\- global configuration of jobctl\n");
    config.push_str(
        ".SH SYNOPSIS\n.I /etc/jobctl/config.toml\n.br\n.I ~/.config/jobctl/config.toml\n",
    );
    config.push_str(".SH DESCRIPTION\n");
    config.push_str(&render_blocks(section(CONFIG_SECTION)?.iter())?);
    config.push_str(&roff::text_paragraph(
        "--config FILE (or $JOBCTL_CONFIG) reads another file instead. \
         jobctl validate checks the configuration with the job files.",
    ));
    config.push_str(&format!(
        ".SH {}\n",
        roff::arg(&heading_text(FORMATS_SECTION, true))
    ));
    config.push_str(&render_blocks(section(FORMATS_SECTION)?.iter())?);
    config.push_str(&see_also(&[
        "jobctl(1)",
        "jobctl.toml(5)",
        "systemd.time(7)",
    ]));

    Ok(vec![
        Page {
            file_name: "jobctl.toml.5".into(),
            text: roff::tidy(&job),
        },
        Page {
            file_name: "jobctl-config.toml.5".into(),
            text: roff::tidy(&config),
        },
    ])
}

fn see_also(refs: &[&str]) -> String {
    let list: Vec<String> = refs.iter().map(|r| roff::man_ref(r)).collect();
    format!(".SH \"SEE ALSO\"\n{}\n", list.join(",\n"))
}

/// Splits the document into blocks; an unsupported construct is an error
/// naming its line.
fn parse(doc: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    let at = |i: usize| format!("docs/job-file.md:{}", i + 1);
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() {
            i += 1;
        } else if let Some(rest) = line.strip_prefix("```") {
            if rest.contains('`') {
                return Err(format!("{}: a code fence with text after it", at(i)));
            }
            let start = i;
            i += 1;
            let mut code = Vec::new();
            while i < lines.len() && lines[i] != "```" {
                code.push(lines[i].to_string());
                i += 1;
            }
            if i == lines.len() {
                return Err(format!("{}: the code block is not closed", at(start)));
            }
            i += 1;
            blocks.push(Block::Code(code));
        } else if line.starts_with('#') {
            let level = line.len() - line.trim_start_matches('#').len();
            let title = line[level..].trim();
            if !(1..=3).contains(&level) || !line[level..].starts_with(' ') {
                return Err(format!(
                    "{}: only #, ## and ### headings are supported",
                    at(i)
                ));
            }
            blocks.push(Block::Heading(level, title.to_string()));
            i += 1;
        } else if line.starts_with('|') {
            let mut rows = Vec::new();
            while i < lines.len() && lines[i].starts_with('|') {
                rows.push(cells(lines[i]).map_err(|e| format!("{}: {e}", at(i)))?);
                i += 1;
            }
            let separator_ok = rows.get(1).is_some_and(|r| {
                r.iter()
                    .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
            });
            if !separator_ok {
                return Err(format!(
                    "{}: a table needs a header row and a |---| row",
                    at(i - rows.len())
                ));
            }
            rows.remove(1);
            blocks.push(Block::Table(rows));
        } else if line.starts_with("- ") {
            let mut items: Vec<String> = Vec::new();
            while i < lines.len() {
                let l = lines[i];
                if let Some(item) = l.strip_prefix("- ") {
                    items.push(item.trim().to_string());
                } else if l.starts_with("  ") && !l.trim().is_empty() {
                    let last = items.last_mut().expect("a list starts with an item");
                    last.push(' ');
                    last.push_str(l.trim());
                } else {
                    break;
                }
                i += 1;
            }
            blocks.push(Block::List(items));
        } else if unsupported(line) {
            return Err(format!(
                "{}: unsupported Markdown (quote, numbered list, HTML, nested list or rule): {line}",
                at(i)
            ));
        } else {
            let mut text = String::new();
            while i < lines.len() {
                let l = lines[i];
                if l.trim().is_empty()
                    || l.starts_with("```")
                    || l.starts_with('#')
                    || l.starts_with('|')
                    || l.starts_with("- ")
                {
                    break;
                }
                if unsupported(l) {
                    return Err(format!("{}: unsupported Markdown: {l}", at(i)));
                }
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(l.trim());
                i += 1;
            }
            blocks.push(Block::Paragraph(text));
        }
    }
    Ok(blocks)
}

fn unsupported(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('>')
        || t.starts_with('<')
        || t.starts_with("* ")
        || t.starts_with("+ ")
        || t.starts_with("---")
        || t.starts_with("***")
        || (line.starts_with(' ') && t.starts_with("- "))
        || t.split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// The cells of a table row, split at `|` outside code spans.
fn cells(line: &str) -> Result<Vec<String>, String> {
    let inner = line
        .trim()
        .strip_prefix('|')
        .and_then(|l| l.strip_suffix('|'))
        .ok_or("a table row must start and end with |")?;
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut in_code = false;
    for c in inner.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                cell.push(c);
            }
            '|' if !in_code => {
                cells.push(cell.trim().to_string());
                cell.clear();
            }
            _ => cell.push(c),
        }
    }
    cells.push(cell.trim().to_string());
    Ok(cells)
}

fn render_blocks<'a>(blocks: impl Iterator<Item = &'a Block>) -> Result<String, String> {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Heading(3, title) => {
                let _ = writeln!(out, ".SS {}", heading_roff(title)?);
            }
            Block::Heading(level, title) => {
                return Err(format!(
                    "a level-{level} heading where none is expected: {title}"
                ));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, ".PP\n{}", inline_line(text)?);
            }
            Block::Code(lines) => {
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                out.push_str(".PP\n");
                out.push_str(&roff::literal_block(&lines));
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, ".IP \\(bu 2\n{}", inline_line(item)?);
                }
            }
            Block::Table(rows) => {
                let (head, body) = rows.split_first().ok_or("an empty table")?;
                for row in body {
                    if row.len() != head.len() {
                        return Err(format!(
                            "a table row with {} cells under {} headers: {row:?}",
                            row.len(),
                            head.len()
                        ));
                    }
                    let _ = writeln!(out, ".TP\n{}", inline_line(&row[0])?);
                    let details: Vec<String> = head[1..]
                        .iter()
                        .zip(&row[1..])
                        .map(|(h, cell)| {
                            Ok(format!("{}: {}", inline(&capitalized(h))?, inline(cell)?))
                        })
                        .collect::<Result<_, String>>()?;
                    let _ = writeln!(out, "{}", details.join("\n.br\n"));
                }
            }
        }
    }
    Ok(out)
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A `##` title for `.SH`: upper case, as man pages head their sections,
/// except the code in it (key names keep their case); no fonts.
fn heading_text(title: &str, upper: bool) -> String {
    let mut out = String::new();
    for (i, part) in title.split('`').enumerate() {
        if i % 2 == 1 || !upper {
            out.push_str(part);
        } else {
            out.push_str(&part.to_uppercase());
        }
    }
    out
}

/// A `###` title for `.SS`, with its code in bold.
fn heading_roff(title: &str) -> Result<String, String> {
    Ok(format!("\"{}\"", inline(title)?.replace('"', "\\(dq")))
}

/// A paragraph's text as one roff text line.
fn inline_line(text: &str) -> Result<String, String> {
    let line = inline(text)?;
    Ok(if line.starts_with('.') {
        format!("\\&{line}")
    } else {
        line
    })
}

/// Inline Markdown as roff: `` `code` `` and `**bold**` in bold, links as
/// their text; the repository's docs/*.md named as installed.
fn inline(text: &str) -> Result<String, String> {
    let text = installed_doc_paths(text);
    let mut out = String::new();
    let mut bold = false;
    let mut rest = text.as_str();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('`') {
            let end = after
                .find('`')
                .ok_or_else(|| format!("an unclosed ` in: {text}"))?;
            let code = roff::escape(&after[..end]);
            if bold {
                out.push_str(&code);
            } else {
                let _ = write!(out, "\\fB{code}\\fR");
            }
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix("**") {
            bold = !bold;
            out.push_str(if bold { "\\fB" } else { "\\fR" });
            rest = after;
        } else if let Some((label, after)) = link(rest) {
            out.push_str(&inline(label)?);
            rest = after;
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push_str(&roff::escape(c.encode_utf8(&mut [0; 4])));
            rest = &rest[c.len_utf8()..];
        }
    }
    if bold {
        return Err(format!("an unclosed ** in: {text}"));
    }
    Ok(out)
}

/// `[label](target)` at the start of `s`: the label and what follows.
fn link(s: &str) -> Option<(&str, &str)> {
    let after = s.strip_prefix('[')?;
    let close = after.find("](")?;
    let label = &after[..close];
    if label.contains('[') || label.contains('`') && label.matches('`').count() % 2 == 1 {
        return None;
    }
    let target = &after[close + 2..];
    let end = target.find(')')?;
    Some((label, &target[end + 1..]))
}

/// The repository's `docs/NAME.md` as installed by the package:
/// docs/job-file.md is this page, jobctl.toml(5); the others are in
/// /usr/share/doc/jobctl.
fn installed_doc_paths(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("docs/") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "docs/".len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let preceded_by_path = out.ends_with('/') || out.ends_with(|c: char| c.is_alphanumeric());
        if !preceded_by_path && !name.is_empty() && after[name_len..].starts_with(".md") {
            if name == "job-file" {
                out.push_str("jobctl.toml(5)");
            } else {
                let _ = write!(out, "/usr/share/doc/jobctl/{name}.md");
            }
            rest = &after[name_len + ".md".len()..];
        } else {
            out.push_str("docs/");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_becomes_fonts_and_nothing_leaks() {
        assert_eq!(
            inline("**Not for `secrets`.** Use `a-b` or [x](#y)").unwrap(),
            "\\fBNot for secrets.\\fR Use \\fBa\\-b\\fR or x"
        );
        assert!(inline("an `unclosed code").is_err());
        assert!(inline("an **unclosed bold").is_err());
    }

    #[test]
    fn repository_paths_become_installed_ones() {
        assert_eq!(
            installed_doc_paths("see docs/schedules.md and docs/job-file.md, not foo/docs/x.md"),
            "see /usr/share/doc/jobctl/schedules.md and jobctl.toml(5), not foo/docs/x.md"
        );
    }

    #[test]
    fn unsupported_markdown_is_an_error_with_its_line() {
        for doc in [
            "# T\n\n> quoted\n",
            "# T\n\n1. first\n",
            "# T\n\n#### deep\n",
            "# T\n\n```\nnot closed\n",
        ] {
            let err = parse(doc).unwrap_err();
            assert!(err.starts_with("docs/job-file.md:"), "{err}");
        }
    }

    #[test]
    fn tables_become_tagged_paragraphs() {
        let blocks = parse("| key | type |\n|---|---|\n| `nice` | integer |\n").unwrap();
        assert_eq!(
            render_blocks(blocks.iter()).unwrap(),
            ".TP\n\\fBnice\\fR\nType: integer\n"
        );
    }
}
