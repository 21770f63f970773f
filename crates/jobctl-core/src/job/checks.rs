//! Checks of the resolved job against its surroundings: a root job's
//! environment files (who may change them), sizes systemd and Linux accept,
//! schedules that can still fire before the job's end.

use super::*;

/// Refuses an `environment_file` of a root job that someone other than root
/// could change: its lines become the job's environment (`LD_PRELOAD`,
/// `PATH`), so whoever can write it runs commands as root.
pub(super) fn check_root_file(
    inspector: &dyn PathInspector,
    file: &Sp<String>,
    from_defaults: bool,
    diags: &mut Diagnostics<'_>,
) {
    // A leading '-' only makes the file optional.
    let path = file.value.strip_prefix('-').unwrap_or(&file.value);
    let (span, origin) = if from_defaults {
        (None, " (from the configuration's [defaults])")
    } else {
        (Some(file.span.clone()), "")
    };
    let (message, hint) = match inspector.trace(path) {
        Ok(steps) => {
            let problems = crate::ownership::root_only_problems(&steps);
            if problems.is_empty() {
                return;
            }
            let mut fixes: Vec<&str> = Vec::new();
            for p in &problems {
                if !fixes.contains(&p.fix.as_str()) {
                    fixes.push(&p.fix);
                }
            }
            (
                format!(
                    "refusing an unsafe environment file {path}{origin}: {}; a user who can change it could set LD_PRELOAD and run commands as root",
                    problems
                        .iter()
                        .map(|p| p.message.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "the file, every folder above it and every link on the way must be root's and writable only by root: {}",
                    fixes.join("; ")
                ),
            )
        }
        Err(reason) => (
            format!("cannot check the environment file {path}{origin}: {reason}"),
            "a root job's environment file must be a path root can check".to_string(),
        ),
    };
    diags.push(
        crate::diag::Severity::Error,
        span,
        Some("environment_file"),
        message,
        Some(hint),
    );
}

/// From `now` to the job's end; `None` when the end has passed (an expired
/// job) or cannot be computed.
pub(super) fn window<'a>(
    now: &Now<'a>,
    not_after: Option<jiff::civil::Date>,
    timezone: Option<&str>,
    zones: &dyn ZoneLookup,
) -> Option<schedule::Window<'a>> {
    let end = match not_after {
        Some(date) => {
            let zone = match timezone {
                Some(name) => zones.zone(name)?,
                None => now.local.clone(),
            };
            let end = schedule::end_of(date, &zone)?;
            if end <= now.instant {
                return None;
            }
            Some(end)
        }
        None => None,
    };
    Some(schedule::Window {
        now: now.instant,
        end,
        local: now.local,
    })
}

/// Where the keys [`check_sizes`] can name are in the job file.
pub(super) struct SizeSpans {
    pub(super) command: Option<Range<usize>>,
    pub(super) environment: BTreeMap<String, Range<usize>>,
    pub(super) description: Option<Range<usize>>,
    pub(super) stdin: Option<Range<usize>>,
    pub(super) environment_file: Option<Range<usize>>,
}

/// The longest path the running jobctl binary can have (`PATH_MAX` less its
/// NUL): the room kept for it in `ExecStart=` when the configuration does not
/// name the binary.
pub(super) const LONGEST_PATH: usize = 4095;

/// Refuses what systemd would not load or Linux would not start: unit
/// lines of 1 MiB or more, arguments and environment over 2 MiB together
/// ([`render::size_problems`]). Measured
/// on the unit as it will be rendered, with room for the longest binary path
/// when the configuration does not name it.
pub(super) fn check_sizes(
    job: &Job,
    spans: &SizeSpans,
    ctx: &LoadContext<'_>,
    diags: &mut Diagnostics<'_>,
) {
    if render::surely_small(job) {
        return;
    }
    let placeholder;
    let jobctl_path = match &ctx.config.jobctl_path {
        Some(path) => path.as_str(),
        None => {
            placeholder = format!("/{}", "x".repeat(LONGEST_PATH - 1));
            &placeholder
        }
    };
    let opts = render::RenderOptions {
        mode: ctx.mode,
        unit_prefix: &ctx.config.unit_prefix,
        jobctl_path,
        // Only the length of the `--not-after` instant matters here, and it
        // does not depend on the zone.
        local_zone: &jiff::tz::TimeZone::UTC,
        zones: ctx.zones,
        history: &ctx.config.history,
        systemd_version: None,
        user_state_dir: None,
    };
    // Other render errors are apply's to report (with this host's zones).
    let Ok(problems) = render::size_problems(job, &opts) else {
        return;
    };
    for problem in problems {
        let span = match problem.key.as_str() {
            "command" | "shell" => spans.command.clone(),
            "description" => spans.description.clone(),
            "stdin" => spans.stdin.clone(),
            "environment_file" => spans.environment_file.clone(),
            key => key
                .strip_prefix("environment.")
                .and_then(|name| spans.environment.get(name).cloned())
                .or_else(|| {
                    // The whole environment: the job's largest variable.
                    (key == "environment")
                        .then(|| {
                            spans
                                .environment
                                .iter()
                                .max_by_key(|(name, _)| {
                                    job.environment.get(*name).map_or(0, String::len)
                                })
                                .map(|(_, span)| span.clone())
                        })
                        .flatten()
                }),
        };
        diags.push(
            crate::diag::Severity::Error,
            span,
            Some(&problem.key),
            problem.message,
            Some(render::TooLarge::HINT.into()),
        );
    }
}

/// Reports the schedules that can never fire between `now` and the job's
/// end: errors when none of the job's schedules can, warnings otherwise.
pub(super) fn check_firing(
    spec: &JobSpec,
    timezone: Option<&str>,
    now: &Now<'_>,
    zones: &dyn ZoneLookup,
    diags: &mut Diagnostics<'_>,
) {
    if spec.schedules.is_empty() {
        return;
    }
    let not_after = spec.not_after.as_ref().map(|d| d.value);
    let Some(window) = window(now, not_after, timezone, zones) else {
        return;
    };
    let dead: Vec<(&Sp<Schedule>, schedule::NeverFires)> = spec
        .schedules
        .iter()
        .filter_map(|s| {
            schedule::never_fires(&s.value, timezone, &window, zones).map(|why| (s, why))
        })
        .collect();
    let none_fires = dead.len() == spec.schedules.len() && spec.on_boot.is_none();
    for (s, why) in dead {
        let key = s.value.key();
        let message = format!(
            "{} can never fire: {}",
            s.value.subject(),
            why.why(not_after)
        );
        if none_fires {
            diags.error(s.span.clone(), key, message, Some(why.hint().to_string()));
        } else {
            diags.warning(
                s.span.clone(),
                key,
                message,
                Some("the job's other schedules still fire; remove this one".to_string()),
            );
        }
    }
}
