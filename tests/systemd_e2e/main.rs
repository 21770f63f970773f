//! The real-systemd suite: `jobctl apply/list/status/health/run/enable/
//! disable/remove/history/logs` against a real systemd 252, booted once in a
//! throwaway sandbox (crates/jobctl-sandbox) and shared by every case of
//! [`CASES`]. Units run the real run shim (`jobctl exec`), which records every
//! run in the sandbox's history databases. The cases run one at a time: they
//! share one systemd, one unit folder, one apply lock and one history.
//!
//! [`HOST_CASES`] need no shared sandbox: they check the host, or boot a
//! sandbox of their own (the sandbox's own smoke test, the package install).
//!
//! This is its own test binary because it needs its own harness
//! (libtest-mimic): `main` boots the sandbox before the first case and powers
//! it off after the last, which libtest's harness has no place for.
//!
//! Skips with a printed reason where a sandbox cannot run; fails instead when
//! JOBCTL_REQUIRE_ALL_TESTS=1 or CI=true.

mod ansible;
mod cli_core;
mod delivery;
// Shared with the delivery crate's own tests (delivery.rs uses them; tls.rs
// names `crate::hook`, so they live at the root).
#[path = "../../crates/jobctl-notify/tests/support/fixture.rs"]
mod fixture;
mod gaps;
mod gaps2;
#[path = "../../crates/fakehook/hook.rs"]
mod hook;
mod injection;
mod journal_remote;
mod json_docs;
mod knowing;
mod metrics;
mod origin;
mod packaging;
mod run_truth;
mod sandbox_smoke;
mod sysjournal;
#[path = "../../crates/jobctl-notify/tests/support/tls.rs"]
mod tls;
mod trial;
mod trial2;
mod trial3;
mod trust;
mod trust_fix;
mod userjournal;
mod watch;
mod web;
mod web_auth;
mod web_browser;
mod web_fresh;
mod web_live;
mod web_max_age;
mod web_user;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobctl_sandbox::{Options, Sandbox};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

const JOBCTL: &str = env!("CARGO_BIN_EXE_jobctl");
const UNIT_DIR: &str = "/etc/systemd/system";

struct Env {
    sb: Sandbox,
    scratch: PathBuf,
    config: PathBuf,
}

type R = Result<(), Failed>;
/// A case of the shared sandbox.
type Case = fn(&Env) -> R;
/// A case that needs no shared sandbox.
type HostCase = fn() -> R;

/// The cases run against the shared sandbox, in this order: one line each.
#[rustfmt::skip]
const CASES: &[(&str, Case)] = &[
    ("apply_from_empty_installs_and_starts_timers", apply_from_empty),
    ("reapply_changes_nothing_and_does_not_reload", reapply_is_a_no_op),
    ("updating_a_schedule_restarts_only_that_timer", update_schedule),
    ("check_and_diff_report_without_changing", check_and_diff),
    ("removing_a_job_file_removes_its_units", remove_job_file),
    ("a_timer_fires_on_schedule", timer_fires),
    ("run_wait_exits_with_the_jobs_exit_code", run_wait_exit_codes),
    ("a_job_runs_as_nobody_and_its_journal_is_found_by_invocation_id", runs_as_nobody),
    ("disabled_and_expired_jobs_have_no_running_timer", disabled_and_expired),
    ("a_foreign_unit_is_never_touched", foreign_unit),
    ("a_job_removed_while_running_is_not_killed", removed_while_running),
    ("operator_disable_survives_apply_until_the_job_file_changes", operator_override),
    ("remove_command_uninstalls_a_job", remove_command),
    ("unknown_jobs_get_a_suggestion", unknown_job),
    ("user_mode_through_user_at_0", user_mode),
    ("run_follow_streams_the_output_once", run_follow),
    ("permission_denied_says_run_as_root", permission_denied),
    ("a_partial_failure_reports_what_was_done_and_the_next_apply_converges", partial_failure),
    ("health_reports_each_problem", health_reports_each_problem),
    ("working_directory_is_entered_by_the_shim", working_directory_is_entered_by_the_shim),
    ("an_unusable_history_warns_in_the_journal", an_unusable_history_warns_in_the_journal),
    ("remove_purge_deletes_the_history", remove_purge_deletes_the_history),
    ("an_imported_user_crontab_runs_as_its_owner", an_imported_user_crontab_runs_as_its_owner),
    ("user_mode_warns_when_lingering_is_off", user_mode_warns_when_lingering_is_off),
    ("every_hint_printed_in_user_mode_works_when_pasted", every_hint_printed_in_user_mode_works_when_pasted),
    ("schedules_that_can_never_fire_are_refused_and_reported", schedules_that_can_never_fire),
    ("validate_and_apply_agree_on_directive_versions", validate_and_apply_agree_on_directive_versions),
    ("service_only_changes_never_restart_timers", trust::service_only_changes_never_restart_timers),
    ("hardening_never_costs_the_history", trust::hardening_never_costs_the_history),
    ("an_unwritable_history_is_a_health_problem", trust::an_unwritable_history_is_a_health_problem),
    ("run_reports_starts_that_did_not_happen", run_truth::run_reports_starts_that_did_not_happen),
    ("start_limits_never_swallow_scheduled_runs", run_truth::start_limits_never_swallow_scheduled_runs),
    ("units_systemd_cannot_load_are_refused_or_reported", run_truth::units_systemd_cannot_load_are_refused_or_reported),
    ("real_timeouts_stops_retries_and_sigkill_are_recorded", run_truth::real_timeouts_stops_retries_and_sigkill_are_recorded),
    ("output_up_to_a_stop_is_kept_when_the_command_ignores_sigterm", output_up_to_a_stop_is_kept),
    ("merge_output_keeps_the_exact_order_under_systemd", merge_output_under_systemd),
    ("root_never_follows_a_users_links", root_never_follows_a_users_links),
    ("a_user_cannot_forge_or_move_runs_root_sees", a_user_cannot_forge_or_move_runs_root_sees),
    ("injection::hostile_values_reach_the_command_exactly_or_are_rejected", injection::hostile_values_reach_the_command_exactly_or_are_rejected),
    ("concurrent_runs_report_the_run_in_progress", trust_fix::concurrent_runs_report_the_run_in_progress),
    ("a_file_apply_refuses_is_invalid_everywhere", trust_fix::a_file_apply_refuses_is_invalid_everywhere),
    ("every_hint_printed_as_root_works_when_pasted", trust_fix::every_hint_printed_as_root_works_when_pasted),
    ("a_users_rows_say_only_what_that_user_recorded", trust_fix::a_users_rows_say_only_what_that_user_recorded),
    ("a_timer_disabled_behind_jobctls_back_is_a_problem", trust_fix::a_timer_disabled_behind_jobctls_back_is_a_problem),
    ("cli_core::invalid_jobs_are_skipped_and_their_units_left_alone", cli_core::invalid_jobs_are_skipped_and_their_units_left_alone),
    ("cli_core::an_apply_of_another_folder_leaves_other_jobs_alone", cli_core::an_apply_of_another_folder_leaves_other_jobs_alone),
    ("cli_core::check_mode_plans_given_content_exactly", cli_core::check_mode_plans_given_content_exactly),
    ("cli_core::edit_apply_installs_the_change", cli_core::edit_apply_installs_the_change),
    ("cli_core::labels_are_shown_and_filtered_and_a_missing_folder_is_empty", cli_core::labels_are_shown_and_filtered_and_a_missing_folder_is_empty),
    ("knowing::jobs_chain_by_name_on_success_and_on_failure", knowing::jobs_chain_by_name_on_success_and_on_failure),
    ("knowing::chains_that_loop_or_name_no_job_are_refused", knowing::chains_that_loop_or_name_no_job_are_refused),
    ("knowing::the_cost_of_a_run_comes_from_its_cgroup", knowing::the_cost_of_a_run_comes_from_its_cgroup),
    ("knowing::every_run_is_in_the_journal_even_when_its_history_is_gone", knowing::every_run_is_in_the_journal_even_when_its_history_is_gone),
    ("ansible::playbooks_converge_with_exact_check_and_diff_modes", ansible::playbooks_converge_with_exact_check_and_diff_modes),
    ("ansible::the_run_module_returns_the_real_exit_status", ansible::the_run_module_returns_the_real_exit_status),
    ("ansible::per_user_mode_as_a_real_user", ansible::per_user_mode_as_a_real_user),
    ("json_docs::every_json_field_is_documented_and_every_documented_field_printed", json_docs::every_json_field_is_documented_and_every_documented_field_printed),
    ("journal_remote::a_failed_run_reaches_journal_remote_with_its_fields", journal_remote::a_failed_run_reaches_journal_remote_with_its_fields),
    ("watch::a_failure_reaches_the_channel_through_the_socket_once_then_one_recovery", watch::a_failure_reaches_the_channel_through_the_socket_once_then_one_recovery),
    ("watch::a_timer_stopped_behind_jobctls_back_is_overdue_once_then_recovers", watch::a_timer_stopped_behind_jobctls_back_is_overdue_once_then_recovers),
    ("watch::a_shim_killed_mid_run_is_lost_once", watch::a_shim_killed_mid_run_is_lost_once),
    ("watch::a_run_past_warn_after_is_an_overrun_once", watch::a_run_past_warn_after_is_an_overrun_once),
    ("watch::a_failing_channel_is_retried_with_backoff_then_given_up_and_the_job_is_untouched", watch::a_failing_channel_is_retried_with_backoff_then_given_up_and_the_job_is_untouched),
    ("watch::user_mode_watch_through_the_user_socket", watch::user_mode_watch_through_the_user_socket),
    ("delivery::mail_through_exim_reaches_the_local_mailbox", delivery::mail_through_exim_reaches_the_local_mailbox),
    ("delivery::https_trusts_exactly_the_hosts_ca_store", delivery::https_trusts_exactly_the_hosts_ca_store),
    ("watch::reminders_repeat_while_an_incident_stays_open", watch::reminders_repeat_while_an_incident_stays_open),
    ("watch::a_webhook_on_loopback_gets_one_failure_and_one_recovery", watch::a_webhook_on_loopback_gets_one_failure_and_one_recovery),
    ("web::socket_activation_serves_the_clis_json", web::socket_activation_serves_the_clis_json),
    ("web::refusals_change_nothing_and_allowed_actions_record_a_run", web::refusals_change_nothing_and_allowed_actions_record_a_run),
    ("web::pages_show_jobs_runs_and_output_as_text", web::pages_show_jobs_runs_and_output_as_text),
    ("web_browser::a_browser_lists_jobs_follows_runs_and_runs_one_now", web_browser::a_browser_lists_jobs_follows_runs_and_runs_one_now),
    ("metrics::metrics_of_real_runs_pass_promtool_and_survive_pruning", metrics::metrics_of_real_runs_pass_promtool_and_survive_pruning),
    ("metrics::a_real_prometheus_scrapes_a_failed_job_through_node_exporter", metrics::a_real_prometheus_scrapes_a_failed_job_through_node_exporter),
    ("trial::the_dashboard_sees_applied_jobs_as_applied_without_jobctl_path", trial::the_dashboard_sees_applied_jobs_as_applied_without_jobctl_path),
    ("trial::the_job_page_shows_each_runs_cpu_time", trial::the_job_page_shows_each_runs_cpu_time),
    ("web_auth::a_filtered_token_sees_and_runs_only_its_jobs", web_auth::a_filtered_token_sees_and_runs_only_its_jobs),
    ("web_auth::a_proxy_user_header_counts_only_from_trusted_peers", web_auth::a_proxy_user_header_counts_only_from_trusted_peers),
    ("web_live::a_running_runs_new_lines_stream_as_text_until_its_end", web_live::a_running_runs_new_lines_stream_as_text_until_its_end),
    ("web_live::output_ranges_and_a_run_by_its_id_alone", web_live::output_ranges_and_a_run_by_its_id_alone),
    ("web_live::the_job_page_shows_its_definition_next_runs_and_zones", web_live::the_job_page_shows_its_definition_next_runs_and_zones),
    ("web_live::a_browser_shows_a_running_runs_lines_live_and_times_in_its_zone", web_live::a_browser_shows_a_running_runs_lines_live_and_times_in_its_zone),
    ("origin::run_now_from_the_api_is_recorded_as_web_with_who_started_it", origin::run_now_from_the_api_is_recorded_as_web_with_who_started_it),
    ("web_fresh::the_dashboard_keeps_nothing_older_than_a_request", web_fresh::the_dashboard_keeps_nothing_older_than_a_request),
    ("trial2::refusals_say_why_and_a_broken_configuration_recovers_as_documented", trial2::refusals_say_why_and_a_broken_configuration_recovers_as_documented),
    ("trial3::a_broken_configuration_fails_the_socket_at_its_first_connection", trial3::a_broken_configuration_fails_the_socket_at_its_first_connection),
    ("gaps::a_jobs_list_with_a_src_item_converges_and_check_mode_predicts_its_edit", gaps::a_jobs_list_with_a_src_item_converges_and_check_mode_predicts_its_edit),
    ("gaps::an_overdue_job_gets_one_webhook_post", gaps::an_overdue_job_gets_one_webhook_post),
    ("gaps::a_src_item_that_is_not_utf8_fails_clearly_and_changes_nothing", gaps::a_src_item_that_is_not_utf8_fails_clearly_and_changes_nothing),
    ("web_max_age::a_plain_request_shares_a_young_reading_and_actions_end_it", web_max_age::a_plain_request_shares_a_young_reading_and_actions_end_it),
    ("web_max_age::by_default_no_answer_is_older_than_a_second", web_max_age::by_default_no_answer_is_older_than_a_second),
    ("gaps2::a_lost_run_gets_one_webhook_post_then_one_recovery", gaps2::a_lost_run_gets_one_webhook_post_then_one_recovery),
    ("gaps2::a_users_lost_run_carries_its_output_from_the_journal", gaps2::a_users_lost_run_carries_its_output_from_the_journal),
    ("userjournal::root_user_manager", userjournal::root_user_manager),
    ("userjournal::a_system_user", userjournal::a_system_user),
    ("userjournal::a_regular_user", userjournal::a_regular_user),
    ("sysjournal::a_users_forged_lines_never_show_as_a_system_jobs", sysjournal::a_users_forged_lines_never_show_as_a_system_jobs),
    ("web_user::a_users_own_dashboard_on_their_own_manager", web_user::a_users_own_dashboard_on_their_own_manager),
];

