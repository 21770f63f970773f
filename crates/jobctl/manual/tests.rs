//! The pages hold what they document: a page for every subcommand, an entry
//! for every job key and every configuration key. (That the pages render
//! without a warning is checked with mandoc, groff and lexgrog in
//! tests/man_pages.rs.)

use clap::CommandFactory as _;
use jobctl_core::config::{CONFIG_KEYS, HISTORY_KEYS};
use jobctl_core::job::{DEFAULTABLE_KEYS, JOB_KEYS};

use super::*;

fn all_pages() -> Vec<Page> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/job-file.md")).unwrap();
    pages(&doc, &Header::new("2026-01-01")).unwrap()
}

fn page<'a>(pages: &'a [Page], name: &str) -> &'a str {
    &pages
        .iter()
        .find(|p| p.file_name == name)
        .unwrap_or_else(|| panic!("no page {name}"))
        .text
}

/// Whether `word` stands in `line` as a word of its own (not inside a
/// longer key: `user` in `dynamic_user`).
fn has_word(line: &str, word: &str) -> bool {
    let line = line
        .replace("\\fB", " ")
        .replace("\\fI", " ")
        .replace("\\fR", " ");
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        !line[..at].ends_with(is_key_char) && !line[at + word.len()..].starts_with(is_key_char)
    })
}

#[test]
fn every_subcommand_has_a_page_and_jobctl_1_names_it() {
    let pages = all_pages();
    let top = page(&pages, "jobctl.1");
    let mut cmd = Cli::command();
    cmd.build();
    let mut checked = 0;
    fn walk(cmd: &clap::Command, prefix: &str, pages: &[Page], top: &str, checked: &mut usize) {
        for sub in visible_subcommands(cmd) {
            let name = format!("{prefix}-{}", sub.get_name());
            let text = page(pages, &format!("{name}.1"));
            assert!(
                text.starts_with(&format!(".TH {} 1 ", roff::arg(&name.to_uppercase()))),
                "{name}: {}",
                text.lines().next().unwrap_or_default()
            );
            if prefix == "jobctl" {
                assert!(
                    top.contains(&format!(".BR {} (1)", roff::arg(&name))),
                    "jobctl(1) does not refer to {name}(1)"
                );
            }
            *checked += 1;
            walk(sub, &name, pages, top, checked);
        }
    }
    walk(&cmd, "jobctl", &pages, top, &mut checked);
    assert!(checked >= 19, "{checked}");
    // No page for what is hidden, nor for clap's `help`.
    assert!(!pages.iter().any(|p| p.file_name == "jobctl-help.1"
        || p.file_name == "jobctl-generate-man-pages.1"));
    assert_eq!(pages.len(), checked + 1 + 2);
}

#[test]
fn every_job_key_has_an_entry_in_jobctl_toml_5() {
    let pages = all_pages();
    let text = page(&pages, "jobctl.toml.5");
    let lines: Vec<&str> = text.lines().collect();
    // An entry: a heading naming the key, or a tagged paragraph whose tag
    // is the key.
    let entries: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|&(i, line)| {
            line.starts_with(".SH ") || line.starts_with(".SS ") || (i > 0 && lines[i - 1] == ".TP")
        })
        .map(|(_, line)| *line)
        .collect();
    for key in JOB_KEYS {
        assert!(
            entries.iter().any(|e| has_word(e, key)),
            "job key `{key}` has no heading or entry in jobctl.toml(5)"
        );
    }
    // The configuration has its own page.
    assert!(!text.contains("keep_runs"));
}

#[test]
fn every_configuration_key_is_in_jobctl_config_toml_5() {
    let pages = all_pages();
    let text = page(&pages, "jobctl-config.toml.5");
    for key in CONFIG_KEYS
        .iter()
        .chain(HISTORY_KEYS)
        .chain(jobctl_core::web::WEB_KEYS)
        .chain(DEFAULTABLE_KEYS)
    {
        assert!(
            text.lines().any(|l| has_word(l, key)),
            "configuration key `{key}` is not in jobctl-config.toml(5)"
        );
    }
}

#[test]
fn exit_statuses_are_the_one_list() {
    let pages = all_pages();
    let top = page(&pages, "jobctl.1");
    for exit in Exit::ALL {
        assert!(
            top.contains(&format!(".TP\n.B {}\n", exit.code())),
            "exit status {} is not in jobctl(1)",
            exit.code()
        );
    }
}

#[test]
fn pages_are_ascii_roff_with_no_markdown_left() {
    for page in all_pages() {
        assert!(page.text.is_ascii(), "{}", page.file_name);
        assert!(page.text.starts_with(".TH "), "{}", page.file_name);
        for marker in ["```", "**", "](#"] {
            assert!(
                !page.text.contains(marker),
                "{}: {marker} left in the page",
                page.file_name
            );
        }
    }
}

#[test]
fn the_repository_paths_are_the_installed_ones() {
    let pages = all_pages();
    let text = page(&pages, "jobctl.toml.5");
    assert!(text.contains("/usr/share/doc/jobctl/schedules.md"));
    assert!(!text.contains(" docs/"), "a repository path is left");
}
