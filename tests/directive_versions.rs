//! The directive version table (jobctl_core::directives, generated from
//! systemd's man pages by scripts/gen-directive-versions) against a real
//! systemd: every directive the table says is newer than the installed
//! systemd is unknown to its `systemd-analyze verify` ("Unknown key"), and
//! every directive it says is as old or older is known. On systemd 252 that
//! is every directive, in both directions.

use std::process::Command;

use jobctl_core::directives::{self, Section};

use crate::support::{RunExt as _, TestEnv, installed_systemd_or_skip};

#[test]
fn the_table_agrees_with_systemd_analyze_verify() {
    let Some(installed) = installed_systemd_or_skip() else {
        return;
    };
    let env = TestEnv::new();
    // One unit per directive: a value systemd cannot parse can make it give
    // up on the rest of a file, and each unit here holds only one.
    let table: Vec<(Section, &str, u32)> = directives::all().collect();
    let mut files = Vec::new();
    for (index, (section, name, _)) in table.iter().enumerate() {
        let (file, text) = match section {
            Section::Timer => (
                format!("d{index}.timer"),
                format!("[Timer]\nOnCalendar=daily\n{name}=\n"),
            ),
            Section::Service => (
                format!("d{index}.service"),
                format!("[Service]\nExecStart=/bin/true\n{name}=\n"),
            ),
            Section::Unit => (
                format!("d{index}.service"),
                format!("[Unit]\n{name}=\n[Service]\nExecStart=/bin/true\n"),
            ),
        };
        let path = env.path().join(&file);
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let log = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&files)
        .run()
        .stderr_then_stdout();
    let mut wrong = Vec::new();
    for (index, (section, name, added)) in table.iter().enumerate() {
        let file = files[index].display().to_string();
        // 252: "Unknown key 'X' in section [S], ignoring."; newer systemd:
        // "Unknown key name 'X' in section 'S', ignoring."
        let unknown = log
            .lines()
            .any(|l| l.starts_with(&format!("{file}:")) && l.contains("Unknown key"));
        if unknown != (*added > installed) {
            wrong.push(format!(
                "[{}] {name}=: the table says systemd {added}, systemd {installed} {}",
                section.name(),
                if unknown {
                    "does not know it"
                } else {
                    "knows it"
                }
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} directive(s) disagree:\n{}\n\nsystemd-analyze said:\n{log}",
        wrong.len(),
        wrong.join("\n")
    );
    // The check saw both kinds (on systemd 252: 67 newer directives).
    let newer = table.iter().filter(|(_, _, v)| *v > installed).count();
    if installed < 261 {
        assert!(newer > 0, "nothing newer than {installed} in the table");
    }
    assert!(table.len() - newer > 300);
}