/// Cases that do not use the shared sandbox: one line each.
#[rustfmt::skip]
const HOST_CASES: &[(&str, HostCase)] = &[
    ("host_without_systemd_is_reported", host_without_systemd),
    ("sandbox_smoke::sandbox_boots_runs_units_and_leaves_the_host_alone", sandbox_smoke::sandbox_boots_runs_units_and_leaves_the_host_alone),
    ("sandbox_smoke::a_panicking_owner_still_tears_the_sandbox_down", sandbox_smoke::a_panicking_owner_still_tears_the_sandbox_down),
    ("packaging::the_package_holds_the_binary_units_config_and_docs", packaging::the_package_holds_the_binary_units_config_and_docs),
    ("packaging::shipped_units_pass_verify", packaging::shipped_units_pass_verify),
    ("packaging::the_package_installs_on_a_real_systemd", packaging::the_package_installs_on_a_real_systemd),
    ("packaging::lintian_accepts_the_package", packaging::lintian_accepts_the_package),
    ("ansible::the_collection_builds_and_every_module_is_documented", ansible::the_collection_builds_and_every_module_is_documented),
    ("delivery::fakehook_records_requests_and_answers_as_told", delivery::fakehook_records_requests_and_answers_as_told),
];

fn main() {
    // Started again inside the sandbox to deliver (delivery.rs).
    if let Ok(mode) = std::env::var(delivery::CHILD) {
        delivery::child(&mode);
        return;
    }
    let mut args = Arguments::from_args();
    // One systemd, one unit folder, one lock: the cases run in sequence (and
    // in the main thread, which booted the sandbox: docs/testing.md).
    args.test_threads = Some(1);
    let mut trials: Vec<Trial> = HOST_CASES
        .iter()
        .map(|&(name, case)| Trial::test(name, case))
        .collect();
    // Listing (`--list`), or a filter that keeps none of the shared
    // sandbox's cases, boots nothing.
    let wanted = CASES.iter().any(|&(name, _)| {
        let trial = Trial::test(name, || Ok(()));
        !args.is_filtered_out(&trial) && !args.is_ignored(&trial)
    });
    let env = if args.list || !wanted { None } else { boot() };
    let Some(env) = env else {
        // Not wanted, or not possible here (printed why): run only what
        // needs no shared sandbox.
        trials.extend(
            CASES
                .iter()
                .map(|&(name, _)| Trial::test(name, || Ok(())).with_ignored_flag(true)),
        );
        libtest_mimic::run(&args, trials).exit();
    };
    let env = Arc::new(env);
    trials.extend(CASES.iter().map(|&(name, case)| {
        let env = env.clone();
        Trial::test(name, move || {
            env.clean_slate()?;
            case(&env)
        })
    }));
    let conclusion = libtest_mimic::run(&args, trials);
    match Arc::try_unwrap(env) {
        Ok(env) => env.sb.shutdown().expect("sandbox shutdown"),
        Err(_) => eprintln!("sandbox still referenced; dropped at exit"),
    }
    conclusion.exit();
}

fn boot() -> Option<Env> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    let scratch =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("systemd-e2e-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).unwrap();
    // Jobs running as `nobody` read their job's scratch files through here.
    fs::set_permissions(&scratch, fs::Permissions::from_mode(0o755)).unwrap();
    let sb = jobctl_sandbox::boot_for_tests(Options::default().share(&target))?;
    // Units run the real shim: this very binary (`jobctl exec`).
    let config = scratch.join("config.toml");
    fs::write(&config, format!("jobctl_path = \"{JOBCTL}\"\n")).unwrap();
    Some(Env {
        sb,
        scratch,
        config,
    })
}

impl Env {
    /// No job of an earlier case is installed: an apply of an empty folder
    /// with `--prune-all` removes every jobctl unit, in system mode and, when
    /// root's user manager runs, in per-user mode. (An apply prunes only the
    /// units of its own jobs folder; each case has its own.)
    fn clean_slate(&self) -> R {
        let empty = self.jobs_dir("clean-slate");
        ok(&self.jobctl_in(&empty, &["apply", "--prune-all"]))?;
        if self.sb_path("/run/user/0/bus").exists() {
            ok(&self.user_jobctl(&empty, &["apply", "--prune-all"]))?;
        }
        Ok(())
    }

    /// A fresh, empty jobs folder.
    fn jobs_dir(&self, name: &str) -> PathBuf {
        let dir = self.scratch.join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn jobctl(&self, args: &[&str]) -> Output {
        self.sb
            .command(JOBCTL)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap()
    }

    /// `jobctl --config CONFIG --jobs-dir DIR ARGS…`: a case's own
    /// configuration and jobs folder.
    fn jobctl_with(&self, config: &Path, dir: &Path, args: &[&str]) -> Output {
        self.sb
            .command(JOBCTL)
            .arg("--config")
            .arg(config)
            .arg("--jobs-dir")
            .arg(dir)
            .args(args)
            .output()
            .unwrap()
    }

    fn jobctl_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut all = vec!["--jobs-dir", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        self.jobctl(&all)
    }

    /// `apply` in `dir`, then `run JOB --wait` of each of `jobs`, all of
    /// which must succeed.
    fn apply_and_run(&self, dir: &Path, jobs: &[&str]) -> R {
        self.apply(dir)?;
        for job in jobs {
            let out = self.jobctl_in(dir, &["run", job, "--wait"]);
            check(out.status.success(), || {
                format!("run {job}: {}", text(&out))
            })?;
        }
        Ok(())
    }

    /// `apply --json` in `dir`, which must succeed; returns the report.
    fn apply(&self, dir: &Path) -> Result<Value, Failed> {
        let out = self.jobctl_in(dir, &["apply", "--json"]);
        ok(&out)?;
        Ok(serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?)
    }

    fn sh(&self, script: &str) -> Result<String, Failed> {
        self.sb.sh(script).map_err(|e| Failed::from(e.to_string()))
    }

    fn prop(&self, unit: &str, prop: &str) -> Result<String, Failed> {
        Ok(self
            .sh(&format!("systemctl show -P {prop} {unit}"))?
            .trim()
            .to_string())
    }

    /// Checks a property of `unit` (`systemctl show`); `what` says what a
    /// different value means.
    fn expect_prop(&self, unit: &str, prop: &str, want: &str, what: &str) -> R {
        let got = self.prop(unit, prop)?;
        check(got == want, || {
            format!("{what}: {unit} has {prop}={got}, expected {want}")
        })
    }

    fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Result<bool, Failed>,
    ) -> R {
        let deadline = Instant::now() + timeout;
        loop {
            if f()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("timed out after {timeout:?} waiting for {what}").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many times systemd has reloaded since boot: it logs "Reloading."
    /// (252) for every daemon-reload. journald may not have stored the last
    /// lines yet, so the count is taken once a marker PID 1 logs after them
    /// (a transient unit of a fresh name) is in the journal: PID 1's lines
    /// reach journald in order, through one socket.
    fn reload_count(&self) -> Result<usize, Failed> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static MARKER: AtomicUsize = AtomicUsize::new(0);
        let unit = format!(
            "jobctl-e2e-marker-{}.service",
            MARKER.fetch_add(1, Ordering::Relaxed)
        );
        self.sh(&format!(
            "systemd-run --quiet --wait --unit={unit} /bin/true"
        ))?;
        let mut count = None;
        self.wait_for(
            &format!("{unit} in the journal"),
            Duration::from_secs(10),
            || {
                let log = self.sh("journalctl -b -o cat _PID=1")?;
                if log.contains(&unit) {
                    count = Some(log.lines().filter(|l| l.starts_with("Reloading")).count());
                }
                Ok(count.is_some())
            },
        )?;
        Ok(count.unwrap_or_default())
    }
}

impl Env {
    /// `jobctl history --job JOB --json`: every recorded run, newest first.
    fn runs(&self, job: &str) -> Result<Vec<Value>, Failed> {
        let out = self.jobctl(&["history", "--job", job, "--json", "--limit", "0"]);
        ok(&out)?;
        let report: Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
        Ok(report["runs"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until the newest recorded run of `job` satisfies `done`.
    fn wait_for_run(
        &self,
        job: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, Failed> {
        let mut last = None;
        self.wait_for(&format!("a recorded run of {job}"), timeout, || {
            last = self.runs(job)?.into_iter().next();
            Ok(last.as_ref().is_some_and(&done))
        })
        .map_err(|e| format!("{}; newest run: {last:#?}", e.message().unwrap_or("")))?;
        Ok(last.unwrap())
    }

    /// The `list --json` row of `job`.
    fn row(&self, dir: &Path, job: &str) -> Result<Value, Failed> {
        let out = self.jobctl_in(dir, &["list", "--json"]);
        ok(&out)?;
        let rows: Value = serde_json::from_slice::<Value>(&out.stdout)?["jobs"].take();
        rows.as_array()
            .and_then(|rows| rows.iter().find(|r| r["job"] == job))
            .cloned()
            .ok_or_else(|| format!("{job} not listed: {rows:#}").into())
    }
}

/// `secs` seconds from now, and that time as a calendar expression in UTC.
fn utc_in(secs: i64) -> (jiff::Timestamp, String) {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    let when = at
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%d %H:%M:%S");
    (at, when.to_string())
}

fn write_job(dir: &Path, name: &str, body: &str) {
    fs::write(dir.join(format!("{name}.toml")), body).unwrap();
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output) -> R {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("jobctl failed: {}", text(out)).into())
    }
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> R {
    if cond { Ok(()) } else { Err(msg().into()) }
}

fn job_plan<'a>(report: &'a Value, job: &str) -> Result<&'a Value, Failed> {
    report["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["job"] == job))
        .ok_or_else(|| format!("job {job} not in the report: {report:#}").into())
}

const DAILY: &str = "command = [\"/bin/true\"]\ndaily = \"03:00\"\n";

// ---------------------------------------------------------------- cases

fn apply_from_empty(env: &Env) -> R {
    let dir = env.jobs_dir("from-empty");
    write_job(&dir, "alpha", DAILY);
    write_job(&dir, "beta", "command = [\"/bin/true\"]\nmanual = true\n");
    let report = env.apply(&dir)?;
    check(report["changed"] == true, || format!("{report:#}"))?;
    check(job_plan(&report, "alpha")?["change"] == "create", || {
        format!("{report:#}")
    })?;
    for unit in [
        "jobctl-alpha.service",
        "jobctl-alpha.timer",
        "jobctl-beta.service",
    ] {
        let contents =
            fs::read_to_string(env.unit_path(unit)).map_err(|e| format!("{unit}: {e}"))?;
        check(contents.contains("X-Jobctl-Job="), || {
            format!("{unit} has no ownership mark")
        })?;
    }
    check(!env.unit_path("jobctl-beta.timer").exists(), || {
        "a manual job got a timer".into()
    })?;
    env.expect_prop(
        "jobctl-alpha.timer",
        "ActiveState",
        "active",
        "timer not active",
    )?;
    env.expect_prop(
        "jobctl-alpha.timer",
        "UnitFileState",
        "enabled",
        "timer not enabled",
    )?;
    let next = env.prop("jobctl-alpha.timer", "NextElapseUSecRealtime")?;
    check(next.contains("03:00:00"), || format!("next elapse {next}"))?;
    // `list` agrees.
    let out = env.jobctl_in(&dir, &["list", "--json"]);
    ok(&out)?;
    let rows: Value = serde_json::from_slice::<Value>(&out.stdout)?["jobs"].take();
    let alpha = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["job"] == "alpha")
        .unwrap();
    check(
        alpha["state"] == "active" && alpha["next_run"].is_string(),
        || format!("{alpha:#}"),
    )?;
    let beta = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["job"] == "beta")
        .unwrap();
    check(beta["state"] == "manual", || format!("{beta:#}"))
}

impl Env {
    /// A path inside the sandbox, seen from the host (through its init's root).
    fn sb_path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.sb.init_pid()))
    }

    /// A unit file in the sandbox's system unit folder, seen from the host.
    fn unit_path(&self, unit: &str) -> PathBuf {
        self.sb_path(&format!("{UNIT_DIR}/{unit}"))
    }
}

