//! `jobctl token create --jobs … --tag …` and `token list` with filters,
//! without systemd: what is kept, what is shown, and what is refused
//! (naming the option, changing nothing).

use crate::support::TestEnv;

fn token(env: &TestEnv, config: &std::path::Path, args: &[&str]) -> std::process::Output {
    env.jobctl()
        .arg("--config")
        .arg(config)
        .arg("token")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_token_keeps_its_job_and_tag_filter() {
    let env = TestEnv::new();
    let config = env.write_config("");
    let out = token(
        &env,
        &config,
        &[
            "create",
            "--scope",
            "read,run",
            "--jobs",
            "etl-*, backup",
            "--tag",
            "nightly",
            "--name",
            "etl",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = token(&env, &config, &["create", "--name", "all"]);
    assert!(out.status.success(), "{out:?}");
    let list = token(&env, &config, &["list"]);
    assert_eq!(
        String::from_utf8_lossy(&list.stdout),
        "etl\tread,run\tjobs=etl-*,backup\ttags=nightly\nall\tread\n"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&token(&env, &config, &["list", "--json"]).stdout).unwrap();
    assert_eq!(
        json["tokens"],
        serde_json::json!([
            {"name": "etl", "scopes": ["read", "run"], "jobs": ["etl-*", "backup"], "tags": ["nightly"]},
            {"name": "all", "scopes": ["read"], "jobs": [], "tags": []},
        ])
    );
    let file = std::fs::read_to_string(env.path().join("web-tokens")).unwrap();
    assert!(file.contains(" jobs=etl-*,backup tags=nightly\n"), "{file}");
}

#[test]
fn a_bad_filter_is_refused_naming_the_option_and_nothing_is_kept() {
    let env = TestEnv::new();
    let config = env.write_config("");
    for (args, option) in [
        (&["--jobs", "../etc"][..], "--jobs"),
        (&["--jobs", "a,,b"][..], "--jobs"),
        (&["--tag", "two words"][..], "--tag"),
        (&["--tag", ""][..], "--tag"),
    ] {
        let mut all = vec!["create", "--name", "bad"];
        all.extend_from_slice(args);
        let out = token(&env, &config, &all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(option), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "no token printed: {args:?}");
        assert!(!env.path().join("web-tokens").exists(), "{args:?}");
    }
}
