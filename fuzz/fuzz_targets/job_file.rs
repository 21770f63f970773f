//! Fuzzes the whole path a job file takes: TOML parsing, decoding and
//! validation, then rendering. Whatever the input, nothing may panic, and
//! every unit rendered from a file that validated must be well-formed (no
//! line outside the sections jobctl writes, no continuation lines) and run
//! exactly the job's command.
#![no_main]

use jobctl_core::config::{Config, HistoryConfig};
use jobctl_core::context::{Mode, UtcOnly};
use jobctl_core::directives::{SystemdTarget, VersionSource};
use jobctl_core::job::{JobSource, LoadContext, Now, load_job};
use jobctl_core::render::{RenderOptions, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = Config::default();
    for mode in [Mode::System, Mode::User] {
        let ctx = LoadContext {
            mode,
            config: &config,
            zones: &UtcOnly,
            now: Some(Now {
                instant: jiff::Timestamp::from_second(1_780_000_000).unwrap(),
                local: &jiff::tz::TimeZone::UTC,
            }),
            systemd: Some(SystemdTarget { version: 252, source: VersionSource::Manager }),
            root_files: None,
        };
        let loaded = load_job(JobSource { path: "fuzz.toml", stem: "fuzz", text }, &ctx);
        let Some(job) = loaded.job else { continue };
        let history = HistoryConfig::default();
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
        let Ok(rendered) = render(&job, &opts) else { continue };
        for unit in std::iter::once(&rendered.service).chain(rendered.timer.as_ref()) {
            jobctl_core::render::check_unit_shape(&unit.contents)
                .unwrap_or_else(|e| panic!("malformed unit: {e}\n{}", unit.contents));
        }
        // The command systemd will run is exactly the job's command.
        let words = jobctl_core::render::command_words(&rendered.service.contents)
            .unwrap_or_else(|e| panic!("unreadable ExecStart=: {e}\n{}", rendered.service.contents));
        assert_eq!(words, job.command.argv(), "{}", rendered.service.contents);
    }
});