fn reapply_is_a_no_op(env: &Env) -> R {
    let dir = env.jobs_dir("no-op");
    write_job(&dir, "alpha", DAILY);
    write_job(
        &dir,
        "gamma",
        "command = [\"/bin/true\"]\nhourly = \":05\"\n",
    );
    let first = env.reload_count()?;
    env.apply(&dir)?;
    let mtime = |u: &str| fs::metadata(env.unit_path(u)).unwrap().modified().unwrap();
    let before = (mtime("jobctl-alpha.timer"), mtime("jobctl-gamma.service"));
    let since = env.prop("jobctl-gamma.timer", "ActiveEnterTimestampMonotonic")?;
    let reloads = env.reload_count()?;
    // The counter sees reloads: the apply that wrote the units made one.
    check(reloads == first + 1, || {
        format!("the first apply made {} reloads, not 1", reloads - first)
    })?;
    let report = env.apply(&dir)?;
    check(
        report["changed"] == false && report["reload"] == false,
        || format!("{report:#}"),
    )?;
    check(
        report["done"].as_array().is_some_and(|d| d.is_empty()),
        || format!("{report:#}"),
    )?;
    check(
        before == (mtime("jobctl-alpha.timer"), mtime("jobctl-gamma.service")),
        || "a unit file was rewritten".into(),
    )?;
    check(env.reload_count()? == reloads, || {
        "a no-op apply reloaded systemd".into()
    })?;
    env.expect_prop(
        "jobctl-gamma.timer",
        "ActiveEnterTimestampMonotonic",
        &since,
        "an unchanged timer was restarted",
    )?;
    let out = env.jobctl_in(&dir, &["apply"]);
    ok(&out)?;
    check(
        String::from_utf8_lossy(&out.stdout).contains("nothing to change"),
        || text(&out),
    )
}

fn update_schedule(env: &Env) -> R {
    let dir = env.jobs_dir("update");
    write_job(&dir, "alpha", DAILY);
    write_job(
        &dir,
        "gamma",
        "command = [\"/bin/true\"]\nhourly = \":05\"\n",
    );
    env.apply(&dir)?;
    let gamma_since = env.prop("jobctl-gamma.timer", "ActiveEnterTimestampMonotonic")?;
    let reloads = env.reload_count()?;
    write_job(
        &dir,
        "alpha",
        "command = [\"/bin/true\"]\ndaily = \"04:30\"\n",
    );
    let report = env.apply(&dir)?;
    let alpha = job_plan(&report, "alpha")?;
    check(
        alpha["change"] == "update" && alpha["timer_steps"]["restart"] == true,
        || format!("{report:#}"),
    )?;
    check(job_plan(&report, "gamma")?["change"] == "unchanged", || {
        format!("{report:#}")
    })?;
    check(env.reload_count()? == reloads + 1, || {
        "expected exactly one reload".into()
    })?;
    let next = env.prop("jobctl-alpha.timer", "NextElapseUSecRealtime")?;
    check(next.contains("04:30:00"), || {
        format!("alpha's next elapse is {next}")
    })?;
    check(
        env.prop("jobctl-gamma.timer", "ActiveEnterTimestampMonotonic")? == gamma_since,
        || "gamma's timer was restarted".into(),
    )
}

fn check_and_diff(env: &Env) -> R {
    let dir = env.jobs_dir("check");
    write_job(&dir, "alpha", DAILY);
    env.apply(&dir)?;
    write_job(
        &dir,
        "alpha",
        "command = [\"/bin/true\"]\ndaily = \"05:45\"\n",
    );
    let before = fs::read_to_string(env.unit_path("jobctl-alpha.timer"))?;
    let out = env.jobctl_in(&dir, &["apply", "--check", "--diff"]);
    check(out.status.code() == Some(3), || {
        format!("--check with changes must exit 3: {}", text(&out))
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        stdout.contains("+OnCalendar=") && stdout.contains("-OnCalendar="),
        || text(&out),
    )?;
    check(
        fs::read_to_string(env.unit_path("jobctl-alpha.timer"))? == before,
        || "--check wrote".into(),
    )?;
    let out = env.jobctl_in(&dir, &["apply", "--check", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(report["changed"] == true && report["check"] == true, || {
        format!("{report:#}")
    })?;
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["apply", "--check"]);
    check(out.status.code() == Some(0), || {
        format!("--check without changes must exit 0: {}", text(&out))
    })
}

fn remove_job_file(env: &Env) -> R {
    let dir = env.jobs_dir("remove-file");
    write_job(&dir, "alpha", DAILY);
    write_job(&dir, "doomed", DAILY);
    env.apply(&dir)?;
    fs::remove_file(dir.join("doomed.toml"))?;
    let report = env.apply(&dir)?;
    let doomed = job_plan(&report, "doomed")?;
    check(doomed["change"] == "remove", || format!("{report:#}"))?;
    for u in ["jobctl-doomed.service", "jobctl-doomed.timer"] {
        check(!env.unit_path(u).exists(), || format!("{u} still exists"))?;
    }
    check(
        !env.sb_path(&format!(
            "{UNIT_DIR}/timers.target.wants/jobctl-doomed.timer"
        ))
        .exists(),
        || "the enablement symlink is left".into(),
    )?;
    let state = env.prop("jobctl-doomed.timer", "ActiveState")?;
    check(state == "inactive", || format!("removed timer is {state}"))?;
    // --no-prune keeps orphans.
    write_job(&dir, "kept", DAILY);
    env.apply(&dir)?;
    fs::remove_file(dir.join("kept.toml"))?;
    let out = env.jobctl_in(&dir, &["apply", "--no-prune", "--json"]);
    ok(&out)?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(job_plan(&report, "kept")?["change"] == "orphaned", || {
        format!("{report:#}")
    })?;
    check(env.unit_path("jobctl-kept.timer").exists(), || {
        "--no-prune removed".into()
    })
}

fn timer_fires(env: &Env) -> R {
    let dir = env.jobs_dir("fires");
    let marker = env.scratch.join("fired");
    let _ = fs::remove_file(&marker);
    let (_, when) = utc_in(4);
    write_job(
        &dir,
        "soon",
        &format!(
            "command = [\"/bin/sh\", \"-c\", \"echo fired-output; echo fired > {}\"]\non_calendar = \"{when}\"\ntimezone = \"UTC\"\n",
            marker.display()
        ),
    );
    env.apply(&dir)?;
    env.wait_for(
        "the timer to fire and the job to run",
        Duration::from_secs(30),
        || Ok(marker.exists()),
    )?;
    // The shim recorded the run: trigger `timer`, systemd's invocation id.
    let run = env.wait_for_run("soon", Duration::from_secs(10), |r| {
        r["status"] != "running"
    })?;
    env.wait_for("the run to finish", Duration::from_secs(10), || {
        Ok(env.prop("jobctl-soon.service", "ActiveState")? == "inactive")
    })?;
    let invocation = env.prop("jobctl-soon.service", "InvocationID")?;
    check(
        run["status"] == "success"
            && run["trigger"] == "timer"
            && run["invocation_id"] == invocation.as_str(),
        || format!("invocation {invocation}: {run:#}"),
    )?;
    env.expect_prop(
        "jobctl-soon.service",
        "Result",
        "success",
        "the fired run failed",
    )?;
    // list and status show it; logs has its output.
    let row = env.row(&dir, "soon")?;
    check(
        row["last_run"]["status"] == "success"
            && row["last_run"]["trigger"] == "timer"
            && row["last_run"]["id"] == run["id"]
            && row["failure_streak"] == 0,
        || format!("{row:#}"),
    )?;
    let out = env.jobctl_in(&dir, &["status", "soon"]);
    ok(&out)?;
    check(
        String::from_utf8_lossy(&out.stdout).contains(&format!("invocation: {invocation}")),
        || text(&out),
    )?;
    let out = env.jobctl(&["logs", "soon", "--raw"]);
    ok(&out)?;
    check(out.stdout == b"fired-output\n", || text(&out))?;
    let out = env.jobctl(&["history", "soon"]);
    ok(&out)?;
    let listing = String::from_utf8_lossy(&out.stdout);
    check(
        listing.contains(&run["id"].as_str().unwrap()[..12]) && listing.contains("timer"),
        || text(&out),
    )
}

fn run_wait_exit_codes(env: &Env) -> R {
    let dir = env.jobs_dir("run-wait");
    write_job(&dir, "ok", "command = [\"/bin/true\"]\nmanual = true\n");
    write_job(
        &dir,
        "three",
        "command = [\"/bin/sh\", \"-c\", \"exit 3\"]\nmanual = true\n",
    );
    write_job(
        &dir,
        "killed",
        "command = [\"/bin/sh\", \"-c\", \"kill -KILL $$\"]\nmanual = true\n",
    );
    env.apply(&dir)?;
    for (job, code) in [("ok", 0), ("three", 3), ("killed", 128 + 9)] {
        let out = env.jobctl_in(&dir, &["run", job, "--wait"]);
        check(out.status.code() == Some(code), || {
            format!("run {job} --wait: want {code}: {}", text(&out))
        })?;
    }
    let out = env.jobctl_in(&dir, &["run", "three", "--wait", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)?;
    // The run in the history's words, systemd's beside it, and the run id
    // the history recorded it under.
    check(
        report["exit_status"] == 3
            && report["result"] == "failed"
            && report["systemd_result"] == "exit-code",
        || format!("{report:#}"),
    )?;
    // The shim recorded each run with trigger `manual`, the exit status and
    // systemd's invocation id.
    let runs = env.runs("three")?;
    check(runs.len() == 2, || format!("{runs:#?}"))?;
    check(runs[0]["id"] == report["run_id"], || {
        format!(
            "run_id {} is not the recorded run: {runs:#?}",
            report["run_id"]
        )
    })?;
    check(
        runs[0]["trigger"] == "manual"
            && runs[0]["status"] == "failed"
            && runs[0]["exit_code"] == 3
            && runs[0]["invocation_id"] == report["invocation_id"],
        || format!("report {report:#}, run {:#}", runs[0]),
    )?;
    let killed = &env.runs("killed")?[0];
    check(
        killed["status"] == "killed" && killed["signal"] == 9,
        || format!("{killed:#}"),
    )?;
    check(env.runs("ok")?[0]["status"] == "success", || "ok".into())?;
    let row = env.row(&dir, "three")?;
    check(
        row["last_run"]["status"] == "failed" && row["failure_streak"] == 2,
        || format!("{row:#}"),
    )?;
    // Without --wait: started, exit 0.
    let out = env.jobctl_in(&dir, &["run", "three"]);
    check(out.status.success(), || text(&out))?;
    // A run in progress is reported, not duplicated.
    write_job(
        &dir,
        "slow",
        "command = [\"/bin/sleep\", \"30\"]\nmanual = true\n",
    );
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["run", "slow"]))?;
    env.wait_for("slow to run", Duration::from_secs(10), || {
        Ok(env.prop("jobctl-slow.service", "ActiveState")? == "activating")
    })?;
    let first = env.prop("jobctl-slow.service", "InvocationID")?;
    let out = env.jobctl_in(&dir, &["run", "slow"]);
    // 4: the job did not start (issue 11).
    check(out.status.code() == Some(4), || text(&out))?;
    check(
        String::from_utf8_lossy(&out.stderr).contains("already running"),
        || text(&out),
    )?;
    env.expect_prop(
        "jobctl-slow.service",
        "InvocationID",
        &first,
        "a second run started",
    )?;
    env.sh("systemctl stop jobctl-slow.service")?;
    Ok(())
}

fn runs_as_nobody(env: &Env) -> R {
    let dir = env.jobs_dir("nobody");
    write_job(
        &dir,
        "whoami",
        // The sleep keeps the process alive while journald resolves its
        // metadata: for a process that is already gone journald cannot read
        // its cgroup, and the line lacks _SYSTEMD_INVOCATION_ID (a journald
        // limitation; `journalctl -u` still finds it).
        "command = [\"/bin/sh\", \"-c\", \"echo running-as-$(id -un); sleep 0.5\"]\nmanual = true\nuser = \"nobody\"\n",
    );
    write_job(
        &dir,
        "dyn",
        "command = [\"/bin/sh\", \"-c\", \"echo dynamic-$(id -un)\"]\nmanual = true\ndynamic_user = true\n",
    );
    write_job(
        &dir,
        "as-root",
        "command = [\"/bin/true\"]\nmanual = true\n",
    );
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["run", "whoami", "--wait", "--json"]);
    ok(&out)?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let id = report["invocation_id"]
        .as_str()
        .ok_or("no invocation id")?
        .to_string();
    check(id.len() == 32, || format!("{report:#}"))?;
    // The run's journal lines, found by its invocation id.
    env.wait_for("the run's journal line", Duration::from_secs(10), || {
        Ok(env
            .sh(&format!("journalctl -o cat _SYSTEMD_INVOCATION_ID={id}"))?
            .contains("running-as-nobody"))
    })?;
    for job in ["dyn", "as-root"] {
        let out = env.jobctl_in(&dir, &["run", job, "--wait"]);
        check(out.status.success(), || format!("{job}: {}", text(&out)))?;
    }

    // Each recorded in its own database, all seen by root's history.
    let run = &env.runs("whoami")?[0];
    check(
        run["user"] == "nobody"
            && run["owner"] == "nobody"
            && run["invocation_id"] == id.as_str()
            && run["database"] == "/var/lib/jobctl/users/nobody/history.db",
        || format!("{run:#}"),
    )?;
    let run = &env.runs("dyn")?[0];
    check(
        run["status"] == "success"
            && run["owner"] == "jobctl-dyn"
            && run["user"] == "jobctl-dyn"
            && run["database"]
                .as_str()
                .is_some_and(|d| d.ends_with("users/jobctl-dyn/history.db")),
        || format!("{run:#}"),
    )?;
    check(
        env.runs("as-root")?[0]["database"] == "/var/lib/jobctl/history.db",
        || "root's job not in the main database".into(),
    )?;
    let out = env.jobctl(&["logs", "dyn", "--raw"]);
    check(out.stdout == b"dynamic-jobctl-dyn\n", || text(&out))?;
    let listing = env.sh(
        "stat -c '%U %a %n' /var/lib/jobctl/users/nobody /var/lib/jobctl/users/nobody/history.db \
         /var/lib/private/jobctl/users/jobctl-dyn /var/lib/jobctl/history.db",
    )?;
    check(
        listing.contains("nobody 700 /var/lib/jobctl/users/nobody\n")
            && listing.contains("nobody 600 /var/lib/jobctl/users/nobody/history.db")
            && listing.contains("700 /var/lib/private/jobctl/users/jobctl-dyn")
            && listing.contains("root 600 /var/lib/jobctl/history.db"),
        || listing.clone(),
    )?;
    let row = env.row(&dir, "whoami")?;
    check(row["last_run"]["user"] == "nobody", || format!("{row:#}"))?;

    // `nobody` can read neither root's database nor the dynamic user's.
    let as_nobody = |argv: &[&str]| {
        env.sb
            .command("/usr/bin/setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .args(argv)
            .output()
            .unwrap()
    };
    for db in [
        "/var/lib/jobctl/history.db",
        "/var/lib/private/jobctl/users/jobctl-dyn/history.db",
    ] {
        let out = as_nobody(&["/bin/cat", db]);
        check(!out.status.success(), || format!("nobody read {db}"))?;
        let out = as_nobody(&[JOBCTL, "history", "--db", db]);
        check(out.status.code() == Some(1), || text(&out))?;
    }
    // Its own history, as a non-root reader: its own runs, a note about the
    // rest, none of root's runs.
    let out = as_nobody(&[JOBCTL, "history", "--json"]);
    let runs: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    let jobs: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["job"].as_str())
        .collect();
    check(
        jobs.contains(&"whoami") && !jobs.contains(&"as-root"),
        || text(&out),
    )
}

