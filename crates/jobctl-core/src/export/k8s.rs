//! A job as a Kubernetes `batch/v1` CronJob (`jobctl export k8s`).
//!
//! What carries over, and how, is docs/kubernetes.md's table; in short:
//! the schedules as one cron line ([`super::schedule`]) with the job's zone
//! as `timeZone`, `concurrencyPolicy: Forbid` (a systemd service never runs
//! twice at once), `timeout` as the Job's `activeDeadlineSeconds` (it
//! covers every attempt, as the service's start timeout does), `retry`'s
//! attempts as `backoffLimit` (attempts − 1; 0 without retry), `enabled` as
//! `suspend`, the command (argv, or `/bin/sh -c` for `shell`),
//! `environment`, `working_directory`, `memory_max` and `cpu_quota` as
//! resource limits, `no_new_privileges` as `allowPrivilegeEscalation:
//! false`, `owner`/`team`/`tags` as labels and the description and
//! `metadata` as annotations. Everything else is named in a warning.
//!
//! Kubernetes expands `$(NAME)` in a container's command and environment
//! values, and reads `$$` as `$`; every `$` of those values is doubled so
//! that the container gets exactly the job's strings.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::emit::Node;
use super::names;
use super::schedule::{self, Refusal};
use crate::context::ZoneLookup;
use crate::job::{Command, Job};
use crate::size::ByteSize;

/// The image written when none is given: not a valid image reference
/// (capitals), so a cluster refuses to pull it rather than running
/// something else.
pub const PLACEHOLDER_IMAGE: &str = "REPLACE-WITH-AN-IMAGE";

/// What the export needs besides the job.
pub struct K8sOptions<'a> {
    /// The container image; [`PLACEHOLDER_IMAGE`] when `None`.
    pub image: Option<&'a str>,
    /// `metadata.namespace`, when given.
    pub namespace: Option<&'a str>,
    /// The CronJob's name instead of the one made from the job's name.
    pub name: Option<&'a str>,
    /// The host's zone, for jobs without a `timezone` (they run on the
    /// host's clock).
    pub host_zone: &'a TimeZone,
    /// Its zoneinfo name, when it has one (`TZ` or /etc/localtime's link).
    pub host_zone_name: Option<&'a str>,
    /// Zones by name, for the DST check of a named zone.
    pub zones: &'a dyn ZoneLookup,
    /// The present: the repeated-hour check looks at the year after it.
    pub now: Timestamp,
}

/// The CronJob, and what did not carry over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronJob {
    pub name: String,
    /// The cron line.
    pub schedule: String,
    /// `spec.timeZone`, when written.
    pub time_zone: Option<String>,
    pub manifest: Node,
    /// One line each: what the CronJob does differently from the job.
    pub warnings: Vec<String>,
}

