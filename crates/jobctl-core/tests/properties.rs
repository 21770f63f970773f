//! Properties of loading and rendering that must hold for every input:
//! no panics, and units that cannot be tampered with. Random job files are
//! built from the real keys with hostile values (quotes, backslashes,
//! specifiers, variables, control characters, line breaks, long strings).
//! The fuzz target in fuzz/ checks the same properties on raw bytes for
//! longer runs.

use jobctl_core::config::{Config, HistoryConfig};
use jobctl_core::context::{Mode, UtcOnly};
use jobctl_core::directives::{SystemdTarget, VersionSource};
use jobctl_core::job::{JobSource, LoadContext, Now, load_job};
use jobctl_core::render::{RenderOptions, check_unit_shape, command_words, render};
use proptest::prelude::*;

/// Strings that try to break out of a unit file value.
fn hostile_string() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a",
        " ",
        "\"",
        "'",
        "\\",
        "\\n",
        "\n",
        "\r",
        "\t",
        ";",
        "%",
        "%n",
        "%%",
        "$",
        "$HOME",
        "${X}",
        "$$",
        "[Service]",
        "ExecStart=/bin/evil",
        "=",
        "#",
        "-",
        "@",
        "+",
        "!",
        ":",
        "é",
        "🚀",
        "\u{7}",
        "\u{85}",
        "\u{2028}",
        "\\x41",
        "\\",
        "~",
    ]);
    prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
}

/// A TOML string literal holding `s` exactly.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn job_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(hostile_string(), 1..6),
        hostile_string(),
        hostile_string(),
        hostile_string(),
        prop::option::of(hostile_string()),
        prop::bool::ANY,
    )
        .prop_map(
            |(argv, description, env_value, extra_value, stdin, shell)| {
                let mut text = String::new();
                if shell {
                    text.push_str(&format!("shell = {}\n", toml_string(&argv.join(" "))));
                } else {
                    let mut words = vec!["/usr/bin/prog".to_string()];
                    words.extend(argv);
                    let list: Vec<String> = words.iter().map(|w| toml_string(w)).collect();
                    text.push_str(&format!("command = [{}]\n", list.join(", ")));
                }
                text.push_str(&format!("description = {}\n", toml_string(&description)));
                text.push_str("daily = \"02:15\"\n");
                if let Some(stdin) = stdin {
                    text.push_str(&format!("stdin = {}\n", toml_string(&stdin)));
                }
                text.push_str(&format!(
                    "environment = {{ VALUE = {} }}\n",
                    toml_string(&env_value)
                ));
                text.push_str(&format!(
                    "[service_extra]\nLimitNOFILE = {}\n",
                    toml_string(&extra_value)
                ));
                text
            },
        )
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let config = Config::default();
    let history = HistoryConfig::default();
    let utc = jiff::tz::TimeZone::UTC;
    for mode in [Mode::System, Mode::User] {
        let ctx = LoadContext {
            mode,
            config: &config,
            zones: &UtcOnly,
            now: Some(Now {
                instant: jiff::Timestamp::from_second(1_780_000_000).unwrap(),
                local: &utc,
            }),
            systemd: Some(SystemdTarget {
                version: 252,
                source: VersionSource::Manager,
            }),
            root_files: None,
        };
        let loaded = load_job(
            JobSource {
                path: "p.toml",
                stem: "p",
                text,
            },
            &ctx,
        );
        let Some(job) = loaded.job else {
            prop_assert!(loaded.diagnostics.iter().any(|d| d.is_error()));
            continue;
        };
        let opts = RenderOptions {
            mode,
            unit_prefix: "jobctl-",
            jobctl_path: "/usr/bin/jobctl",
            local_zone: &jiff::tz::TimeZone::UTC,
            zones: &UtcOnly,
            history: &history,
            systemd_version: Some(252),
            user_state_dir: None,
        };
        let rendered = render(&job, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for unit in std::iter::once(&rendered.service).chain(rendered.timer.as_ref()) {
            check_unit_shape(&unit.contents)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{}", unit.contents)))?;
        }
        let words = command_words(&rendered.service.contents).map_err(TestCaseError::fail)?;
        prop_assert_eq!(words, job.command.argv());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn hostile_job_files_render_safe_units(text in job_text()) {
        check(&text)?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check(&text)?;
    }

    #[test]
    fn arbitrary_toml_shapes_never_panic(
        keys in prop::collection::vec(prop::sample::select(jobctl_core::job::JOB_KEYS.to_vec()), 0..8),
        values in prop::collection::vec(prop::sample::select(vec![
            "1", "-1", "0", "99999999999999999999", "1.5", "true", "\"\"", "\"x\"", "[]", "[\"a\", 1]",
            "{}", "{ a = 1 }", "2027-02-28", "2027-02-28T10:00:00Z", "\"15min\"", "\"02:15\"", "\"Mon 10:00\"",
            "\"1 09:00\"", "\"/abs\"", "\"rel\"", "inf", "nan",
        ]), 0..8),
    ) {
        let text: String = keys.iter().zip(values.iter()).map(|(k, v)| format!("{k} = {v}\n")).collect();
        check(&text)?;
    }
}