fn disabled_and_expired(env: &Env) -> R {
    let dir = env.jobs_dir("disabled");
    write_job(&dir, "off", &format!("{DAILY}enabled = false\n"));
    write_job(&dir, "old", &format!("{DAILY}not_after = 2020-01-31\n"));
    write_job(&dir, "on", DAILY);
    let report = env.apply(&dir)?;
    check(
        job_plan(&report, "off")?["timer_state"] == "disabled",
        || format!("{report:#}"),
    )?;
    check(
        job_plan(&report, "old")?["timer_state"] == "expired",
        || format!("{report:#}"),
    )?;
    for job in ["off", "old"] {
        // Installed (a timer never written is inactive and not enabled
        // too), but stopped and disabled.
        let t = format!("jobctl-{job}.timer");
        check(env.unit_path(&t).exists(), || {
            format!("{t} was not written")
        })?;
        let state = (
            env.prop(&t, "LoadState")?,
            env.prop(&t, "ActiveState")?,
            env.prop(&t, "UnitFileState")?,
        );
        check(
            state == ("loaded".into(), "inactive".into(), "disabled".into()),
            || format!("{t} is {state:?}"),
        )?;
    }
    env.expect_prop(
        "jobctl-on.timer",
        "ActiveState",
        "active",
        "on is not active",
    )?;
    // Turning `off` off after it ran: stopped and disabled.
    write_job(&dir, "on", &format!("{DAILY}enabled = false\n"));
    env.apply(&dir)?;
    env.expect_prop("jobctl-on.timer", "ActiveState", "inactive", "not stopped")?;
    env.expect_prop(
        "jobctl-on.timer",
        "UnitFileState",
        "disabled",
        "not disabled",
    )?;
    let out = env.jobctl_in(&dir, &["list", "--json"]);
    let rows: Value = serde_json::from_slice::<Value>(&out.stdout)?["jobs"].take();
    let state = |j: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["job"] == j)
            .map(|r| r["state"].clone())
    };
    check(
        state("old") == Some("expired".into()) && state("off") == Some("disabled".into()),
        || format!("{rows:#}"),
    )
}

fn foreign_unit(env: &Env) -> R {
    let dir = env.jobs_dir("foreign");
    let foreign = "[Unit]\nDescription=not jobctl's\n[Service]\nExecStart=/bin/true\n";
    for u in ["jobctl-taken.service", "bystander.service"] {
        fs::write(env.unit_path(u), foreign)?;
    }
    write_job(&dir, "taken", DAILY);
    write_job(&dir, "fine", DAILY);
    let out = env.jobctl_in(&dir, &["apply"]);
    check(out.status.code() == Some(2), || {
        format!("a collision must be a usage error: {}", text(&out))
    })?;
    check(
        String::from_utf8_lossy(&out.stderr).contains("jobctl-taken.service"),
        || text(&out),
    )?;
    check(!env.unit_path("jobctl-fine.service").exists(), || {
        "apply changed something despite the error".into()
    })?;
    fs::remove_file(dir.join("taken.toml"))?;
    env.apply(&dir)?;
    for u in ["jobctl-taken.service", "bystander.service"] {
        let c = fs::read_to_string(env.unit_path(u))?;
        check(c == foreign, || format!("{u} was modified or removed"))?;
    }
    env.sh(&format!(
        "rm {UNIT_DIR}/jobctl-taken.service {UNIT_DIR}/bystander.service"
    ))?;
    Ok(())
}

fn removed_while_running(env: &Env) -> R {
    let dir = env.jobs_dir("running");
    write_job(
        &dir,
        "busy",
        "command = [\"/bin/sleep\", \"60\"]\ndaily = \"03:00\"\n",
    );
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["run", "busy"]))?;
    env.wait_for("busy to run", Duration::from_secs(10), || {
        Ok(env.prop("jobctl-busy.service", "ActiveState")? == "activating")
    })?;
    let pid = env.prop("jobctl-busy.service", "MainPID")?;
    fs::remove_file(dir.join("busy.toml"))?;
    let report = env.apply(&dir)?;
    let busy = job_plan(&report, "busy")?;
    check(
        busy["change"] == "remove" && busy["running"] == true,
        || format!("{report:#}"),
    )?;
    check(busy["notes"].to_string().contains("not stopped"), || {
        format!("{report:#}")
    })?;
    check(!env.unit_path("jobctl-busy.service").exists(), || {
        "unit not deleted".into()
    })?;
    check(env.prop("jobctl-busy.service", "MainPID")? == pid, || {
        "the running run was killed".into()
    })?;
    env.expect_prop(
        "jobctl-busy.service",
        "ActiveState",
        "activating",
        "the run is gone",
    )?;
    env.sh("systemctl stop jobctl-busy.service")?;
    Ok(())
}

fn operator_override(env: &Env) -> R {
    let dir = env.jobs_dir("override");
    write_job(&dir, "alpha", DAILY);
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["disable", "alpha"]))?;
    env.expect_prop(
        "jobctl-alpha.timer",
        "ActiveState",
        "inactive",
        "disable did not stop",
    )?;
    let report = env.apply(&dir)?;
    check(
        job_plan(&report, "alpha")?["timer_state"] == "disabled_by_operator",
        || format!("{report:#}"),
    )?;
    check(report["changed"] == false, || {
        format!("apply undid `jobctl disable`: {report:#}")
    })?;
    env.expect_prop(
        "jobctl-alpha.timer",
        "ActiveState",
        "inactive",
        "apply restarted it",
    )?;
    // The job file changes: the file wins.
    write_job(
        &dir,
        "alpha",
        "command = [\"/bin/true\"]\ndaily = \"03:30\"\n",
    );
    env.apply(&dir)?;
    env.expect_prop(
        "jobctl-alpha.timer",
        "ActiveState",
        "active",
        "the file's enabled did not win",
    )?;
    // enable of a job whose file says enabled = false holds too.
    write_job(&dir, "beta", &format!("{DAILY}enabled = false\n"));
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["enable", "beta"]))?;
    env.apply(&dir)?;
    check(
        env.prop("jobctl-beta.timer", "ActiveState")? == "active",
        || "apply undid `jobctl enable`".into(),
    )
}

fn remove_command(env: &Env) -> R {
    let dir = env.jobs_dir("remove-cmd");
    write_job(&dir, "alpha", DAILY);
    write_job(&dir, "beta", DAILY);
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["remove", "beta"]);
    ok(&out)?;
    check(!dir.join("beta.toml").exists(), || "job file kept".into())?;
    check(!env.unit_path("jobctl-beta.timer").exists(), || {
        "unit kept".into()
    })?;
    env.expect_prop(
        "jobctl-beta.timer",
        "ActiveState",
        "inactive",
        "timer still active",
    )?;
    let report = env.apply(&dir)?;
    check(report["changed"] == false, || format!("{report:#}"))
}

fn unknown_job(env: &Env) -> R {
    let dir = env.jobs_dir("unknown");
    write_job(&dir, "nightly-refresh", DAILY);
    env.apply(&dir)?;
    for cmd in [
        ["status", "nightly-refesh"],
        ["run", "nightly-refesh"],
        ["disable", "nightly-refesh"],
    ] {
        let out = env.jobctl_in(&dir, &cmd);
        check(out.status.code() == Some(2), || text(&out))?;
        let err = String::from_utf8_lossy(&out.stderr);
        check(
            err.contains("unknown job") && err.contains("did you mean \"nightly-refresh\""),
            || text(&out),
        )?;
    }
    Ok(())
}