/// Builds the CronJob for `job`, or says every reason it cannot.
pub fn cron_job(job: &Job, options: &K8sOptions<'_>) -> Result<CronJob, Vec<Refusal>> {
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();

    let name = match options.name {
        Some(name) => {
            if !names::is_dns_subdomain(name) || name.len() > names::MAX_CRONJOB_NAME {
                refusals.push(
                    Refusal::new(
                        "--name",
                        format!(
                            "\"{name}\" is not a CronJob name: lowercase letters, digits, '-' \
                             and '.', starting and ending with a letter or digit, at most {} \
                             characters",
                            names::MAX_CRONJOB_NAME
                        ),
                    )
                    .hint("e.g. --name nightly-refresh"),
                );
            }
            name.to_string()
        }
        None => match names::cronjob_name(job.name.as_str()) {
            Some(name) if name.len() <= names::MAX_CRONJOB_NAME => {
                if name != job.name.as_str() {
                    warnings.push(format!(
                        "the job name \"{}\" is not a Kubernetes name; the CronJob is named \
                         \"{name}\" (--name chooses another)",
                        job.name
                    ));
                }
                name
            }
            made => {
                refusals.push(
                    Refusal::new(
                        "the job name",
                        match made {
                            Some(name) => format!(
                                "\"{name}\" is {} characters long; a CronJob name has at most {}",
                                name.len(),
                                names::MAX_CRONJOB_NAME
                            ),
                            None => format!(
                                "\"{}\" has no letter or digit to make a Kubernetes name of",
                                job.name
                            ),
                        },
                    )
                    .hint("choose the CronJob's name with --name"),
                );
                String::new()
            }
        },
    };
    if let Some(namespace) = options.namespace
        && !names::is_dns_label(namespace)
    {
        refusals.push(Refusal::new(
            "--namespace",
            format!(
                "\"{namespace}\" is not a namespace name: lowercase letters, digits and '-', \
                 starting and ending with a letter or digit, at most 63 characters"
            ),
        ));
    }
    let image = match options.image {
        Some(image) => {
            if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
                refusals.push(
                    Refusal::new(
                        "--image",
                        format!("\"{}\" is not an image reference", image.escape_debug()),
                    )
                    .hint("e.g. --image registry.example.com/tools/warehouse:1.4"),
                );
            }
            image.to_string()
        }
        None => {
            warnings.push(format!(
                "no --image: the container's image is the placeholder \"{PLACEHOLDER_IMAGE}\"; \
                 the command {} must exist in the image you name",
                quote_program(&job.command)
            ));
            PLACEHOLDER_IMAGE.to_string()
        }
    };

    let line = match (&job.schedules[..], job.timer.on_boot) {
        ([], Some(on_boot)) => {
            refusals.push(
                Refusal::new(
                    "the job",
                    format!(
                        "it runs only at boot (on_boot = \"{on_boot}\"), and a cluster has no \
                         boot to run at"
                    ),
                )
                .hint("give it a calendar schedule, or keep it on the host"),
            );
            None
        }
        (schedules, _) => match schedule::cron_line(schedules, job.timezone.as_deref()) {
            Ok(line) => Some(line),
            Err(found) => {
                refusals.extend(found);
                None
            }
        },
    };
    if !refusals.is_empty() {
        return Err(refusals);
    }
    let Some(line) = line else {
        return Err(refusals);
    };
    for subject in &line.at_boot {
        warnings.push(format!(
            "{subject}: not carried over: a cluster has no boot to run at"
        ));
    }

    // The zone: the job's (or its expressions'), else the host's, whose
    // clock the job runs on.
    let (time_zone, zone) = match &line.zone {
        Some(zone) => {
            if !names::is_time_zone(zone) {
                return Err(vec![
                    Refusal::new(
                        "timezone",
                        format!("Kubernetes does not accept the time zone name \"{zone}\""),
                    )
                    .hint("use the zone's canonical IANA name, e.g. Europe/London"),
                ]);
            }
            (Some(zone.clone()), options.zones.zone(zone))
        }
        None => match options.host_zone_name.filter(|n| names::is_time_zone(n)) {
            Some(host) => {
                warnings.push(format!(
                    "the job sets no timezone, so it runs on this host's clock: timeZone is \
                     this host's zone, {host}"
                ));
                (Some(host.to_string()), Some(options.host_zone.clone()))
            }
            None => {
                warnings.push(
                    "the job sets no timezone and this host's zone has no name: the CronJob \
                     runs in kube-controller-manager's zone (often UTC); set the job's \
                     timezone"
                        .to_string(),
                );
                (None, None)
            }
        },
    };
    if let Some(zone) = &zone {
        let year_later = options
            .now
            .checked_add(jiff::SignedDuration::from_hours(24 * 366))
            .unwrap_or(options.now);
        let repeated = schedule::repeated_runs(&line.fields, zone, options.now, year_later);
        if let Some(first) = repeated.first() {
            let times: Vec<String> = first
                .again
                .iter()
                .map(|z| z.strftime("%H:%M").to_string())
                .collect();
            warnings.push(format!(
                "on {} the clock in {} goes back and shows {} twice: Kubernetes starts this \
                 CronJob both times, the systemd timer once{}",
                first.change.strftime("%Y-%m-%d"),
                time_zone.as_deref().unwrap_or("this zone"),
                times.join(", "),
                if repeated.len() > 1 {
                    format!(" ({} such changes in the next year)", repeated.len())
                } else {
                    String::new()
                }
            ));
        }
    }

    warnings.extend(not_carried(job));

    // Labels on the CronJob, its Jobs and their Pods; annotations on the
    // CronJob.
    let mut labels = vec![("jobctl/job".to_string(), Node::str(&name))];
    let mut annotations = Vec::new();
    if let Some(description) = &job.description {
        annotations.push(("jobctl/description".to_string(), Node::str(description)));
    }
    let schedules: Vec<String> = job
        .schedules
        .iter()
        .map(|s| s.describe_in(job.timezone.as_deref()))
        .collect();
    annotations.push((
        "jobctl/schedule".to_string(),
        Node::str(schedules.join("; ")),
    ));
    for (key, value) in [("owner", &job.owner), ("team", &job.team)] {
        let Some(value) = value else { continue };
        if names::is_label_value(value) {
            labels.push((format!("jobctl/{key}"), Node::str(value)));
        } else {
            warnings.push(format!(
                "{key} \"{value}\" is not a label value (at most 63 letters, digits, '-', '_' \
                 and '.'): it is the annotation jobctl/{key} instead of a label"
            ));
            annotations.push((format!("jobctl/{key}"), Node::str(value)));
        }
    }
    for tag in &job.tags {
        if names::is_label_name(tag) {
            labels.push((format!("tag.jobctl/{tag}"), Node::str("true")));
        } else {
            warnings.push(format!(
                "the tag \"{tag}\" is not a label name (at most 63 letters, digits, '-', '_' \
                 and '.'): it is only in the annotation jobctl/tags"
            ));
        }
    }
    if !job.tags.is_empty() {
        annotations.push(("jobctl/tags".to_string(), Node::str(job.tags.join(","))));
    }
    for (key, value) in &job.metadata {
        let annotation = format!("metadata.{key}");
        if names::is_label_name(&annotation) {
            annotations.push((format!("jobctl/{annotation}"), Node::str(value)));
        } else {
            warnings.push(format!(
                "metadata.{key}: not carried over: \"jobctl/{annotation}\" is not an annotation \
                 name (at most 63 letters, digits, '-', '_' and '.' after the '/')"
            ));
        }
    }
    let labels = Node::Map(labels);

    // The container.
    let mut container = vec![
        ("name".to_string(), Node::str(name.replace('.', "-"))),
        ("image".to_string(), Node::str(image)),
        (
            "command".to_string(),
            Node::List(
                job.command
                    .argv()
                    .iter()
                    .map(|a| Node::str(literal(a)))
                    .collect(),
            ),
        ),
    ];
    if let Some(dir) = &job.working_directory {
        container.push(("workingDir".to_string(), Node::str(dir)));
    }
    if !job.environment.is_empty() {
        container.push((
            "env".to_string(),
            Node::List(
                job.environment
                    .iter()
                    .map(|(k, v)| {
                        Node::map([("name", Node::str(k)), ("value", Node::str(literal(v)))])
                    })
                    .collect(),
            ),
        ));
    }
    let mut limits = Vec::new();
    if let Some(cpu) = job.service.cpu_quota.as_deref().and_then(cpu_quantity) {
        limits.push(("cpu", Node::str(cpu)));
    }
    if let Some(memory) = job.service.memory_max.as_deref().and_then(memory_quantity) {
        limits.push(("memory", Node::str(memory)));
    }
    if !limits.is_empty() {
        container.push((
            "resources".to_string(),
            Node::map([("limits", Node::map(limits))]),
        ));
    }
    if job.service.no_new_privileges == Some(true) {
        container.push((
            "securityContext".to_string(),
            Node::map([("allowPrivilegeEscalation", Node::Bool(false))]),
        ));
    }

    let mut job_spec = vec![(
        "backoffLimit",
        Node::Int(
            job.retry
                .as_ref()
                .map_or(0, |r| i64::from(r.attempts.saturating_sub(1))),
        ),
    )];
    if let Some(deadline) = deadline_seconds(job) {
        job_spec.push(("activeDeadlineSeconds", Node::Int(deadline)));
    }
    job_spec.push((
        "template",
        Node::map([
            ("metadata", Node::map([("labels", labels.clone())])),
            (
                "spec",
                Node::map([
                    ("restartPolicy", Node::str("Never")),
                    ("containers", Node::List(vec![Node::Map(container)])),
                ]),
            ),
        ]),
    ));

    let mut metadata = vec![("name", Node::str(&name))];
    if let Some(namespace) = options.namespace {
        metadata.push(("namespace", Node::str(namespace)));
    }
    metadata.push(("labels", labels.clone()));
    metadata.push(("annotations", Node::Map(annotations)));

    let mut spec = vec![("schedule", Node::str(&line.line))];
    if let Some(zone) = &time_zone {
        spec.push(("timeZone", Node::str(zone)));
    }
    spec.push(("concurrencyPolicy", Node::str("Forbid")));
    spec.push(("suspend", Node::Bool(!job.enabled)));
    spec.push((
        "jobTemplate",
        Node::map([
            ("metadata", Node::map([("labels", labels)])),
            ("spec", Node::map(job_spec)),
        ]),
    ));

    let manifest = Node::map([
        ("apiVersion", Node::str("batch/v1")),
        ("kind", Node::str("CronJob")),
        ("metadata", Node::map(metadata)),
        ("spec", Node::map(spec)),
    ]);
    Ok(CronJob {
        name,
        schedule: line.line,
        time_zone,
        manifest,
        warnings,
    })
}

