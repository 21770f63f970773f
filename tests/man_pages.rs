//! The man pages as readers get them: every page `jobctl generate-man-pages`
//! writes (what packaging/build-deb installs) renders with `man -l` without
//! a single groff warning (the command lintian runs), passes `mandoc -T
//! lint` at warning level, and has a NAME line lexgrog (man-db's whatis
//! parser) reads as `name - description`.

use std::path::{Path, PathBuf};

use crate::support::{TestEnv, root, tool_or_skip};

/// Generates the pages into `dir`; returns every page's path.
fn generate(env: &TestEnv, dir: &Path) -> Vec<PathBuf> {
    env.run([
        "generate-man-pages".as_ref(),
        "--out".as_ref(),
        dir.as_os_str(),
        "--job-file-doc".as_ref(),
        root().join("docs/job-file.md").as_os_str(),
        "--date".as_ref(),
        "2026-12-05".as_ref(),
    ])
    .success();
    let mut pages = Vec::new();
    for section in ["man1", "man5"] {
        for entry in std::fs::read_dir(dir.join(section)).unwrap() {
            pages.push(entry.unwrap().path());
        }
    }
    pages.sort();
    pages
}

#[test]
fn every_page_renders_without_a_warning() {
    if !tool_or_skip("/usr/bin/man", "man-db renders the pages")
        || !tool_or_skip("/usr/bin/groff", "groff renders the pages")
        || !tool_or_skip("/usr/bin/mandoc", "mandoc lints the pages")
        || !tool_or_skip("/usr/bin/lexgrog", "lexgrog reads their NAME lines")
    {
        return;
    }
    let env = TestEnv::new();
    let out = env.dir("man");
    let pages = generate(&env, &out);
    assert!(pages.len() > 20, "{pages:?}");
    let mut problems = Vec::new();
    for page in &pages {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        // lintian's own command (checks/documentation/manual).
        let man = env
            .command("man")
            .args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
            .arg(page)
            .env("MANROFFSEQ", "")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let warnings = String::from_utf8_lossy(&man.stderr);
        if !man.status.success() || !warnings.trim().is_empty() || man.stdout.is_empty() {
            problems.push(format!("man -l {name}: {warnings}"));
        }
        let lint = env
            .command("mandoc")
            .args(["-T", "lint", "-W", "warning"])
            .arg(page)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
        if !lint.status.success() || !said.trim().is_empty() {
            problems.push(format!("mandoc -T lint {name}: {said}"));
        }
        let whatis = env.command("lexgrog").arg(page).output().unwrap();
        let whatis = String::from_utf8_lossy(&whatis.stdout);
        let stem = name.rsplit_once('.').unwrap().0;
        if !whatis.contains(&format!(": \"{stem} - ")) {
            problems.push(format!("lexgrog {name}: {whatis}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check above can fail: a page with a roff mistake is reported by both
/// tools.
#[test]
fn the_checks_see_a_broken_page() {
    if !tool_or_skip("/usr/bin/man", "man-db renders the pages")
        || !tool_or_skip("/usr/bin/mandoc", "mandoc lints the pages")
    {
        return;
    }
    let env = TestEnv::new();
    let page = env.path().join("broken.1");
    std::fs::write(
        &page,
        ".TH BROKEN 1 2026-12-05\n.SH NAME\nbroken \\- x\n.XY\n\\fQ\n",
    )
    .unwrap();
    let man = env
        .command("man")
        .args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(!man.stderr.is_empty());
    let lint = env
        .command("mandoc")
        .args(["-T", "lint", "-W", "warning"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(!lint.status.success());
}

/// What a reader sees of jobctl.toml(5): the reference's text, with no
/// Markdown left and the repository's paths replaced by installed ones.
#[test]
fn jobctl_toml_5_reads_as_the_reference() {
    if !tool_or_skip("/usr/bin/man", "man-db renders the pages") {
        return;
    }
    let env = TestEnv::new();
    let out = env.dir("man");
    generate(&env, &out);
    let shown = env
        .command("man")
        .args(["-l", "-Tutf8"])
        .arg(out.join("man5/jobctl.toml.5"))
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    // Bold and underline come as overstrikes: drop them as col -b does.
    let text = strip_overstrike(&String::from_utf8_lossy(&shown.stdout));
    for expected in [
        "jobctl.toml - job files of jobctl, one job per file",
        "THE COMMAND",
        "command — array of strings",
        "command = [\"/opt/warehouse/venv/bin/python\", \"-m\", \"warehouse.refresh\", \"--full\"]",
        "Renders to: MemoryMax=",
        "/usr/share/doc/jobctl/schedules.md",
        "jobctl-config.toml(5)",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    for leftover in ["```", "**", "](#", " docs/", "(docs/"] {
        assert!(!text.contains(leftover), "{leftover:?} left in:\n{text}");
    }
}

fn strip_overstrike(text: &str) -> String {
    let mut out: Vec<char> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{8}' {
            out.pop();
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out.into_iter().collect()
}