fn user_mode(env: &Env) -> R {
    env.sb.start_user_manager().map_err(|e| e.to_string())?;
    let dir = env.jobs_dir("user");
    write_job(&dir, "mine", DAILY);
    write_job(
        &dir,
        "hello",
        "command = [\"/bin/sh\", \"-c\", \"echo hello-user; exit 4\"]\nmanual = true\n",
    );
    let run = |args: &[&str]| env.user_jobctl(&dir, args);
    let out = run(&["apply", "--json"]);
    ok(&out)?;
    check(
        env.sb_path("/root/.config/systemd/user/jobctl-mine.timer")
            .exists(),
        || "user unit not in ~/.config/systemd/user".into(),
    )?;
    let state = env
        .sh("XDG_RUNTIME_DIR=/run/user/0 systemctl --user show -P ActiveState jobctl-mine.timer")?;
    check(state.trim() == "active", || {
        format!("user timer is {state}")
    })?;
    check(!env.unit_path("jobctl-mine.timer").exists(), || {
        "user mode wrote a system unit".into()
    })?;
    let out = run(&["apply", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(report["changed"] == false, || format!("{report:#}"))?;
    let out = run(&["run", "hello", "--wait"]);
    check(out.status.code() == Some(4), || text(&out))?;
    // `list` shows the user's jobs from the user manager and its history.
    let out = run(&["list", "--json"]);
    ok(&out)?;
    let rows: Value = serde_json::from_slice::<Value>(&out.stdout)?["jobs"].take();
    let row = |job: &str| {
        rows.as_array()
            .and_then(|rows| rows.iter().find(|r| r["job"] == job))
            .cloned()
            .ok_or_else(|| Failed::from(format!("{job} not listed: {rows:#}")))
    };
    let (mine, hello) = (row("mine")?, row("hello")?);
    check(
        mine["state"] == "active"
            && mine["next_run"]
                .as_str()
                .is_some_and(|t| t.contains("T03:00:00")),
        || format!("{mine:#}"),
    )?;
    check(
        hello["state"] == "manual"
            && hello["last_run"]["status"] == "failed"
            && hello["last_run"]["exit_code"] == 4,
        || format!("{hello:#}"),
    )?;
    check(rows.as_array().map(Vec::len) == Some(2), || {
        format!("{rows:#}")
    })?;
    // Without a runtime dir, --user explains itself.
    let out = env
        .sb
        .command(JOBCTL)
        .args(["--user", "--jobs-dir"])
        .arg(&dir)
        .args(["list"])
        .output()
        .unwrap();
    check(out.status.code() == Some(1), || text(&out))?;
    check(
        String::from_utf8_lossy(&out.stderr).contains("Hint:"),
        || text(&out),
    )
}

fn run_follow(env: &Env) -> R {
    let dir = env.jobs_dir("follow");
    write_job(
        &dir,
        "talk",
        "command = [\"/bin/sh\", \"-c\", \"echo follow-one; sleep 1; echo follow-two; exit 5\"]\nmanual = true\n",
    );
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["run", "talk", "--follow"]);
    check(out.status.code() == Some(5), || text(&out))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in ["follow-one", "follow-two"] {
        check(stdout.matches(line).count() == 1, || {
            format!("{line} not printed exactly once: {}", text(&out))
        })?;
    }
    check(
        stdout.find("follow-one") < stdout.find("follow-two"),
        || text(&out),
    )
}

fn permission_denied(env: &Env) -> R {
    let dir = env.jobs_dir("denied");
    write_job(&dir, "alpha", "command = [\"/bin/true\"]\nmanual = true\n");
    env.apply(&dir)?;
    let out = env
        .sb
        .command("/usr/bin/setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            JOBCTL,
            "--config",
        ])
        .arg(&env.config)
        .arg("--jobs-dir")
        .arg(&dir)
        .args(["run", "alpha"])
        .output()
        .unwrap();
    check(out.status.code() == Some(1), || text(&out))?;
    let err = String::from_utf8_lossy(&out.stderr);
    check(err.contains("Hint: run as root, or use --user"), || {
        text(&out)
    })
}

fn partial_failure(env: &Env) -> R {
    let dir = env.jobs_dir("partial");
    write_job(&dir, "old", DAILY);
    env.apply(&dir)?;
    // Removing `old` stops its timer first; writing `new` then fails on a
    // read-only unit folder.
    fs::remove_file(dir.join("old.toml"))?;
    write_job(&dir, "new", DAILY);
    env.sh(&format!(
        "mount --bind {UNIT_DIR} {UNIT_DIR} && mount -o remount,bind,ro {UNIT_DIR}"
    ))?;
    let out = env.jobctl_in(&dir, &["apply", "--json"]);
    env.sh(&format!("umount {UNIT_DIR}"))?;
    check(out.status.code() == Some(1), || text(&out))?;
    let report: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    check(
        report["done"] == serde_json::json!(["stopped timers: 1 of 1"]),
        || format!("{report:#}"),
    )?;
    let not_done = report["not_done"].to_string();
    check(
        not_done.contains("write unit files") && not_done.contains("reload"),
        || format!("{report:#}"),
    )?;
    check(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("Read-only")),
        || format!("{report:#}"),
    )?;
    check(!env.unit_path("jobctl-new.service").exists(), || {
        "a file was written".into()
    })?;
    // The next apply converges.
    let report = env.apply(&dir)?;
    check(job_plan(&report, "new")?["change"] == "create", || {
        format!("{report:#}")
    })?;
    check(job_plan(&report, "old")?["change"] == "remove", || {
        format!("{report:#}")
    })?;
    env.expect_prop(
        "jobctl-new.timer",
        "ActiveState",
        "active",
        "new timer not active",
    )?;
    let report = env.apply(&dir)?;
    check(report["changed"] == false, || format!("{report:#}"))
}

fn health_reports_each_problem(env: &Env) -> R {
    let dir = env.jobs_dir("health");
    write_job(&dir, "fine", DAILY);
    write_job(
        &dir,
        "flaky",
        "command = [\"/bin/sh\", \"-c\", \"echo trying; exit 2\"]\nmanual = true\n",
    );
    write_job(&dir, "stopped", DAILY);
    write_job(
        &dir,
        "hang",
        "command = [\"/bin/sleep\", \"300\"]\nmanual = true\n",
    );
    write_job(&dir, "old", &format!("{DAILY}not_after = 2020-01-31\n"));
    env.apply(&dir)?;
    let health = |args: &[&str]| {
        let mut all = vec!["health"];
        all.extend_from_slice(args);
        env.jobctl_in(&dir, &all)
    };
    let says = |out: &Output, code: i32, texts: &[&str]| -> R {
        let stdout = String::from_utf8_lossy(&out.stdout);
        check(
            out.status.code() == Some(code) && texts.iter().all(|t| stdout.contains(t)),
            || format!("want exit {code} and {texts:?}: {}", text(out)),
        )
    };
    says(
        &health(&["fine", "flaky", "stopped"]),
        0,
        &["OK - 3 jobs, no problems"],
    )?;
    // An expired job still installed.
    says(&health(&["old"]), 1, &["old: expired: the job has expired"])?;

    // Failed runs, and the streak threshold.
    for _ in 0..2 {
        let out = env.jobctl_in(&dir, &["run", "flaky", "--wait"]);
        check(out.status.code() == Some(2), || text(&out))?;
    }
    says(
        &health(&["flaky"]),
        1,
        &[
            "PROBLEMS - 1 in 1 of 1 job: failed 1",
            "flaky: failed: the last run failed with exit status 2",
            "2 failed runs in a row, no successful run recorded",
        ],
    )?;
    says(&health(&["flaky", "--failures", "3"]), 0, &["OK"])?;
    says(&health(&["flaky", "--ignore", "failed"]), 0, &["OK"])?;

    // A timer stopped behind jobctl's back.
    env.sh("systemctl stop jobctl-stopped.timer")?;
    says(
        &health(&["stopped"]),
        1,
        &["stopped: timer-inactive: the timer is not running although the job is enabled"],
    )?;
    check(env.row(&dir, "stopped")?["state"] == "inactive", || {
        "state".into()
    })?;

    // A shim killed with SIGKILL: its run is lost, never running forever.
    ok(&env.jobctl_in(&dir, &["run", "hang"]))?;
    env.wait_for_run("hang", Duration::from_secs(10), |r| {
        r["status"] == "running"
    })?;
    let shim = env.prop("jobctl-hang.service", "MainPID")?;
    env.sh(&format!("kill -KILL {shim}"))?;
    env.wait_for("the hung service to stop", Duration::from_secs(10), || {
        Ok(env.prop("jobctl-hang.service", "ActiveState")? == "failed")
    })?;
    let run = &env.runs("hang")?[0];
    check(run["status"] == "lost", || format!("{run:#}"))?;
    let row = env.row(&dir, "hang")?;
    check(
        row["last_run"]["status"] == "lost" && row["failure_streak"] == 1,
        || format!("{row:#}"),
    )?;
    // Reported once: the failed unit is explained by the lost run.
    says(
        &health(&["hang"]),
        1,
        &["PROBLEMS - 1 in 1 of 1 job: lost 1"],
    )?;

    // The job files change: pending apply, and a file that does not validate.
    write_job(
        &dir,
        "fine",
        "command = [\"/bin/true\"]\ndaily = \"05:00\"\n",
    );
    write_job(
        &dir,
        "broken",
        "comand = [\"/bin/true\"]\ndaily = \"05:00\"\n",
    );
    says(
        &health(&["fine"]),
        1,
        &["fine: pending-apply: the installed units differ from the job file"],
    )?;
    says(
        &health(&["broken"]),
        1,
        &["broken: invalid: the job file does not validate"],
    )?;
    check(env.row(&dir, "broken")?["state"] == "invalid", || {
        "state".into()
    })?;

    // Everything at once, in every format.
    let out = health(&["--json"]);
    check(out.status.code() == Some(1), || text(&out))?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    for kind in [
        "failed",
        "lost",
        "timer-inactive",
        "pending-apply",
        "invalid",
        "expired",
    ] {
        check(report["counts"][kind] == 1, || {
            format!("{kind}: {:#}", report["counts"])
        })?;
    }
    check(report["healthy"] == false, || format!("{report:#}"))?;
    let out = health(&["--prometheus"]);
    check(out.status.code() == Some(1), || text(&out))?;
    let metrics = String::from_utf8_lossy(&out.stdout);
    for line in [
        "jobctl_health_ok 0",
        "jobctl_job_healthy{job=\"flaky\"} 0",
        "jobctl_job_problem{job=\"hang\",kind=\"lost\"} 1",
        "jobctl_job_failure_streak{job=\"flaky\"} 2",
        "jobctl_job_last_run_success{job=\"flaky\"} 0",
    ] {
        check(metrics.lines().any(|l| l == line), || {
            format!("{line} missing:\n{metrics}")
        })?;
    }
    let out = health(&["-q"]);
    check(
        out.status.code() == Some(1) && String::from_utf8_lossy(&out.stdout).lines().count() == 1,
        || text(&out),
    )?;
    let out = health(&["nosuch-job"]);
    check(out.status.code() == Some(2), || text(&out))?;
    let out = health(&["--ignore", "bogus"]);
    check(out.status.code() == Some(2), || text(&out))
}

fn working_directory_is_entered_by_the_shim(env: &Env) -> R {
    let dir = env.jobs_dir("workdir");
    // Hard to quote, but a valid absolute path.
    let hostile = "/srv/e2e work/it's \"quoted\" $HOME %n ;&|*?[x] \\ end";
    let made = env.sb.run(&["mkdir", "-p", "--", hostile]).unwrap();
    check(made.status.success(), || format!("{made:?}"))?;
    let toml_path = hostile.replace('\\', "\\\\").replace('"', "\\\"");
    write_job(
        &dir,
        "here",
        &format!("command = [\"/bin/pwd\"]\nmanual = true\nworking_directory = \"{toml_path}\"\n"),
    );
    write_job(
        &dir,
        "nowhere",
        "command = [\"/bin/true\"]\nmanual = true\nworking_directory = \"/srv/e2e-missing\"\n",
    );
    // A folder the job's user may not enter.
    env.sh("mkdir -p /srv/e2e-locked && chmod 700 /srv/e2e-locked")?;
    write_job(
        &dir,
        "locked-out",
        "command = [\"/bin/true\"]\nmanual = true\nuser = \"nobody\"\nworking_directory = \"/srv/e2e-locked\"\n",
    );
    env.apply(&dir)?;
    let unit = fs::read_to_string(env.unit_path("jobctl-here.service"))?;
    check(
        unit.contains(" --working-directory ") && !unit.contains("WorkingDirectory="),
        || unit.clone(),
    )?;
    let out = env.jobctl_in(&dir, &["run", "here", "--wait"]);
    ok(&out)?;
    let out = env.jobctl(&["logs", "here", "--raw"]);
    check(out.stdout == format!("{hostile}\n").as_bytes(), || {
        text(&out)
    })?;
    // A missing folder: a recorded `error` run, exit 125, not 200/CHDIR.
    let out = env.jobctl_in(&dir, &["run", "nowhere", "--wait"]);
    check(out.status.code() == Some(125), || text(&out))?;
    let run = &env.runs("nowhere")?[0];
    check(
        run["status"] == "error"
            && run["exit_code"] == 125
            && run["error"]
                .as_str()
                .is_some_and(|e| e.contains("/srv/e2e-missing")),
        || format!("{run:#}"),
    )?;
    let out = env.jobctl_in(&dir, &["run", "locked-out", "--wait"]);
    check(out.status.code() == Some(125), || text(&out))?;
    let run = &env.runs("locked-out")?[0];
    check(
        run["status"] == "error"
            && run["user"] == "nobody"
            && run["error"]
                .as_str()
                .is_some_and(|e| e.contains("/srv/e2e-locked") && e.contains("Permission denied")),
        || format!("{run:#}"),
    )?;
    let out = env.jobctl_in(&dir, &["health", "nowhere"]);
    check(
        out.status.code() == Some(1)
            && String::from_utf8_lossy(&out.stdout).contains(
                "nowhere: error: the last run could not start: working directory /srv/e2e-missing",
            ),
        || text(&out),
    )
}