/// A string as Kubernetes must be given it so that the container gets it
/// unchanged: `$(NAME)` references are expanded in commands and
/// environment values, and `$$` stands for `$`.
pub fn literal(value: &str) -> String {
    value.replace('$', "$$")
}

/// The program, for messages.
fn quote_program(command: &Command) -> String {
    match command {
        Command::Argv { argv } => format!("\"{}\"", argv.first().map_or("", String::as_str)),
        Command::Shell { .. } => "/bin/sh (and what the script runs)".to_string(),
    }
}

/// `timeout` in whole seconds, rounded up; `None` for `infinity`.
fn deadline_seconds(job: &Job) -> Option<i64> {
    if job.timeout.is_infinite() {
        return None;
    }
    let seconds = job.timeout.as_usec().div_ceil(1_000_000).max(1);
    Some(i64::try_from(seconds).unwrap_or(i64::MAX))
}

/// `cpu_quota` (`"150%"` of one CPU) as a CPU quantity (`"1500m"`, `"2"`).
pub fn cpu_quantity(quota: &str) -> Option<String> {
    let percent: u64 = quota.strip_suffix('%')?.parse().ok()?;
    if percent == 0 {
        return None;
    }
    Some(if percent.is_multiple_of(100) {
        (percent / 100).to_string()
    } else {
        format!("{}m", percent * 10)
    })
}

