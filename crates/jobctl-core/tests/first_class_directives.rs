//! The first-class job keys only write directives that systemd 247 (the
//! oldest jobctl supports) knows, by the directive table generated from
//! systemd's documentation (jobctl_core::directives); the one exception,
//! `on_success` (OnSuccess=, 249), is refused for older systemd.

use jobctl_core::config::{Config, HistoryConfig};
use jobctl_core::context::{Mode, UtcOnly};
use jobctl_core::directives::{self, Section};
use jobctl_core::job::{JobSource, LoadContext, load_job};
use jobctl_core::render::{RenderOptions, render};

/// Every first-class key (no `*_extra`), in the three identities a job can
/// run as.
fn jobs() -> Vec<(Mode, String)> {
    let common = r#"
description = "every key"
command = ["/usr/local/bin/etl", "--full"]
working_directory = "/srv/etl"
environment = { BATCH_SIZE = "500" }
environment_file = ["/etc/default/etl"]
timeout = "2h"
stdin = "input\n"
on_calendar = "Mon..Fri *-*-* 02:15:00"
every = "7min"
hourly = ":05"
daily = "12:00"
weekly = "mon 08:00"
monthly = "1,last 09:00"
timezone = "UTC"
persistent = true
randomized_delay = "5min"
accuracy = "30s"
on_boot = "10min"
nice = 5
memory_max = "2G"
cpu_quota = "150%"
io_weight = 200
private_tmp = true
protect_system = "strict"
no_new_privileges = true
after = ["network-online.target"]
wants = ["network-online.target"]
on_failure = ["notify@%n.service", "cleanup"]
not_after = 2099-12-31
retry = { attempts = 4, delay = "30s", backoff = 2.0, max_delay = "10min" }
output_limit = "8M"
"#;
    vec![
        (
            Mode::System,
            format!("{common}user = \"etl\"\ngroup = \"etl\"\n"),
        ),
        (Mode::System, format!("{common}dynamic_user = true\n")),
        (Mode::User, common.to_string()),
    ]
}

#[test]
fn first_class_keys_write_only_directives_systemd_247_knows() {
    let config = Config::default();
    let history = HistoryConfig {
        db: Some("/srv/history.db".into()),
        ..HistoryConfig::default()
    };
    let mut seen = 0;
    for (mode, text) in jobs() {
        let ctx = LoadContext {
            mode,
            config: &config,
            zones: &UtcOnly,
            now: None,
            systemd: None,
            root_files: None,
        };
        let loaded = load_job(
            JobSource {
                path: "every.toml",
                stem: "every",
                text: &text,
            },
            &ctx,
        );
        let job = loaded
            .job
            .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics));
        let opts = RenderOptions {
            mode,
            unit_prefix: "jobctl-",
            jobctl_path: "/usr/bin/jobctl",
            local_zone: &jiff::tz::TimeZone::UTC,
            zones: &UtcOnly,
            history: &history,
            systemd_version: Some(247),
            user_state_dir: None,
        };
        let rendered = render(&job, &opts).unwrap();
        for unit in std::iter::once(&rendered.service).chain(rendered.timer.as_ref()) {
            let mut section = None;
            for line in unit.contents.lines() {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some(name) = line.strip_prefix('[') {
                    section = match name {
                        "Unit]" => Some(Section::Unit),
                        "Service]" => Some(Section::Service),
                        "Timer]" => Some(Section::Timer),
                        // [Install] is no job's to extend.
                        _ => None,
                    };
                    continue;
                }
                let (Some(section), Some((name, _))) = (section, line.split_once('=')) else {
                    continue;
                };
                if name.starts_with("X-") {
                    continue;
                }
                let added = directives::added_in(section, name);
                assert!(
                    added.is_some_and(|v| v <= 247),
                    "{}: [{}] {name}= is systemd {added:?}",
                    unit.name,
                    section.name()
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 60, "{seen}");
}

#[test]
fn on_success_is_the_one_key_that_needs_a_newer_systemd() {
    use jobctl_core::render::RenderError;
    let config = Config::default();
    let history = HistoryConfig::default();
    let ctx = LoadContext {
        mode: Mode::System,
        config: &config,
        zones: &UtcOnly,
        now: None,
        systemd: None,
        root_files: None,
    };
    let text = "command = [\"/bin/true\"]\nmanual = true\non_success = [\"publish\"]\n";
    let job = load_job(
        JobSource {
            path: "a.toml",
            stem: "a",
            text,
        },
        &ctx,
    )
    .job
    .unwrap();
    let render_for = |version| {
        render(
            &job,
            &RenderOptions {
                mode: Mode::System,
                unit_prefix: "jobctl-",
                jobctl_path: "/usr/bin/jobctl",
                local_zone: &jiff::tz::TimeZone::UTC,
                zones: &UtcOnly,
                history: &history,
                systemd_version: Some(version),
                user_state_dir: None,
            },
        )
    };
    assert_eq!(
        render_for(248).unwrap_err(),
        RenderError::UnsupportedKey {
            needed: 249,
            running: 248
        }
    );
    assert_eq!(directives::added_in(Section::Unit, "OnSuccess"), Some(249));
    let rendered = render_for(249).unwrap();
    assert!(
        rendered
            .service
            .contents
            .contains("\nOnSuccess=jobctl-publish.service\n"),
        "{}",
        rendered.service.contents
    );
}