fn an_unusable_history_warns_in_the_journal(env: &Env) -> R {
    let dir = env.jobs_dir("broken-history");
    // A configuration whose history database is not a database.
    let broken = env.scratch.join("broken.db");
    fs::write(&broken, "this is not an SQLite database\n".repeat(200))?;
    let config = env.scratch.join("broken-config.toml");
    fs::write(
        &config,
        format!(
            "jobctl_path = \"{JOBCTL}\"\n[history]\ndb = \"{}\"\n",
            broken.display()
        ),
    )?;
    write_job(
        &dir,
        "unrecorded",
        "command = [\"/bin/sh\", \"-c\", \"echo unrecorded-output; exit 6\"]\nmanual = true\n",
    );
    let jobctl = |args: &[&str]| env.jobctl_with(&config, &dir, args);
    ok(&jobctl(&["apply"]))?;
    // The job runs, its exit status arrives: bookkeeping never breaks it.
    let out = jobctl(&["run", "unrecorded", "--wait", "--json"]);
    check(out.status.code() == Some(6), || text(&out))?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let invocation = report["invocation_id"].as_str().ok_or("no invocation")?;
    // The run's record is in the journal, structured.
    let mut entry = Value::Null;
    env.wait_for(
        "the shim's warning in the journal",
        Duration::from_secs(10),
        || {
            // The warning (priority 4), not the run's start and end
            // entries, which carry the invocation too.
            let lines = env.sh("journalctl -o json JOBCTL_JOB=unrecorded PRIORITY=4")?;
            entry = lines
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|e| e["JOBCTL_INVOCATION_ID"] == invocation && e["PRIORITY"] == "4")
                .unwrap_or(Value::Null);
            Ok(!entry.is_null())
        },
    )?;
    check(
        entry["JOBCTL_RUN_ID"]
            .as_str()
            .is_some_and(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            && entry["JOBCTL_STATUS"] == "failed"
            && entry["JOBCTL_EXIT_CODE"] == "6"
            && entry["JOBCTL_TRIGGER"] == "manual"
            && entry["JOBCTL_DB"] == broken.to_str().unwrap()
            && entry["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.contains("was not recorded")),
        || format!("{entry:#}"),
    )?;
    // The job's own output is still in its journal.
    let lines = env.sh("journalctl -o cat -u jobctl-unrecorded.service")?;
    check(lines.contains("unrecorded-output"), || lines.clone())?;
    // Nothing pretends the run was recorded.
    check(
        fs::read_to_string(&broken)?.starts_with("this is not an SQLite database"),
        || "the broken file was changed".into(),
    )
}

fn remove_purge_deletes_the_history(env: &Env) -> R {
    let dir = env.jobs_dir("purge");
    write_job(&dir, "doomed", "command = [\"/bin/true\"]\nmanual = true\n");
    write_job(
        &dir,
        "doomed-nobody",
        "command = [\"/bin/true\"]\nmanual = true\nuser = \"nobody\"\n",
    );
    write_job(&dir, "kept", "command = [\"/bin/true\"]\nmanual = true\n");
    env.apply_and_run(&dir, &["doomed", "doomed", "doomed-nobody", "kept"])?;
    check(env.runs("doomed")?.len() == 2, || "two runs".into())?;
    // Plain remove keeps the history.
    ok(&env.jobctl_in(&dir, &["remove", "kept"]))?;
    check(env.runs("kept")?.len() == 1, || {
        "remove dropped the history".into()
    })?;
    let out = env.jobctl_in(&dir, &["remove", "doomed", "--purge", "--json"]);
    ok(&out)?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(
        report["runs_purged"] == 2
            && report["units_removed"]
                .as_array()
                .is_some_and(|u| u.len() == 1),
        || format!("{report:#}"),
    )?;
    check(env.runs("doomed")?.is_empty(), || "runs left".into())?;
    // A user's database too.
    let out = env.jobctl_in(&dir, &["remove", "doomed-nobody", "--purge"]);
    ok(&out)?;
    check(
        String::from_utf8_lossy(&out.stdout).contains("purged 1 run(s) of doomed-nobody"),
        || text(&out),
    )?;
    check(env.runs("doomed-nobody")?.is_empty(), || "runs left".into())?;
    // An uninstalled job's history, later.
    let out = env.jobctl_in(&dir, &["remove", "kept", "--purge"]);
    ok(&out)?;
    check(env.runs("kept")?.is_empty(), || text(&out))?;
    // Nothing left to remove: unknown.
    let out = env.jobctl_in(&dir, &["remove", "kept", "--purge"]);
    check(out.status.code() == Some(2), || text(&out))
}

/// On this host systemd is not PID 1: a clear error, not a hang.
fn host_without_systemd() -> R {
    let dir = Scratch::new("host");
    let mut cmd = if Path::new("/run/systemd/system").exists() {
        // The host runs systemd: hide it (a tmpfs over /run/systemd) in a
        // mount namespace of jobctl's own; as a user, in a user namespace.
        let mut cmd = std::process::Command::new("unshare");
        if !nix::unistd::geteuid().is_root() {
            cmd.args(["--user", "--map-root-user"]);
        }
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            "mount -t tmpfs jobctl-test /run/systemd && exec \"$0\" \"$@\"",
            JOBCTL,
        ]);
        cmd
    } else {
        std::process::Command::new(JOBCTL)
    };
    let out = cmd
        .args(["--jobs-dir"])
        .arg(&*dir)
        .arg("apply")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.starts_with("unshare:") || stderr.starts_with("mount:") {
        let reason = format!("cannot hide the host's systemd: {}", text(&out));
        return Ok(jobctl_sandbox::skip(&reason)?);
    }
    check(out.status.code() == Some(1), || text(&out))?;
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        err.contains("systemd is not running on this host") && err.contains("Hint:"),
        || text(&out),
    )
}