/// `memory_max` as a memory quantity with a binary suffix (`"1Gi"`,
/// `"1536Mi"`, bytes when no suffix divides it); `None` for `infinity` and
/// percentages (which are warned about).
pub fn memory_quantity(max: &str) -> Option<String> {
    if max == "infinity" || max.ends_with('%') {
        return None;
    }
    let bytes = ByteSize::parse(max).ok()?.bytes();
    if bytes == 0 {
        return None;
    }
    for (suffix, exponent) in [
        ("Ei", 6),
        ("Pi", 5),
        ("Ti", 4),
        ("Gi", 3),
        ("Mi", 2),
        ("Ki", 1),
    ] {
        let unit = 1024u64.pow(exponent);
        if bytes.is_multiple_of(unit) {
            return Some(format!("{}{suffix}", bytes / unit));
        }
    }
    Some(bytes.to_string())
}

/// A warning for each key whose meaning the CronJob does not keep.
fn not_carried(job: &Job) -> Vec<String> {
    let mut out = Vec::new();
    let mut say = |key: String, why: &str| out.push(format!("{key}: not carried over: {why}"));
    if let Some(user) = &job.user {
        say(
            format!("user = \"{user}\""),
            "the container runs as its image's user; set securityContext.runAsUser",
        );
    }
    if let Some(group) = &job.group {
        say(
            format!("group = \"{group}\""),
            "the container runs with its image's group; set securityContext.runAsGroup",
        );
    }
    if job.dynamic_user {
        say(
            "dynamic_user = true".into(),
            "set securityContext.runAsNonRoot and runAsUser",
        );
    }
    if !job.environment_files.is_empty() {
        say(
            format!("environment_file ({})", job.environment_files.join(", ")),
            "put the variables in a ConfigMap or Secret and add envFrom",
        );
    }
    if job.stdin.is_some() {
        say(
            "stdin".into(),
            "a CronJob's container gets no standard input",
        );
    }
    if job.timer.persistent {
        say(
            "persistent = true".into(),
            "the CronJob controller starts one missed run after its own downtime, whatever \
             this key says (startingDeadlineSeconds limits how late)",
        );
    }
    if let Some(delay) = job.timer.randomized_delay {
        say(
            format!("randomized_delay = \"{delay}\""),
            "runs start at the scheduled minute",
        );
    }
    if let Some(accuracy) = job.timer.accuracy {
        say(
            format!("accuracy = \"{accuracy}\""),
            "the controller starts Jobs within seconds of the minute",
        );
    }
    if let Some(on_boot) = job.timer.on_boot {
        say(
            format!("on_boot = \"{on_boot}\""),
            "a cluster has no boot to run after",
        );
    }
    if let Some(nice) = job.service.nice {
        say(
            format!("nice = {nice}"),
            "a container's CPU share comes from its resource requests",
        );
    }
    if let Some(weight) = job.service.io_weight {
        say(
            format!("io_weight = {weight}"),
            "Kubernetes has no I/O weight",
        );
    }
    if let Some(private_tmp) = job.service.private_tmp {
        say(
            format!("private_tmp = {private_tmp}"),
            "a container's /tmp is its own already",
        );
    }
    if let Some(protect) = &job.service.protect_system {
        say(
            format!("protect_system = \"{protect}\""),
            "consider securityContext.readOnlyRootFilesystem",
        );
    }
    if job.service.no_new_privileges == Some(false) {
        say(
            "no_new_privileges = false".into(),
            "Kubernetes' default (allowPrivilegeEscalation unset) applies",
        );
    }
    if let Some(max) = job
        .service
        .memory_max
        .as_deref()
        .filter(|m| m.ends_with('%'))
    {
        say(
            format!("memory_max = \"{max}\""),
            "a Kubernetes memory limit is an amount, e.g. 2Gi",
        );
    }
    if !job.after.is_empty() || !job.wants.is_empty() {
        let units: Vec<&str> = job
            .after
            .iter()
            .chain(&job.wants)
            .map(String::as_str)
            .collect();
        say(
            format!("after/wants ({})", dedup(units).join(", ")),
            "a CronJob has no unit ordering; a Pod starts when the cluster schedules it",
        );
    }
    if !job.on_success.is_empty() {
        let targets: Vec<String> = job
            .on_success
            .iter()
            .map(|c| c.target.to_string())
            .collect();
        say(
            format!("on_success ({})", targets.join(", ")),
            "a CronJob starts nothing when its Job succeeds; run the next step in the same Pod or with a workflow engine",
        );
    }
    if !job.on_failure.is_empty() {
        let targets: Vec<String> = job
            .on_failure
            .iter()
            .map(|c| c.target.to_string())
            .collect();
        say(
            format!("on_failure ({})", targets.join(", ")),
            "alert on failed Jobs with the cluster's monitoring",
        );
    }
    let extra: Vec<String> = [
        ("unit_extra", &job.extra.unit),
        ("service_extra", &job.extra.service),
        ("timer_extra", &job.extra.timer),
    ]
    .iter()
    .flat_map(|(table, entries)| entries.iter().map(move |(k, _)| format!("{table}.{k}")))
    .collect();
    if !extra.is_empty() {
        say(
            dedup(extra.iter().map(String::as_str).collect()).join(", "),
            "systemd directives have no CronJob equivalent",
        );
    }
    if let Some(date) = job.not_after {
        say(
            format!("not_after = {date}"),
            "delete the CronJob after that day",
        );
    }
    if let Some(retry) = job.retry.as_ref().filter(|r| r.attempts > 1) {
        say(
            format!(
                "retry's waits (delay = \"{}\", backoff = {})",
                retry.delay, retry.backoff
            ),
            "the attempts are backoffLimit, but Kubernetes waits 10s, 20s, 40s … (at most \
             6min) before each new Pod",
        );
    }
    if let Some(limit) = job.output_limit {
        say(
            format!("output_limit = \"{limit}\""),
            "the output goes to the container's log, kept by the cluster's log rotation",
        );
    }
    if job.merge_output {
        say(
            "merge_output = true".into(),
            "the container's log keeps its two streams as Kubernetes does",
        );
    }
    out
}

fn dedup(items: Vec<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpu_quantity("200%").as_deref(), Some("2"));
        assert_eq!(cpu_quantity("150%").as_deref(), Some("1500m"));
        assert_eq!(cpu_quantity("5%").as_deref(), Some("50m"));
        assert_eq!(cpu_quantity("1%").as_deref(), Some("10m"));
        assert_eq!(cpu_quantity("0%"), None);
        assert_eq!(cpu_quantity("x"), None);
        assert_eq!(memory_quantity("1G").as_deref(), Some("1Gi"));
        assert_eq!(memory_quantity("1536M").as_deref(), Some("1536Mi"));
        assert_eq!(memory_quantity("2G").as_deref(), Some("2Gi"));
        assert_eq!(memory_quantity("1000").as_deref(), Some("1000"));
        assert_eq!(memory_quantity("4096").as_deref(), Some("4Ki"));
        assert_eq!(memory_quantity("infinity"), None);
        assert_eq!(memory_quantity("80%"), None);
    }

    #[test]
    fn dollars_reach_the_container_unchanged() {
        assert_eq!(
            literal("$HOME ${USER} $$ $(X)"),
            "$$HOME $${USER} $$$$ $$(X)"
        );
        assert_eq!(literal("100%"), "100%");
    }
}
