//! jobctl's man pages, generated at build time (`jobctl generate-man-pages`,
//! run by packaging/build-deb): `jobctl(1)` and one page per subcommand from
//! the same clap definitions as `--help` (clap_mangen), and the two file
//! formats, `jobctl.toml(5)` and `jobctl-config.toml(5)`, from
//! docs/job-file.md ([`markdown`]). Nothing here is hand-written roff, so a
//! new subcommand, option or job key reaches the pages with no step of its
//! own (tests below and tests/man_pages.rs).

pub mod markdown;
pub mod roff;

use std::fmt::Write as _;

use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::exit::Exit;

/// One man page: its file name (`jobctl-run.1`) and its roff source.
#[derive(Debug, Clone)]
pub struct Page {
    pub file_name: String,
    pub text: String,
}

impl Page {
    /// The section the page belongs to (`1`, `5`), from its file name.
    pub fn section(&self) -> &str {
        self.file_name.rsplit('.').next().unwrap_or_default()
    }
}

/// What every page's `.TH` line carries besides its name and section.
#[derive(Debug, Clone)]
pub struct Header {
    /// The date of the last change, `YYYY-MM-DD` (packaging passes the
    /// changelog's, so the pages are reproducible).
    pub date: String,
    /// `jobctl 0.1.0`.
    pub source: String,
}

impl Header {
    pub fn new(date: &str) -> Header {
        Header {
            date: date.to_string(),
            source: format!("jobctl {}", env!("CARGO_PKG_VERSION")),
        }
    }

    fn th(&self, title: &str, section: &str) -> String {
        // The date unescaped: readers parse it (mandoc warns otherwise).
        format!(
            ".TH {} {section} {} {} {}\n",
            roff::arg(&title.to_uppercase()),
            self.date,
            roff::arg(&self.source),
            roff::arg("jobctl manual")
        )
    }
}

/// Every page: section 1 from the command line, section 5 from
/// docs/job-file.md (`job_file_doc`, its text).
pub fn pages(job_file_doc: &str, header: &Header) -> Result<Vec<Page>, String> {
    let mut pages = command_pages(header);
    pages.extend(markdown::file_format_pages(job_file_doc, header)?);
    Ok(pages)
}

/// `jobctl(1)` and one page per visible subcommand (`jobctl-run(1)`,
/// `jobctl-history-prune(1)`).
pub fn command_pages(header: &Header) -> Vec<Page> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    add_command_pages(&cmd, None, header, &mut pages);
    pages
}

/// The commands that have a page of their own: every subcommand clap shows.
pub fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

fn add_command_pages(
    cmd: &clap::Command,
    parent: Option<&str>,
    header: &Header,
    pages: &mut Vec<Page>,
) {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    pages.push(Page {
        file_name: format!("{name}.1"),
        text: command_page(cmd, &name, parent, header),
    });
    for sub in visible_subcommands(cmd) {
        add_command_pages(sub, Some(&name), header, pages);
    }
}

fn command_page(cmd: &clap::Command, name: &str, parent: Option<&str>, header: &Header) -> String {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = String::new();
    page.push_str(&header.th(name, "1"));
    page.push_str(&render(|w| man.render_name_section(w)));
    page.push_str(&render(|w| man.render_synopsis_section(w)));
    page.push_str(".SH DESCRIPTION\n");
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        page.push_str(&roff::help_text(&about.to_string()));
    }
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        page.push_str(&render(|w| man.render_options_section(w)));
    }
    if visible_subcommands(cmd).next().is_some() {
        page.push_str(&render(|w| man.render_subcommands_section(w)));
    }
    if parent.is_none() {
        page.push_str(&top_sections());
    }
    page.push_str(&see_also(cmd, name, parent));
    roff::tidy(&page)
}

fn render(f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = f(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// `jobctl(1)`'s own sections: exit statuses (the one list, [`Exit::ALL`]),
/// the environment and the files.
fn top_sections() -> String {
    let mut s = String::from(".SH \"EXIT STATUS\"\n");
    for exit in Exit::ALL {
        let _ = writeln!(s, ".TP\n.B {}\n{}", exit.code(), roff::text(exit.meaning()));
    }
    s.push_str(&roff::text_paragraph(
        "Where a job's own status is passed through (run --wait, exec), it is that status.",
    ));
    s.push_str(".SH ENVIRONMENT\n");
    for (var, meaning) in [
        (crate::env::JOBS_DIR, "the jobs folder, as --jobs-dir"),
        (crate::env::UNIT_DIR, "the unit folder, as --unit-dir"),
        (crate::env::CONFIG, "the configuration file, as --config"),
        (
            crate::commands::completions::COMPLETE_VAR,
            "set by the completion scripts (jobctl completions): the run answers a TAB",
        ),
        (
            crate::env::XDG_CONFIG_HOME,
            "per-user mode: the base of ~/.config",
        ),
        (
            crate::env::XDG_STATE_HOME,
            "per-user mode: the base of ~/.local/state, where the run history is",
        ),
        (crate::env::NO_COLOR, "set: no colour in the output"),
    ] {
        let _ = writeln!(s, ".TP\n.B {var}\n{}", roff::text(meaning));
    }
    s.push_str(".SH FILES\n");
    for (path, meaning) in [
        (
            "/etc/jobctl/jobs.d/*.toml",
            "job files, one job each (jobctl.toml(5))",
        ),
        (
            "/etc/jobctl/config.toml",
            "the configuration (jobctl-config.toml(5))",
        ),
        (
            "/etc/systemd/system/jobctl-*.service, jobctl-*.timer",
            "the units jobctl installs",
        ),
        ("/var/lib/jobctl/history.db", "the run history"),
        (
            "~/.config/jobctl/jobs.d, ~/.config/jobctl/config.toml",
            "the same in per-user mode (--user), with units in ~/.config/systemd/user",
        ),
        (
            "~/.local/state/jobctl/history.db",
            "the run history in per-user mode",
        ),
        (
            "/usr/share/doc/jobctl/",
            "the full documentation and example jobs",
        ),
    ] {
        let _ = writeln!(s, ".TP\n.I {}\n{}", roff::arg(path), roff::text(meaning));
    }
    s
}

fn see_also(cmd: &clap::Command, name: &str, parent: Option<&str>) -> String {
    let mut refs: Vec<String> = Vec::new();
    match parent {
        None => {
            refs.extend(visible_subcommands(cmd).map(|s| format!("{name}-{}(1)", s.get_name())));
        }
        Some(parent) => {
            if parent != "jobctl" {
                refs.push(format!("{parent}(1)"));
            }
            refs.insert(0, "jobctl(1)".into());
            refs.extend(visible_subcommands(cmd).map(|s| format!("{name}-{}(1)", s.get_name())));
        }
    }
    refs.extend(
        [
            "jobctl.toml(5)",
            "jobctl-config.toml(5)",
            "systemd.timer(5)",
            "systemd.service(5)",
            "systemd.time(7)",
            "systemctl(1)",
            "journalctl(1)",
        ]
        .map(String::from),
    );
    let mut s = String::from(".SH \"SEE ALSO\"\n");
    let list: Vec<String> = refs.iter().map(|r| roff::man_ref(r)).collect();
    s.push_str(&list.join(",\n"));
    s.push('\n');
    s.push_str(&roff::text_paragraph(
        "The full documentation (operations, design, schedules, the job file) is in /usr/share/doc/jobctl/.",
    ));
    s
}

#[cfg(test)]
mod tests;
