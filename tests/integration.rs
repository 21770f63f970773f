//! The integration tests that need no throwaway systemd, as one test binary
//! (ripgrep's and jj's layout): every file in tests/ is a module of it, and
//! all of them share tests/support ([`support::TestEnv`]). The real-systemd
//! suite is the other binary, tests/systemd_e2e/main.rs (docs/testing.md).

mod oracle;
mod support;

mod calendar_cli;
mod calendar_dst;
mod calendar_errors;
mod calendar_oracle;
mod cli_bounds;
mod cli_core;
mod completions;
mod cron_dst;
mod cron_errors;
mod cron_oracle;
mod directive_versions;
mod exec_faults;
mod exec_run;
mod exec_scale;
mod exec_usage;
mod exec_users;
mod export_k8s;
mod fixtures_invalid;
mod gaps_cli;
mod golden_units;
mod history_cli;
mod import_crontab;
mod import_oracle;
mod logs_cli;
mod man_pages;
mod origin_cli;
mod permissions;
mod prometheus_rules;
mod token_cli;
mod trial;
mod validate_systemd;

/// No test file is forgotten: every `.rs` file under tests/ is the root of
/// one of the package's test binaries or a module one of them declares, so
/// a new file that nobody declares fails here instead of never running.
#[test]
fn every_test_file_is_compiled() {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    let root = support::root();
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        manifest["package"]
            .get("autotests")
            .and_then(|v| v.as_bool()),
        Some(false),
        "Cargo.toml declares the test binaries itself (autotests = false)"
    );
    let binaries: Vec<PathBuf> = manifest["test"]
        .as_array()
        .expect("[[test]] entries in Cargo.toml")
        .iter()
        .map(|t| root.join(t["path"].as_str().expect("a path for each [[test]]")))
        .collect();

    // Follow `mod NAME;` declarations from each binary's root, the way rustc
    // finds module files (NAME.rs or NAME/mod.rs beside a root or mod.rs,
    // in a folder named after any other file).
    let mut compiled = BTreeSet::new();
    let mut todo: Vec<(PathBuf, bool)> = binaries.iter().map(|b| (b.clone(), true)).collect();
    while let Some((file, owns_dir)) = todo.pop() {
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        compiled.insert(file.clone());
        let dir = if owns_dir || file.ends_with("mod.rs") {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        // `#[path = "…"]` on the line before a `mod` names its file,
        // relative to the declaring file's folder.
        let mut explicit: Option<PathBuf> = None;
        for line in text.lines() {
            let line = line.trim_start().trim_start_matches("pub ");
            if let Some(path) = line
                .strip_prefix("#[path = \"")
                .and_then(|l| l.strip_suffix("\"]"))
            {
                explicit = Some(file.parent().unwrap().join(path));
                continue;
            }
            let Some(name) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';')) else {
                explicit = None;
                continue;
            };
            if let Some(path) = explicit.take() {
                assert!(
                    path.exists(),
                    "{}: no file {}",
                    file.display(),
                    path.display()
                );
                // Files outside tests/ (a crate's test support) are not ours
                // to account for; follow only those inside.
                if path.starts_with(root.join("tests")) {
                    todo.push((path, false));
                }
                continue;
            }
            let flat = dir.join(format!("{name}.rs"));
            let nested = dir.join(name).join("mod.rs");
            match (flat.exists(), nested.exists()) {
                (true, _) => todo.push((flat, false)),
                (false, true) => todo.push((nested, false)),
                (false, false) => panic!("{}: no file for `mod {name};`", file.display()),
            }
        }
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&root.join("tests"), &mut files);
    let forgotten: Vec<_> = files
        .iter()
        .filter(|f| !compiled.contains(*f))
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(
        forgotten.is_empty(),
        "test files no test binary compiles (declare them with `mod` in \
         tests/integration.rs, or in tests/systemd_e2e/main.rs for the real-systemd suite): \
         {forgotten:?}"
    );
    assert!(compiled.len() > 20, "{compiled:?}");
}
