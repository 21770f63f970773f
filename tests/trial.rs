//! Examples in the documentation checked against what jobctl really does
//! (found by round 3's trial, reading the docs as a newcomer).

use crate::support::{RunExt, TestEnv, root};
use serde_json::Value;

/// The ```json blocks of `doc` that hold `needle`.
fn json_blocks(doc: &str, needle: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(doc)).expect("read the document");
    text.split("```json\n")
        .skip(1)
        .filter_map(|rest| rest.split("\n```").next())
        .filter(|block| block.contains(needle))
        .map(|block| {
            serde_json::from_str(block)
                .unwrap_or_else(|e| panic!("{doc}: a JSON example does not parse: {e}\n{block}"))
        })
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// docs/notifications.md shows the generic webhook payload twice; both must
/// have exactly the fields a real payload has, each of the same JSON type
/// (where neither is null). The second example had `details` as an object
/// and no `signal_name`.
#[test]
fn the_generic_payload_examples_match_a_real_payload() {
    let env = TestEnv::new();
    let config =
        env.write_config("[notify.channels.hook]\nwebhook = \"http://127.0.0.1:9/hook\"\n");
    let out = env
        .jobctl()
        .arg("--config")
        .arg(&config)
        .args(["notify", "test", "hook", "--dry-run"])
        .run();
    let stdout = out.stdout();
    let json = &stdout[stdout
        .find('{')
        .unwrap_or_else(|| panic!("no payload: {}", out.describe()))..];
    let real: Value = serde_json::from_str(json).expect("the dry run's payload is JSON");
    let real = real.as_object().expect("an object");
    let examples = json_blocks("docs/notifications.md", "\"version\": 1");
    assert!(examples.len() >= 2, "the two payload examples are gone");
    for (i, example) in examples.iter().enumerate() {
        let example = example.as_object().expect("an object");
        let mut missing: Vec<&String> = real.keys().filter(|k| !example.contains_key(*k)).collect();
        missing.sort();
        let mut extra: Vec<&String> = example.keys().filter(|k| !real.contains_key(*k)).collect();
        extra.sort();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "example {} of the generic payload: missing {missing:?}, not sent {extra:?}",
            i + 1
        );
        for (key, value) in example {
            let sent = &real[key];
            if !value.is_null() && !sent.is_null() {
                assert_eq!(
                    kind(value),
                    kind(sent),
                    "example {}: `{key}` is {} in the example, {} when sent",
                    i + 1,
                    kind(value),
                    kind(sent)
                );
            }
        }
        // A `details` entry is a label and a value.
        for d in example["details"].as_array().into_iter().flatten() {
            let mut keys: Vec<&String> = d.as_object().expect("an object").keys().collect();
            keys.sort();
            assert_eq!(keys, ["label", "value"], "example {}: a detail {d}", i + 1);
        }
    }
}

/// The shipped configuration (packaging/config.toml, /etc/jobctl/config.toml
/// of the package) says "the values shown commented are the defaults"; its
/// `[history]` lines said `keep_age = "90d"` and `max_output = "1G"` while
/// the built-in defaults are 180 days and 256 MiB.
#[test]
fn the_shipped_configuration_shows_the_real_history_defaults() {
    use jobctl_history::Retention;
    let text = std::fs::read_to_string(root().join("packaging/config.toml")).unwrap();
    assert!(text.contains("the values shown commented are the defaults"));
    let history = text
        .split("\n[history]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("a [history] table");
    let shown: String = history
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.contains(" = "))
        .map(|l| format!("{l}\n"))
        .collect();
    let shown: toml::Table = shown.parse().expect("the commented lines are TOML");
    let days = Retention::DEFAULT_KEEP_AGE_US / (86_400 * 1_000_000);
    let mib = Retention::DEFAULT_MAX_OUTPUT >> 20;
    let want: toml::Table = format!(
        "keep_runs = {}\nkeep_age = \"{days}d\"\nmax_output = \"{mib}M\"\n",
        Retention::DEFAULT_KEEP_RUNS
    )
    .parse()
    .unwrap();
    assert_eq!(shown, want, "packaging/config.toml's [history] defaults");
}

/// `history JOB` and `notifications JOB` show nothing for a job with no
/// records, and stay successful (a removed job's records stay readable), but
/// a name that matches no job file is most likely a typo: a note says so,
/// with the closest name, where `status` would fail with "unknown job".
#[test]
fn a_mistyped_job_name_gets_a_note_not_just_nothing() {
    let env = TestEnv::new();
    env.write_job("flaky", "command = [\"/bin/false\"]\nmanual = true\n");
    let config = env.write_config("");
    let jobs = env.jobs_dir();
    env.exec("flaky", &[], &["out", "a run"]).success();
    for args in [
        vec!["history", "flaki", "--db", env.db().to_str().unwrap()],
        vec!["notifications", "flaki"],
    ] {
        let out = env
            .jobctl()
            .arg("--config")
            .arg(&config)
            .arg("--jobs-dir")
            .arg(&jobs)
            .args(&args)
            .run();
        assert!(out.status.success(), "{args:?}: {}", out.describe());
        let want = format!(
            "jobctl: no job \"flaki\" in {}; did you mean \"flaky\"?",
            jobs.display()
        );
        assert!(
            out.stderr().contains(&want),
            "{args:?}: no note {want:?}: {}",
            out.describe()
        );
        // A job that exists gets no note.
        let real: Vec<&str> = args
            .iter()
            .map(|a| if *a == "flaki" { "flaky" } else { a })
            .collect();
        let out = env
            .jobctl()
            .arg("--config")
            .arg(&config)
            .arg("--jobs-dir")
            .arg(&jobs)
            .args(&real)
            .run();
        assert!(out.status.success(), "{real:?}: {}", out.describe());
        assert!(
            !out.stderr().contains("no job"),
            "{real:?}: {}",
            out.describe()
        );
    }
}
