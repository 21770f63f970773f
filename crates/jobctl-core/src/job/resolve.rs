//! Resolution: a job file's keys over the configuration's defaults, and the
//! rules that span keys (exactly one of `command`/`shell`, a schedule or
//! `manual`, zone conflicts, retry waits against the timeout).

use super::*;

/// Applies `defaults` under `spec` and checks the keys that depend on each other.
pub(super) fn resolve(
    spec: JobSpec,
    defaults: &JobSpec,
    name: Option<JobName>,
    path: &str,
    ctx: &LoadContext<'_>,
    diags: &mut Diagnostics<'_>,
) -> Option<Job> {
    let command = match (&spec.command, &spec.shell) {
        (Some(argv), None) => Some(Command::Argv {
            argv: argv.value.clone(),
        }),
        (None, Some(script)) => Some(Command::Shell {
            script: script.value.clone(),
            shell: pick(&spec.shell_path, &defaults.shell_path)
                .map_or_else(|| DEFAULT_SHELL.to_string(), |p| p.value.clone()),
        }),
        (Some(_), Some(script)) => {
            diags.error(
                script.span.clone(),
                "shell",
                "both `command` and `shell` are set",
                Some(
                    "keep one: `command` runs a program directly, `shell` runs a script with \
                     /bin/sh (or `shell_path`)"
                        .into(),
                ),
            );
            None
        }
        (None, None) => {
            // Only a problem when the keys were absent, not merely invalid.
            let present = diags_mention(diags, &["command", "shell"])
                || typo_of(diags, &["command", "shell"]);
            if !present {
                diags.push(crate::diag::Severity::Error, None, None, "the job has no command", Some("add command = [\"/path/to/program\", \"arg\"] (or shell = \"...\" for a shell script)".into()));
            }
            None
        }
    };

    // `shell_path` in the job file says how to run its `shell`; a default
    // from the configuration applies to the jobs that have one.
    if let (Some(path), None) = (&spec.shell_path, &spec.shell)
        && spec.command.is_some()
    {
        diags.error(
            path.span.clone(),
            "shell_path",
            "`shell_path` is set but the job has `command`, not `shell`",
            Some(
                "remove it (`command` runs its program directly), or give the script as `shell`"
                    .into(),
            ),
        );
    }
    let manual = spec.manual.as_ref().is_some_and(|m| m.value);
    let has_schedule = !spec.schedules.is_empty() || spec.on_boot.is_some();
    let schedule_keys_invalid = diags_mention(
        diags,
        &[
            "on_calendar",
            "cron",
            "every",
            "hourly",
            "daily",
            "weekly",
            "monthly",
            "on_boot",
        ],
    );
    if manual && has_schedule {
        let span = spec
            .manual
            .as_ref()
            .map(|m| m.span.clone())
            .unwrap_or_default();
        diags.error(
            span,
            "manual",
            "manual = true, but the job also has a schedule",
            Some(format!(
                "remove manual = true, or remove the schedule ({SCHEDULE_KEYS}, on_boot)"
            )),
        );
    } else if !manual && !has_schedule && !schedule_keys_invalid {
        let hint = format!(
            "add a schedule ({SCHEDULE_KEYS}), or manual = true for a job that runs only when triggered"
        );
        match &spec.manual {
            Some(m) => diags.error(
                m.span.clone(),
                "manual",
                "manual = false, but the job has no schedule",
                Some(hint),
            ),
            None => diags.push(
                crate::diag::Severity::Error,
                None,
                None,
                "the job has no schedule",
                Some(hint),
            ),
        }
    }

    let timezone = spec.timezone.clone().or_else(|| defaults.timezone.clone());
    if let Some(tz) = &timezone {
        for calendar in &spec.calendars {
            if let Some(own) = crate::calendar_bridge::expression_zone(&calendar.value) {
                diags.error(calendar.span.clone(), "on_calendar", format!("this expression names its own time zone ({own}), and the job sets timezone = \"{}\"", tz.value), Some("remove the zone from the expression, or remove `timezone`".into()));
            }
        }
    }

    if let Some(now) = &ctx.now {
        check_firing(
            &spec,
            timezone.as_ref().map(|t| t.value.as_str()),
            now,
            ctx.zones,
            diags,
        );
    }

    let persistent = pick(&spec.persistent, &defaults.persistent).map(|p| p.value);
    let has_calendar = spec.schedules.iter().any(|s| {
        s.value
            .triggers()
            .iter()
            .any(|t| matches!(t, schedule::Trigger::Calendar(_)))
    });
    if let Some(p) = &spec.persistent
        && p.value
        && !has_calendar
    {
        diags.warning(
            p.span.clone(),
            "persistent",
            "persistent = true has no effect without a calendar schedule",
            Some("systemd catches up missed runs of calendar (OnCalendar=) schedules only".into()),
        );
    }

    let timeout = pick(&spec.timeout, &defaults.timeout).map_or(DEFAULT_TIMEOUT, |t| t.value);
    let retry = pick(&spec.retry, &defaults.retry).map(|r| r.value.clone());
    if let (Some(r), false) = (&retry, timeout.is_infinite()) {
        let waits = retry_waits(r).fold(0u64, |sum, w| sum.saturating_add(w.as_usec()));
        if waits >= timeout.as_usec() {
            let span = spec
                .retry
                .as_ref()
                .map(|r| r.span.clone())
                .unwrap_or_default();
            diags.warning(span, "retry", format!(
                    "the waits between {} attempts add up to {}, leaving no time for the runs within the job's timeout ({timeout})",
                    r.attempts,
                    Timespan::from_usec(waits)
                ), Some("retries never run past the timeout; shorten the delay or raise `timeout`".into()));
        }
    }

    let mut environment: BTreeMap<String, String> = defaults
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    environment.extend(
        spec.environment
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone())),
    );

    let user = pick(&spec.user, &defaults.user).map(|u| u.value.clone());
    let dynamic_user = pick(&spec.dynamic_user, &defaults.dynamic_user).is_some_and(|d| d.value);
    if ctx.mode == Mode::User && (spec.user.is_none() && defaults.user.is_some()) {
        // A system-wide default user cannot apply to a per-user job.
        diags.push(
            crate::diag::Severity::Error,
            None,
            None,
            "the configuration's [defaults] sets `user`, which per-user jobs cannot use",
            Some("remove `user` from [defaults] in the per-user config.toml".into()),
        );
    }

    let environment_files = pick(&spec.environment_file, &defaults.environment_file);
    if let (Some(inspector), Some(files), Mode::System) =
        (ctx.root_files, environment_files, ctx.mode)
        && runs_as_root(user.as_deref(), dynamic_user)
    {
        let from_defaults = spec.environment_file.is_none();
        for file in &files.value {
            check_root_file(inspector, file, from_defaults, diags);
        }
    }

    spec.notify.check_channels(&ctx.config.notify, diags);
    spec.notify.check_warn_after(timeout, diags);

    let (command, name) = (command?, name?);
    if diags.has_errors() {
        return None;
    }
    let spans = SizeSpans {
        command: spec
            .command
            .as_ref()
            .map(|c| c.span.clone())
            .or_else(|| spec.shell.as_ref().map(|s| s.span.clone())),
        environment: spec
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.span.clone()))
            .collect(),
        description: spec.description.as_ref().map(|d| d.span.clone()),
        stdin: spec.stdin.as_ref().map(|d| d.span.clone()),
        environment_file: spec.environment_file.as_ref().map(|d| d.span.clone()),
    };
    // OnSuccess= is systemd 249's: refused, where it is written, on an
    // older target (as `*_extra` directives are).
    let on_success = spec
        .on_success
        .clone()
        .or_else(|| defaults.on_success.clone());
    if let (Some(target), Some(links)) = (&ctx.systemd, &on_success)
        && !links.value.is_empty()
        && let Some(message) = directives::too_new(Section::Unit, "OnSuccess", target)
    {
        let hint = Some(
            "remove on_success, or install the job on a newer systemd (on_failure works on \
             every version)"
                .to_string(),
        );
        match &spec.on_success {
            Some(own) => diags.error(own.span.clone(), "on_success", message, hint),
            None => {
                let at = &links.value[0].at;
                diags.push(
                    crate::diag::Severity::Error,
                    None,
                    Some("on_success"),
                    format!(
                        "{message} (on_success comes from [defaults], {}:{}:{})",
                        at.file, at.line, at.column
                    ),
                    hint,
                );
            }
        }
    }
    let job = Job {
        name,
        source: path.to_string(),
        description: spec.description.map(|d| d.value),
        command,
        working_directory: pick(&spec.working_directory, &defaults.working_directory)
            .map(|w| w.value.clone()),
        user,
        group: pick(&spec.group, &defaults.group).map(|g| g.value.clone()),
        dynamic_user,
        environment,
        environment_files: environment_files
            .map(|f| f.value.iter().map(|p| p.value.clone()).collect())
            .unwrap_or_default(),
        timeout,
        stdin: spec.stdin.map(|s| s.value),
        schedules: spec.schedules.into_iter().map(|s| s.value).collect(),
        timezone: timezone.map(|t| t.value),
        timer: TimerOptions {
            persistent: persistent.unwrap_or(false),
            randomized_delay: pick(&spec.randomized_delay, &defaults.randomized_delay)
                .map(|v| v.value),
            accuracy: pick(&spec.accuracy, &defaults.accuracy).map(|v| v.value),
            on_boot: spec.on_boot.map(|v| v.value),
        },
        service: ServiceOptions {
            nice: pick(&spec.nice, &defaults.nice).map(|v| v.value),
            memory_max: pick(&spec.memory_max, &defaults.memory_max).map(|v| v.value.clone()),
            cpu_quota: pick(&spec.cpu_quota, &defaults.cpu_quota).map(|v| v.value.clone()),
            io_weight: pick(&spec.io_weight, &defaults.io_weight).map(|v| v.value),
            private_tmp: pick(&spec.private_tmp, &defaults.private_tmp).map(|v| v.value),
            protect_system: pick(&spec.protect_system, &defaults.protect_system)
                .map(|v| v.value.clone()),
            no_new_privileges: pick(&spec.no_new_privileges, &defaults.no_new_privileges)
                .map(|v| v.value),
        },
        after: spec
            .after
            .or_else(|| defaults.after.clone())
            .unwrap_or_default(),
        wants: spec
            .wants
            .or_else(|| defaults.wants.clone())
            .unwrap_or_default(),
        on_success: on_success.map(|s| s.value).unwrap_or_default(),
        on_failure: spec
            .on_failure
            .or_else(|| defaults.on_failure.clone())
            .map(|s| s.value)
            .unwrap_or_default(),
        extra: spec.extra,
        owner: spec.owner,
        team: spec.team,
        tags: spec.tags,
        metadata: spec.metadata,
        enabled: spec.enabled.is_none_or(|e| e.value),
        not_after: spec.not_after.map(|d| d.value),
        retry,
        output_limit: pick(&spec.output_limit, &defaults.output_limit).map(|o| o.value),
        merge_output: pick(&spec.merge_output, &defaults.merge_output).is_some_and(|m| m.value),
        notify: spec.notify.resolve(&defaults.notify),
    };
    check_sizes(&job, &spans, ctx, diags);
    (!diags.has_errors()).then_some(job)
}

/// The job's value, else the default's.
pub(super) fn pick<'a, T>(own: &'a Option<T>, default: &'a Option<T>) -> Option<&'a T> {
    own.as_ref().or(default.as_ref())
}

/// Whether any error already names one of these keys (so a missing-key error
/// would only repeat it).
pub(super) fn diags_mention(diags: &Diagnostics<'_>, keys: &[&str]) -> bool {
    diags.has_error_for(|k| {
        keys.iter()
            .any(|key| k == *key || k.starts_with(&format!("{key}[")))
    })
}

/// Whether an unknown top-level key was reported that looks like a typo of
/// one of `keys` (then "missing key" errors would only repeat it).
pub(super) fn typo_of(diags: &Diagnostics<'_>, keys: &[&str]) -> bool {
    diags.has_error_for(|k| {
        !k.contains('.') && !keys.contains(&k) && walk::suggest(k, keys).is_some()
    })
}
