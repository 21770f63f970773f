//! The command line's own answers, none of which boots anything.

use std::process::Command;

const SANDBOX: &str = env!("CARGO_BIN_EXE_jobctl-sandbox");

/// `jobctl-sandbox boot --help` printed `unexpected argument "--help"`
/// before the usage and exited 125 (polish): `--help` and `-h` after any
/// subcommand now print the usage alone, on stdout, and exit 0.
#[test]
fn help_after_every_subcommand_prints_the_usage_and_succeeds() {
    for sub in ["run", "boot", "exec", "shutdown", "list"] {
        for flag in ["--help", "-h"] {
            let out = Command::new(SANDBOX).args([sub, flag]).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{sub} {flag}: {:?} {stderr}",
                out.status
            );
            assert!(stdout.starts_with("Usage:\n"), "{sub} {flag}: {stdout}");
            assert!(stderr.is_empty(), "{sub} {flag}: {stderr}");
        }
    }
    // Not a subcommand: still refused.
    let out = Command::new(SANDBOX)
        .args(["bogus", "--help"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown subcommand \"bogus\""));
}