/// A fresh folder under the target folder (which the sandbox shares),
/// removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A user's crontab in cron's spool, imported as root without --job-user,
/// becomes jobs that run as that user (not as root), on a real systemd; a
/// spool file its user does not own is refused, as cron ignores it.
fn an_imported_user_crontab_runs_as_its_owner(env: &Env) -> R {
    let spool = "/var/spool/cron/crontabs/cronowner";
    env.sh(&format!(
        "id -u cronowner >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin cronowner
         mkdir -p /var/spool/cron/crontabs
         printf '%s\\n' '# Say who runs it' '0 4 * * * echo ran-as-$(id -un)' > {spool}
         chown cronowner {spool}; chmod 600 {spool}"
    ))?;
    let out_dir = env.scratch.join("imported");
    let _ = fs::remove_dir_all(&out_dir);
    let import = |out: &Path| {
        env.jobctl(&[
            "import",
            "crontab",
            spool,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
    };
    let out = import(&out_dir);
    ok(&out)?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(
        report["user"]["user"] == "cronowner" && report["timeout"] == "1h",
        || format!("{report:#}"),
    )?;
    let job = report["jobs"][0]["name"]
        .as_str()
        .ok_or("no job imported")?
        .to_string();
    env.apply(&out_dir)?;
    let out = env.jobctl_in(&out_dir, &["run", &job, "--wait"]);
    ok(&out)?;
    let run = &env.runs(&job)?[0];
    check(
        run["user"] == "cronowner" && run["status"] == "success",
        || format!("{run:#}"),
    )?;
    let out = env.jobctl(&["logs", &job, "--raw"]);
    check(
        String::from_utf8_lossy(&out.stdout).contains("ran-as-cronowner"),
        || text(&out),
    )?;

    // The same file owned by root: cron would not run it, nor does import.
    env.sh(&format!("chown root {spool}"))?;
    let refused = env.scratch.join("imported-refused");
    let out = import(&refused);
    check(out.status.code() == Some(2), || text(&out))?;
    check(
        String::from_utf8_lossy(&out.stderr).contains("owned by root, not by cronowner"),
        || text(&out),
    )?;
    check(!refused.exists(), || "a refused import wrote files".into())?;
    // Leave no job behind for the next case.
    fs::remove_dir_all(&out_dir).ok();
    ok(&env.jobctl_in(&env.jobs_dir("imported-empty"), &["apply", "--prune-all"]))
}

impl Env {
    /// `jobctl --user --config C --jobs-dir DIR ARGS` against root's user
    /// manager (user@0).
    fn user_jobctl(&self, dir: &Path, args: &[&str]) -> Output {
        self.sb
            .user_command(JOBCTL)
            .args(["--user", "--config"])
            .arg(&self.config)
            .arg("--jobs-dir")
            .arg(dir)
            .args(args)
            .output()
            .unwrap()
    }

    /// Sets root's lingering (logind) and leaves root's user manager running.
    fn set_root_linger(&self, on: bool) -> R {
        let linger = "/var/lib/systemd/linger/root";
        if on {
            self.sh("loginctl enable-linger root")?;
        } else if self.sb_path(linger).exists() {
            self.sh("loginctl disable-linger root")?;
            // logind stops the manager of a user without lingering or a
            // session: wait for that before starting it again.
            self.wait_for("user@0 to stop", Duration::from_secs(30), || {
                Ok(self.prop("user@0.service", "ActiveState")? == "inactive")
            })?;
        }
        self.sb.start_user_manager().map_err(|e| e.to_string())?;
        check(self.sb_path(linger).exists() == on, || {
            format!("lingering for root is not {on}")
        })
    }
}

/// `apply --user` and `health --user` say when lingering is off: the timers
/// they installed stop when the user logs out. Not when it is on.
fn user_mode_warns_when_lingering_is_off(env: &Env) -> R {
    env.set_root_linger(false)?;
    let dir = env.jobs_dir("linger");
    write_job(&dir, "ticker", DAILY);
    let warning = "lingering is off for root";
    let hint = "`loginctl enable-linger root`";

    let out = env.user_jobctl(&dir, &["apply"]);
    ok(&out)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(stderr.contains(warning) && stderr.contains(hint), || {
        text(&out)
    })?;
    let out = env.user_jobctl(&dir, &["apply", "--json"]);
    ok(&out)?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(
        report["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains(warning)),
        || format!("{report:#}"),
    )?;
    let out = env.user_jobctl(&dir, &["health"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        out.status.code() == Some(1)
            && stdout.contains(&format!("linger-off: {warning}"))
            && stdout.contains(hint),
        || text(&out),
    )?;
    let out = env.user_jobctl(&dir, &["health", "--ignore", "linger-off"]);
    check(out.status.success(), || text(&out))?;

    env.set_root_linger(true)?;
    let out = env.user_jobctl(&dir, &["apply"]);
    ok(&out)?;
    check(
        !String::from_utf8_lossy(&out.stderr).contains("linger"),
        || text(&out),
    )?;
    let out = env.user_jobctl(&dir, &["health"]);
    check(out.status.success(), || text(&out))?;

    // As it was: no jobs, no lingering.
    ok(&env.user_jobctl(&env.jobs_dir("linger-empty"), &["apply", "--prune-all"]))?;
    env.set_root_linger(false)
}

/// The commands a hint names: in backticks, or after `(`, `; ` or a label,
/// up to the closing backtick or parenthesis or the end of the line.
fn hints_in(text: &str) -> Vec<String> {
    let mut hints = Vec::new();
    for line in text.lines() {
        let bytes = line.as_bytes();
        for (i, _) in line.char_indices() {
            let before = if i == 0 { b' ' } else { bytes[i - 1] };
            if !matches!(before, b' ' | b'(' | b'`') {
                continue;
            }
            let rest = &line[i..];
            if !["jobctl ", "journalctl ", "systemctl ", "loginctl "]
                .iter()
                .any(|w| rest.starts_with(w))
            {
                continue;
            }
            let end = match before {
                b'`' => rest.find('`'),
                b'(' => rest.find(')'),
                _ => rest.find(['`', ';']),
            }
            .unwrap_or(rest.len());
            let hint = rest[..end].trim().to_string();
            if !hints.contains(&hint) {
                hints.push(hint);
            }
        }
    }
    hints
}

/// Output and error text of a command, for hint extraction.
fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every command a hint names in user mode (status, list, health, run),
/// pasted into a shell as that user, works: it reaches the same jobs, runs,
/// and shows or does what it promises.
fn every_hint_printed_in_user_mode_works_when_pasted(env: &Env) -> R {
    env.set_root_linger(false)?;
    let dir = env.jobs_dir("hints");
    write_job(
        &dir,
        "uflaky",
        "command = [\"/bin/sh\", \"-c\", \"echo flaky-out; sleep 0.5; exit 3\"]\nevery = \"1h\"\n",
    );
    write_job(
        &dir,
        "uslow",
        "command = [\"/bin/sh\", \"-c\", \"echo slow-started; sleep 60\"]\nmanual = true\n",
    );
    // Fails before the shim runs: systemd's failure, no run recorded.
    write_job(
        &dir,
        "uenv",
        "command = [\"/bin/true\"]\nmanual = true\nenvironment_file = \"/nonexistent/env\"\n",
    );
    write_job(&dir, "uold", &format!("{DAILY}not_after = 2020-01-31\n"));
    write_job(&dir, "ustopped", DAILY);
    write_job(&dir, "uchanged", DAILY);
    ok(&env.user_jobctl(&dir, &["apply"]))?;
    // Problems with a remedy: a stopped timer, a changed file, a new file.
    let systemctl = "XDG_RUNTIME_DIR=/run/user/0 systemctl --user";
    env.sh(&format!("{systemctl} stop jobctl-ustopped.timer"))?;
    write_job(
        &dir,
        "uchanged",
        "command = [\"/bin/true\"]\ndaily = \"05:00\"\n",
    );
    write_job(&dir, "unew", DAILY);

    let mut outputs: Vec<(String, String)> = Vec::new();
    let out = env.user_jobctl(&dir, &["run", "uflaky", "--wait"]);
    check(out.status.code() == Some(3), || text(&out))?;
    outputs.push(("run uflaky --wait".into(), both(&out)));
    // Its command never ran: "did not start" (4), not jobctl's failure (1).
    let out = env.user_jobctl(&dir, &["run", "uenv", "--wait"]);
    check(
        out.status.code() == Some(4) && both(&out).contains("could not set up its process"),
        || text(&out),
    )?;
    outputs.push(("run uenv --wait".into(), both(&out)));
    ok(&env.user_jobctl(&dir, &["run", "uslow"]))?;
    env.wait_for("uslow's first line", Duration::from_secs(10), || {
        Ok(env
            .sh("journalctl -o cat --user-unit jobctl-uslow.service")?
            .contains("slow-started"))
    })?;
    let out = env.user_jobctl(&dir, &["run", "uslow"]);
    // Already running: no second run started (exit 4).
    check(out.status.code() == Some(4), || text(&out))?;
    outputs.push(("run uslow (running)".into(), both(&out)));
    let out = env.user_jobctl(&dir, &["run", "unew"]);
    check(out.status.code() == Some(1), || text(&out))?;
    outputs.push(("run unew (not installed)".into(), both(&out)));
    for args in [&["status"][..], &["list"], &["health"]] {
        outputs.push((args.join(" "), both(&env.user_jobctl(&dir, args))));
    }
    let first = collect_hints(&outputs, &[]);
    // Each kind of hint this scenario must produce (else the test proves
    // nothing about it).
    for want in [
        " logs uflaky --last",
        // Root's manager: matched on its uid, not --user (userjournal.rs).
        "journalctl _UID=0 _SYSTEMD_USER_UNIT=jobctl-uflaky.service _SYSTEMD_INVOCATION_ID=",
        "journalctl -f _UID=0 _SYSTEMD_USER_UNIT=jobctl-uslow.service _SYSTEMD_INVOCATION_ID=",
        " apply",
        " apply --check --diff",
        " remove uold",
        "systemctl --user status jobctl-uenv.service",
        "loginctl enable-linger root",
    ] {
        check(first.iter().any(|(_, h)| h.contains(want)), || {
            format!("no hint with {want:?} in {first:#?}\n{outputs:#?}")
        })?;
    }
    paste_hints(env, &first)?;
    // The remedies did what they said: nothing left to apply, the expired
    // job removed, lingering on.
    let out = env.user_jobctl(&dir, &["apply", "--check"]);
    check(out.status.success(), || text(&out))?;
    check(!dir.join("uold.toml").exists(), || {
        "uold not removed".into()
    })?;
    check(env.sb_path("/var/lib/systemd/linger/root").exists(), || {
        "lingering not enabled".into()
    })?;

    // A file that does not validate.
    fs::write(
        dir.join("ubroken.toml"),
        "comand = [\"/bin/true\"]\ndaily = \"05:00\"\n",
    )
    .unwrap();
    let mut more = Vec::new();
    for args in [&["status"][..], &["list"], &["health"]] {
        more.push((args.join(" "), both(&env.user_jobctl(&dir, args))));
    }
    let second = collect_hints(&more, &first);
    check(second.iter().any(|(_, h)| h.contains(" validate")), || {
        format!("no validate hint in {second:#?}\n{more:#?}")
    })?;
    paste_hints(env, &second)?;

    env.sh(&format!("{systemctl} stop jobctl-uslow.service"))?;
    fs::remove_file(dir.join("ubroken.toml")).unwrap();
    ok(&env.user_jobctl(&env.jobs_dir("hints-empty"), &["apply", "--prune-all"]))?;
    env.set_root_linger(false)
}

/// The hints of `outputs` (what printed them, the hint), without those
/// already in `seen`.
fn collect_hints(outputs: &[(String, String)], seen: &[(String, String)]) -> Vec<(String, String)> {
    let mut hints: Vec<(String, String)> = Vec::new();
    for (what, output) in outputs {
        for hint in hints_in(output) {
            if !hints.iter().chain(seen).any(|(_, h)| *h == hint) {
                hints.push((what.clone(), hint));
            }
        }
    }
    hints
}

/// Runs each hint as root's user would, pasted into a shell with `jobctl`
/// on the PATH: read-only hints first, then those that change things.
fn paste_hints(env: &Env, hints: &[(String, String)]) -> R {
    let bin = env.scratch.join("hint-bin");
    if !bin.join("jobctl").exists() {
        fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(JOBCTL, bin.join("jobctl")).unwrap();
    }
    let order = |h: &str| {
        [" remove ", " apply", "loginctl "]
            .iter()
            .position(|w| h.contains(w))
            .map_or(0, |p| p + 1)
    };
    let mut hints = hints.to_vec();
    hints.sort_by_key(|(_, h)| order(h));
    let mut failures = Vec::new();
    for (what, hint) in &hints {
        let out = env
            .sb
            .user_command("/bin/sh")
            .arg("-c")
            .arg(format!(
                "PATH={}:$PATH; timeout {} {hint}",
                bin.display(),
                // Following never ends: long enough to print what is there.
                if hint.contains(" -f ") { 2 } else { 60 }
            ))
            .output()
            .unwrap();
        let all = both(&out);
        let code = out.status.code();
        let works = if hint.starts_with("journalctl ") {
            // It shows that run: the job's own line, or systemd's about it
            // (a run that failed before the job started has only those).
            let code_ok = if hint.contains(" -f ") {
                code == Some(124) // still following when `timeout` ends it
            } else {
                code == Some(0)
            };
            code_ok
                && (all.contains("flaky-out")
                    || all.contains("slow-started")
                    || all.contains("jobctl-uenv.service"))
        } else if hint.starts_with("systemctl ") {
            matches!(code, Some(0 | 3)) && all.contains("Loaded: loaded")
        } else if hint.contains(" validate") {
            code == Some(2) && all.contains("ubroken.toml") && all.contains("comand")
        } else if hint.contains(" logs ") {
            code == Some(0) && all.contains("flaky-out")
        } else {
            code == Some(0)
        };
        eprintln!("pasted `{hint}` (from {what}): {code:?}, works: {works}");
        if !works {
            failures.push(format!("`{hint}` (from {what}) gave {code:?}:\n{all}"));
        }
    }
    check(failures.is_empty(), || failures.join("\n"))
}

/// `what` refused by `validate` (exit 2), skipped by `apply` (exit 6) and
/// refused by `apply --strict` (exit 2), nothing installed, the diagnostic
/// naming `file:line:col` and saying each of `texts`.
fn refused(env: &Env, dir: &Path, job: &str, at: &str, texts: &[&str]) -> R {
    let file = format!("{}/{job}.toml:{at}: ", dir.display());
    for (command, want) in [
        (&["validate"][..], 2),
        (&["apply"][..], 6),
        (&["apply", "--strict"][..], 2),
    ] {
        let out = env.jobctl_in(dir, command);
        let err = String::from_utf8_lossy(&out.stderr);
        check(
            out.status.code() == Some(want)
                && err.contains(&file)
                && texts.iter().all(|t| err.contains(t)),
            || {
                format!(
                    "{command:?}: want exit {want}, {file} and {texts:?}: {}",
                    text(&out)
                )
            },
        )?;
    }
    check(
        !env.unit_path(&format!("jobctl-{job}.timer")).exists(),
        || format!("{job} was installed"),
    )
}

fn schedules_that_can_never_fire(env: &Env) -> R {
    // Each on its own: validate and apply refuse it, naming where it is.
    let never: [(&str, &str, &str, &[&str]); 6] = [
        (
            "feb30",
            "on_calendar = \"*-02-30\"\n",
            "2:15",
            &["can never fire", "matches no time that exists"],
        ),
        (
            "cron-feb31",
            "cron = \"0 0 31 2 *\"\n",
            "2:8",
            &["can never fire", "matches no time that exists"],
        ),
        (
            "past",
            "on_calendar = \"2020-06-01 12:00\"\n",
            "2:15",
            &["can never fire", "in the past"],
        ),
        (
            "epoch",
            "on_calendar = \"1970-01-01\"\n",
            "2:15",
            &["can never fire", "in the past"],
        ),
        (
            "after-the-end",
            "on_calendar = \"2100-06-01\"\nnot_after = 2099-12-31\n",
            "2:15",
            &["can never fire", "not_after"],
        ),
        (
            "microseconds",
            "on_calendar = \"*:*:00/0.000001\"\n",
            "2:20",
            &["1us apart", "at most once every 1s"],
        ),
    ];
    for (job, schedule, at, texts) in never {
        let dir = env.jobs_dir(&format!("never-{job}"));
        write_job(&dir, job, &format!("command = [\"/bin/true\"]\n{schedule}"));
        refused(env, &dir, job, at, texts)?;
    }
    // `every` follows the same rule as calendar expressions.
    let dir = env.jobs_dir("never-every");
    write_job(&dir, "tiny", "command = [\"/bin/true\"]\nevery = \"1us\"\n");
    refused(
        env,
        &dir,
        "tiny",
        "2:9",
        &["1us apart", "at most once every 1s"],
    )?;

    // One of several cannot fire: a warning, and the job is installed.
    let dir = env.jobs_dir("never-some");
    write_job(
        &dir,
        "partly",
        "command = [\"/bin/true\"]\non_calendar = [\"*-02-30\", \"daily\"]\n",
    );
    let out = env.jobctl_in(&dir, &["validate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.success()
            && err.contains(&format!("warning: {}/partly.toml:2:16: ", dir.display()))
            && err.contains("can never fire"),
        || text(&out),
    )?;
    env.apply(&dir)?;
    env.expect_prop(
        "jobctl-partly.timer",
        "ActiveState",
        "active",
        "partly not active",
    )?;

    // A job whose one date has passed since it was applied: `health` says
    // so (not "invalid", not OK), and `status` lists it.
    let dir = env.jobs_dir("never-health");
    let soon = std::process::Command::new("date")
        .args(["-u", "-d", "+5 seconds", "+%Y-%m-%d %H:%M:%S"])
        .output()?;
    let soon = String::from_utf8_lossy(&soon.stdout).trim().to_string();
    write_job(
        &dir,
        "once",
        &format!("command = [\"/bin/true\"]\non_calendar = \"{soon} UTC\"\n"),
    );
    env.apply(&dir)?;
    let says_never =
        |out: &Output| String::from_utf8_lossy(&out.stdout).contains("once: never-fires: ");
    let out = env.jobctl_in(&dir, &["health", "once"]);
    check(out.status.success(), || {
        format!("before its date: {}", text(&out))
    })?;
    let mut last = None;
    env.wait_for(
        "health to report never-fires",
        Duration::from_secs(30),
        || {
            let out = env.jobctl_in(&dir, &["health", "once"]);
            let done = out.status.code() == Some(1) && says_never(&out);
            last = Some(out);
            Ok(done)
        },
    )
    .map_err(|e| {
        format!(
            "{}: {}",
            e.message().unwrap_or(""),
            text(last.as_ref().unwrap())
        )
    })?;
    let out = env.jobctl_in(&dir, &["health", "once", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(
        report["counts"]["never-fires"] == 1 && report["jobs"][0]["state"] != "invalid",
        || format!("{report:#}"),
    )?;
    let out = env.jobctl_in(&dir, &["health", "once", "--ignore", "never-fires"]);
    check(out.status.success(), || text(&out))?;
    let out = env.jobctl_in(&dir, &["status", "once"]);
    check(
        String::from_utf8_lossy(&out.stdout).contains("never-fires"),
        || text(&out),
    )
}

fn validate_and_apply_agree_on_directive_versions(env: &Env) -> R {
    // systemd 252 runs here (asked over D-Bus): a 258 directive is refused
    // by validate exactly as by apply, with where it is.
    let dir = env.jobs_dir("versions");
    write_job(
        &dir,
        "offset",
        "command = [\"/bin/true\"]\ndaily = \"03:00\"\n[timer_extra]\nRandomizedOffsetSec = \"1h\"\n",
    );
    refused(
        env,
        &dir,
        "offset",
        "4:1",
        &[
            "`timer_extra.RandomizedOffsetSec`",
            "RandomizedOffsetSec= needs systemd 258; this host runs systemd 252",
        ],
    )?;
    // An explicit target wins, and says where the version came from.
    let dir = env.jobs_dir("versions-flag");
    write_job(
        &dir,
        "succeed",
        "command = [\"/bin/true\"]\nmanual = true\n[unit_extra]\nOnSuccess = \"x.service\"\n",
    );
    let out = env.jobctl_in(&dir, &["validate", "--systemd-version", "248"]);
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(2)
            && err.contains(&format!("{}/succeed.toml:4:1: ", dir.display()))
            && err.contains(
                "OnSuccess= needs systemd 249; the target is systemd 248 (--systemd-version)",
            )
            && !err.contains("this host runs"),
        || text(&out),
    )?;
    // 249 is enough, and 252 (this host) too.
    let out = env.jobctl_in(&dir, &["validate", "--systemd-version", "249"]);
    ok(&out)?;
    env.apply(&dir)?;
    Ok(())
}

/// A command that ignores SIGTERM: at the timeout systemd sends SIGTERM to
/// the shim (KillMode=mixed), which forwards it and records `timeout` at
/// once; the command ignores it, and after TimeoutStopSec= systemd SIGKILLs
/// the whole unit, shim included. The first row must already hold the
/// output printed before the stop.
fn output_up_to_a_stop_is_kept(env: &Env) -> R {
    let dir = env.jobs_dir("ignores-term");
    write_job(
        &dir,
        "ignores-term",
        "command = [\"/bin/sh\", \"-c\", \"trap '' TERM; echo before-the-stop; echo warned >&2; sleep 600\"]\n\
         manual = true\ntimeout = \"2s\"\n\
         [service_extra]\nTimeoutStopSec = \"1s\"\n",
    );
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["run", "ignores-term"]))?;
    // Timeout at 2 s, SIGKILL 1 s later; the unit then ends as failed.
    env.wait_for("the unit to be killed", Duration::from_secs(30), || {
        Ok(
            env.prop("jobctl-ignores-term.service", "Result")? == "timeout"
                && env.prop("jobctl-ignores-term.service", "ActiveState")? != "activating"
                && env.prop("jobctl-ignores-term.service", "ActiveState")? != "deactivating",
        )
    })?;
    let runs = env.runs("ignores-term")?;
    check(runs.len() == 1, || format!("{runs:#?}"))?;
    let run = &runs[0];
    check(
        run["status"] == "timeout" && run["signal"] == 15 && run["output_bytes"] == 23,
        || format!("{run:#}"),
    )?;
    let out = env.jobctl_in(&dir, &["logs", "ignores-term"]);
    ok(&out)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        stdout.contains("out| before-the-stop\n") && stdout.contains("err| warned\n"),
        || text(&out),
    )
}

/// `merge_output = true` goes from the job file through the unit to the
/// shim: one pipe for both streams, the exact order in the history, and the
/// job's lines still in its journal.
fn merge_output_under_systemd(env: &Env) -> R {
    let dir = env.jobs_dir("merged");
    write_job(
        &dir,
        "merged",
        "command = [\"/bin/sh\", \"-c\", \"for i in 1 2 3 4 5 6 7 8; do echo o$i; echo e$i >&2; done\"]\n\
         manual = true\nmerge_output = true\n",
    );
    env.apply(&dir)?;
    let unit = env.sh("systemctl cat jobctl-merged.service")?;
    check(unit.contains(" --merge-output "), || unit.clone())?;
    ok(&env.jobctl_in(&dir, &["run", "merged", "--wait"]))?;
    let out = env.jobctl_in(&dir, &["logs", "merged"]);
    ok(&out)?;
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    let expected: Vec<String> = (1..=8)
        .flat_map(|i| [format!("o+e| o{i}"), format!("o+e| e{i}")])
        .collect();
    check(lines == expected, || text(&out))?;
    let journal = env.sh("journalctl -o cat -u jobctl-merged.service")?;
    check(journal.contains("o8") && journal.contains("e8"), || {
        journal.clone()
    })
}

// ------------------------------------------------- trust boundaries (issue 10)

/// Real users for the attack cases, created inside the sandbox (its overlay
/// vanishes at shutdown), and their history folders removed again when the
/// case ends, however it ends: later cases read every user's database.
struct AttackUsers<'a> {
    env: &'a Env,
    users: &'a [&'a str],
}

impl<'a> AttackUsers<'a> {
    fn create(env: &'a Env, users: &'a [&'a str]) -> Result<AttackUsers<'a>, Failed> {
        for user in users {
            env.sh(&format!(
                "id -u {user} >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin {user}"
            ))?;
        }
        Ok(AttackUsers { env, users })
    }

    /// `sh -c SCRIPT` as `user` (uid, gid and no supplementary groups).
    fn sh(&self, user: &str, script: &str) -> Result<Output, Failed> {
        Ok(self
            .env
            .sb
            .command("/usr/bin/setpriv")
            .arg(format!("--reuid={user}"))
            .arg(format!("--regid={user}"))
            .args(["--clear-groups", "/bin/sh", "-c", script])
            .output()?)
    }
}

impl Drop for AttackUsers<'_> {
    fn drop(&mut self) {
        for user in self.users {
            let _ = self.env.sh(&format!(
                "rm -rf /var/lib/jobctl/users/{user} /var/lib/private/jobctl/users/{user}"
            ));
        }
    }
}

/// Root's files a user would like root to write, and a check that none of
/// them changed and no SQLite file appeared beside them.
const ROOT_FILES: &str = "rm -rf /root/app && mkdir -p /root/app && chmod 700 /root/app \
     && : > /root/app/important.conf && chmod 600 /root/app/important.conf \
     && printf keep > /root/app/wal.target && printf keep > /root/app/shm.target";

fn root_files_untouched(env: &Env, after: &str) -> R {
    let listing = env.sh(
        "cd /root/app && for f in *; do printf '%s %s\\n' \"$f\" \"$(wc -c < \"$f\")\"; done",
    )?;
    check(
        listing == "important.conf 0\nshm.target 4\nwal.target 4\n",
        || format!("after {after}, root's files changed:\n{listing}"),
    )?;
    let contents = env.sh("cat /root/app/wal.target /root/app/shm.target")?;
    check(contents == "keepkeep", || {
        format!("after {after}, root's files changed: {contents:?}")
    })
}

/// Issue 10, item 1: a job's user plants links in the folder systemd gave
/// them; root's prune, purge and readers act on none of the targets.
fn root_never_follows_a_users_links(env: &Env) -> R {
    let users = AttackUsers::create(env, &["alice"])?;
    let dir = env.jobs_dir("links");
    write_job(
        &dir,
        "alice-links",
        "command = [\"/bin/echo\", \"alice was here\"]\nmanual = true\nuser = \"alice\"\n",
    );
    write_job(
        &dir,
        "root-links",
        "command = [\"/bin/true\"]\nmanual = true\n",
    );
    env.apply_and_run(&dir, &["root-links", "alice-links"])?;
    let folder = "/var/lib/jobctl/users/alice";
    let db = format!("{folder}/history.db");
    env.sh(ROOT_FILES)?;

    // The database itself, a link to root's empty file.
    let out = users.sh(
        "alice",
        &format!(
            "cd {folder} && rm -f history.db history.db-wal history.db-shm \
             && ln -s /root/app/important.conf history.db"
        ),
    )?;
    check(out.status.success(), || text(&out))?;
    let out = env.jobctl_in(&dir, &["history", "prune"]);
    root_files_untouched(env, "history prune")?;
    check(out.status.code() == Some(1), || text(&out))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    check(err.contains(&db) && err.contains("symbolic link"), || {
        text(&out)
    })?;
    for args in [
        &["history"][..],
        &["history", "--json"],
        &["logs", "alice-links"],
        &["list"],
        &["status", "alice-links"],
        &["health"],
    ] {
        let out = env.jobctl_in(&dir, args);
        root_files_untouched(env, &args.join(" "))?;
        // Said on stderr (`health`: a problem on stdout).
        check(text(&out).contains(&db), || {
            format!("{args:?}: {}", text(&out))
        })?;
    }
    // Root's own shim pointed there does not write through the link either.
    let out = env
        .sb
        .command(JOBCTL)
        .env("JOBCTL_WARNINGS", "stderr")
        .args([
            "exec",
            "--job",
            "alice-links",
            "--db",
            &db,
            "--",
            "/bin/true",
        ])
        .output()?;
    root_files_untouched(env, "exec --db as root")?;
    check(
        out.status.success() && text(&out).contains("symbolic link"),
        || text(&out),
    )?;
    // `history` shows what it could read and says that something was left out.
    let out = env.jobctl_in(&dir, &["history", "--json"]);
    check(out.status.code() == Some(5), || text(&out))?;
    let out = env.jobctl_in(&dir, &["history", "--db", &db]);
    root_files_untouched(env, "history --db")?;
    check(out.status.code() == Some(1), || text(&out))?;

    // A real database again, and links for its log and shared-memory files.
    let out = users.sh("alice", &format!("rm -f {db}"))?;
    check(out.status.success(), || text(&out))?;
    ok(&env.jobctl_in(&dir, &["run", "alice-links", "--wait"]))?;
    let out = users.sh(
        "alice",
        &format!(
            "cd {folder} && rm -f history.db-wal history.db-shm \
             && ln -s /root/app/wal.target history.db-wal \
             && ln -s /root/app/shm.target history.db-shm"
        ),
    )?;
    check(out.status.success(), || text(&out))?;
    for args in [
        &["history", "prune"][..],
        &["history"],
        &["logs", "alice-links"],
        &["list"],
    ] {
        let out = env.jobctl_in(&dir, args);
        root_files_untouched(env, &args.join(" "))?;
        check(
            text(&out).contains(&db) && text(&out).contains("symbolic link"),
            || format!("{args:?}: {}", text(&out)),
        )?;
    }
    let out = env.jobctl_in(&dir, &["remove", "alice-links", "--purge"]);
    root_files_untouched(env, "remove --purge")?;
    check(out.status.code() == Some(1), || text(&out))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    check(err.contains(&db) && err.contains("symbolic link"), || {
        text(&out)
    })?;
    drop(users);
    Ok(())
}

/// Issue 10, item 2: a user writes runs for root's job into their own
/// database, and another user links their database to the first one's.
fn a_user_cannot_forge_or_move_runs_root_sees(env: &Env) -> R {
    let users = AttackUsers::create(env, &["alice", "bob"])?;
    let dir = env.jobs_dir("forgery");
    write_job(
        &dir,
        "good1",
        "command = [\"/bin/echo\", \"the real good1\"]\nmanual = true\n",
    );
    for user in ["alice", "bob"] {
        write_job(
            &dir,
            &format!("{user}-job"),
            &format!(
                "command = [\"/bin/echo\", \"{user}'s own run\"]\nmanual = true\nuser = \"{user}\"\n"
            ),
        );
    }
    env.apply_and_run(&dir, &["good1", "alice-job", "bob-job"])?;
    let alice_db = "/var/lib/jobctl/users/alice/history.db";
    let bob_db = "/var/lib/jobctl/users/bob/history.db";

    // alice records a success for root's job in her own database.
    let out = users.sh(
        "alice",
        &format!(
            "{JOBCTL} exec --job good1 --db {alice_db} -- /bin/echo 'all backups verified OK'"
        ),
    )?;
    check(out.status.success(), || text(&out))?;
    let out = env.jobctl_in(&dir, &["history", "good1", "--json"]);
    ok(&out)?;
    let runs: Value = serde_json::from_slice(&out.stdout)?;
    let runs = runs["runs"].as_array().cloned().unwrap_or_default();
    check(
        runs.len() == 1 && runs[0]["database"] == "/var/lib/jobctl/history.db",
        || text(&out),
    )?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    check(
        err.contains(alice_db) && err.contains("1 run ") && err.contains("alice"),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["logs", "good1"]);
    ok(&out)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    check(
        stdout.contains("the real good1") && !stdout.contains("all backups verified OK"),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["logs", "good1", "--raw"]);
    check(out.stdout == b"the real good1\n", || text(&out))?;

    // bob's database, a link to alice's: alice's runs stay hers.
    let out = users.sh(
        "bob",
        &format!("rm -f {bob_db} {bob_db}-wal {bob_db}-shm && ln -s {alice_db} {bob_db}"),
    )?;
    check(out.status.success(), || text(&out))?;
    let out = env.jobctl_in(&dir, &["history", "--json", "--limit", "0"]);
    check(out.status.code() == Some(5), || text(&out))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    check(
        err.contains(bob_db) && err.contains("symbolic link"),
        || text(&out),
    )?;
    let all: Value = serde_json::from_slice(&out.stdout)?;
    let all = all["runs"].as_array().cloned().unwrap_or_default();
    let alice_runs: Vec<&Value> = all.iter().filter(|r| r["job"] == "alice-job").collect();
    check(
        alice_runs.len() == 1
            && alice_runs[0]["owner"] == "alice"
            && alice_runs[0]["database"] == alice_db
            && all.iter().all(|r| r["owner"] != "bob"),
        || text(&out),
    )?;
    let row = env.row(&dir, "alice-job")?;
    check(row["last_run"]["user"] == "alice", || format!("{row:#}"))?;
    // In text, a run from a user's database says which one.
    let out = env.jobctl_in(&dir, &["history"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.contains("alice-job"))
        .unwrap_or_default()
        .to_string();
    check(line.ends_with("users/alice"), || text(&out))?;
    let line = stdout
        .lines()
        .find(|l| l.contains("good1"))
        .unwrap_or_default()
        .to_string();
    check(!line.contains("users/"), || text(&out))?;
    drop(users);
    Ok(())
}
