//! Chaining: `on_success`/`on_failure` name other jobs of the same folder
//! (or units), rendered as `OnSuccess=`/`OnFailure=` to their services.
//!
//! Each entry is decoded with where it is written ([`Place`]), because the
//! checks that need the whole folder come after every file is loaded
//! ([`chain_problems`]: a job that is not there, a chain that loops back).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::diag::{Diagnostic, Severity};
use crate::naming::{self, JobName, UnitNames};

use super::Job;

/// What an `on_success`/`on_failure` entry starts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum ChainTarget {
    /// Another job of the folder: its service.
    Job(JobName),
    /// A unit, named with its type suffix (specifiers allowed), as before
    /// jobs could be named.
    Unit(String),
}

impl ChainTarget {
    /// An entry as written: a unit name when it ends in a unit type
    /// (`.service`, `.target`, …), else a job name.
    pub fn parse(text: &str) -> Result<ChainTarget, String> {
        if naming::has_unit_type(text) {
            return naming::check_unit_name(text).map(|()| ChainTarget::Unit(text.to_string()));
        }
        JobName::new(text).map(ChainTarget::Job).map_err(|e| {
            format!("{e}; an entry is a job of this folder, or a unit with its type suffix")
        })
    }

    /// The unit systemd starts: a job's service under `prefix`, or the unit.
    pub fn unit(&self, prefix: &str) -> String {
        match self {
            ChainTarget::Job(job) => UnitNames::new(prefix, job).service,
            ChainTarget::Unit(unit) => unit.clone(),
        }
    }

    pub fn job(&self) -> Option<&JobName> {
        match self {
            ChainTarget::Job(job) => Some(job),
            ChainTarget::Unit(_) => None,
        }
    }
}

impl std::fmt::Display for ChainTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainTarget::Job(job) => f.write_str(job.as_str()),
            ChainTarget::Unit(unit) => f.write_str(unit),
        }
    }
}

/// Where something is written: a file (the job file, or the configuration
/// for a `[defaults]` entry), line and column, and the key.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
}

impl Place {
    fn diagnostic(&self, severity: Severity, message: String, hint: Option<String>) -> Diagnostic {
        Diagnostic {
            severity,
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            key: Some(self.key.clone()),
            message,
            hint,
        }
    }
}

/// One entry of `on_success`/`on_failure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Chained {
    pub target: ChainTarget,
    /// Where the entry is written.
    #[serde(skip)]
    pub at: Place,
}

/// The checks of `on_success`/`on_failure` that need the whole folder, for
/// `validate` and `apply`: `jobs` are the valid jobs checked, `others` the
/// rest of the folder's valid jobs (only their links count, for loops and
/// upstreams: files not named to `validate FILE…`), `known` the names of
/// every job file found (valid or not: a link to a job whose file has an
/// error of its own is not reported again).
///
/// - a job name that is no job of the folder: an error, with the closest
///   name as a hint;
/// - a loop (a job that starts, through any mix of the two keys, a job that
///   leads back to it, itself included): an error in each job of the loop,
///   at its link into it, naming the loop whole (the shortest from there) —
///   systemd would run the jobs over and over;
/// - a job named in both `on_success` and `on_failure` of one job: a
///   warning (systemd then does not tell the started service which unit
///   started it, so its runs are recorded with trigger `manual` and no
///   upstream run).
///
/// Each problem once, even when it comes from `[defaults]` (shared by many
/// jobs).
pub fn chain_problems(jobs: &[Job], others: &[Job], known: &BTreeSet<String>) -> ChainProblems {
    let mut invalid: BTreeSet<String> = BTreeSet::new();
    let mut out: Vec<Diagnostic> = Vec::new();
    let mut add = |d: Diagnostic| {
        if !out.contains(&d) {
            out.push(d);
        }
    };
    // Unknown jobs.
    for job in jobs {
        for (key, link) in links(job) {
            let Some(target) = link.target.job() else {
                continue;
            };
            if known.contains(target.as_str()) {
                continue;
            }
            let suggestion = known
                .iter()
                .map(|name| (strsim::jaro_winkler(name, target.as_str()), name))
                .filter(|(score, _)| *score >= 0.85)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, name)| name);
            invalid.insert(job.name.to_string());
            let hint = match suggestion {
                Some(name) => format!("did you mean \"{name}\"?"),
                None => format!(
                    "add {target}.toml to the jobs folder, or name a unit with its type \
                     (\"{target}.service\")"
                ),
            };
            add(link.at.diagnostic(
                Severity::Error,
                format!("{key} names job \"{target}\", which is not a job of this folder"),
                Some(hint),
            ));
        }
    }
    // Loops.
    let graph: BTreeMap<&str, Vec<(&str, &'static str, &Chained)>> = jobs
        .iter()
        .chain(others)
        .map(|job| {
            let edges = links(job)
                .filter_map(|(key, link)| Some((link.target.job()?.as_str(), key, link)))
                .collect();
            (job.name.as_str(), edges)
        })
        .collect();
    for start in jobs.iter().map(|j| j.name.as_str()) {
        // Each job of a loop is told, at its own link into it.
        if let Some(cycle) = shortest_cycle(&graph, start) {
            invalid.insert(start.to_string());
            let (_, key, first) = cycle[0];
            let mut path = start.to_string();
            for (_, key, link) in &cycle {
                path.push_str(&format!(" →({key}) {}", link.target));
            }
            let message = if cycle.len() == 1 {
                format!("{key} names the job itself: {path}")
            } else {
                format!("{key} makes a loop: {path}")
            };
            add(first.at.diagnostic(
                Severity::Error,
                message,
                Some(
                    "systemd would start these jobs over and over; remove a link of the loop \
                     (to run a job again after a failure, use `retry`)"
                        .into(),
                ),
            ));
        }
    }
    // The same target under both keys of one job (its unit then depends on
    // it twice): systemd 252 passes the started service no $MONITOR_* at
    // all, as tried on it (tests/systemd_e2e/knowing.rs).
    for job in jobs {
        for link in &job.on_failure {
            let Some(target) = link.target.job() else {
                continue;
            };
            if !job.on_success.iter().any(|s| s.target == link.target) {
                continue;
            }
            add(link.at.diagnostic(
                Severity::Warning,
                format!(
                    "job \"{target}\" is in both on_success and on_failure: systemd then does \
                     not tell it which run started it, so its runs are recorded with trigger \
                     `manual` and no upstream run"
                ),
                Some(format!(
                    "if the upstream run matters, let on_success and on_failure each start a job \
                     of its own (both may run what {target} runs)"
                )),
            ));
        }
    }
    out.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    ChainProblems {
        diagnostics: out,
        invalid,
    }
}

/// What [`chain_problems`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainProblems {
    pub diagnostics: Vec<Diagnostic>,
    /// The jobs that cannot be installed as they are: a link to a job that
    /// is not there, or a loop through them.
    pub invalid: BTreeSet<String>,
}

/// A job's links, each with its key.
fn links(job: &Job) -> impl Iterator<Item = (&'static str, &Chained)> {
    job.on_success
        .iter()
        .map(|l| ("on_success", l))
        .chain(job.on_failure.iter().map(|l| ("on_failure", l)))
}

type Edge<'a> = (&'a str, &'static str, &'a Chained);

/// The shortest path of links from `start` back to `start` (breadth first,
/// so the loop reported is the one people see first), as its edges.
fn shortest_cycle<'a>(
    graph: &BTreeMap<&'a str, Vec<(&'a str, &'static str, &'a Chained)>>,
    start: &'a str,
) -> Option<Vec<Edge<'a>>> {
    let mut came_from: BTreeMap<&str, Edge<'a>> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &(to, key, link) in graph.get(node).map(Vec::as_slice).unwrap_or_default() {
            if to == start {
                let mut path = vec![(node, key, link)];
                let mut at = node;
                while at != start {
                    let edge = came_from[at];
                    path.push(edge);
                    at = edge.0;
                }
                path.reverse();
                return Some(path);
            }
            if !came_from.contains_key(to) && graph.contains_key(to) {
                came_from.insert(to, (node, key, link));
                queue.push_back(to);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::context::{Mode, UtcOnly};
    use crate::directives::{SystemdTarget, VersionSource};
    use crate::job::{JobSource, LoadContext, load_job};

    fn ctx(config: &Config, systemd: Option<u32>) -> LoadContext<'_> {
        LoadContext {
            mode: Mode::System,
            config,
            zones: &UtcOnly,
            now: None,
            systemd: systemd.map(|version| SystemdTarget {
                version,
                source: VersionSource::Flag,
            }),
            root_files: None,
        }
    }

    /// Loads `(name, text)` job files as `jobs.d/NAME.toml`.
    fn load_all(files: &[(&str, &str)], config: &Config) -> (Vec<Job>, Vec<Diagnostic>) {
        let mut jobs = Vec::new();
        let mut diags = Vec::new();
        for (name, text) in files {
            let path = format!("jobs.d/{name}.toml");
            let loaded = load_job(
                JobSource {
                    path: &path,
                    stem: name,
                    text,
                },
                &ctx(config, None),
            );
            diags.extend(loaded.diagnostics);
            jobs.extend(loaded.job);
        }
        (jobs, diags)
    }

    fn problems(files: &[(&str, &str)]) -> Vec<String> {
        let config = Config::default();
        let (jobs, diags) = load_all(files, &config);
        assert_eq!(diags, [], "the files themselves are valid");
        let known = files.iter().map(|(n, _)| n.to_string()).collect();
        chain_problems(&jobs, &[], &known)
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    const CMD: &str = "command = [\"/bin/true\"]\nmanual = true\n";

    #[test]
    fn entries_are_jobs_or_units() {
        assert_eq!(
            ChainTarget::parse("cleanup"),
            Ok(ChainTarget::Job(JobName::new("cleanup").unwrap()))
        );
        assert_eq!(
            ChainTarget::parse("notify@%n.service"),
            Ok(ChainTarget::Unit("notify@%n.service".into()))
        );
        // A job name may hold dots; only a unit type at the end makes a unit.
        assert_eq!(
            ChainTarget::parse("report.v2"),
            Ok(ChainTarget::Job(JobName::new("report.v2").unwrap()))
        );
        assert!(ChainTarget::parse("bad name").is_err());
        assert!(ChainTarget::parse("bad$.service").is_err());
        assert!(ChainTarget::parse("").is_err());
        assert_eq!(
            ChainTarget::parse("publish").unwrap().unit("jobctl-"),
            "jobctl-publish.service"
        );
        assert_eq!(
            ChainTarget::parse("x.target").unwrap().unit("jobctl-"),
            "x.target"
        );
    }

    #[test]
    fn a_bad_entry_is_an_error_at_its_place() {
        let config = Config::default();
        let (_, diags) = load_all(
            &[(
                "a",
                "command = [\"/bin/true\"]\nmanual = true\non_failure = [\"ok\", \"not a job\"]\n",
            )],
            &config,
        );
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(
            (diags[0].line, diags[0].column, diags[0].key.as_deref()),
            (3, 21, Some("on_failure[1]"))
        );
    }

    #[test]
    fn jobs_that_are_not_there_are_refused_with_a_suggestion() {
        let found = problems(&[
            (
                "build",
                &format!(
                    "{CMD}on_success = [\"publish-reprot\", \"x.service\"]\non_failure = [\"gone\"]\n"
                ),
            ),
            ("publish-report", CMD),
        ]);
        assert_eq!(
            found,
            [
                "error: jobs.d/build.toml:3:15: `on_success[0]`: on_success names job \"publish-reprot\", which is not a job of this folder\n  hint: did you mean \"publish-report\"?",
                "error: jobs.d/build.toml:4:15: `on_failure[0]`: on_failure names job \"gone\", which is not a job of this folder\n  hint: add gone.toml to the jobs folder, or name a unit with its type (\"gone.service\")",
            ]
        );
        // A job whose file exists but is invalid is known: its own error
        // says what is wrong.
        let config = Config::default();
        let (jobs, _) = load_all(&[("a", &format!("{CMD}on_failure = [\"b\"]\n"))], &config);
        let known = ["a".to_string(), "b".to_string()].into();
        assert_eq!(chain_problems(&jobs, &[], &known), ChainProblems::default());
    }

    #[test]
    fn loops_are_refused_in_each_of_their_jobs() {
        let found = problems(&[
            ("a", &format!("{CMD}on_failure = [\"b\"]\n")),
            ("b", &format!("{CMD}on_success = [\"c\"]\n")),
            ("c", &format!("{CMD}on_failure = [\"a\"]\n")),
            ("self", &format!("{CMD}on_failure = [\"self\"]\n")),
            ("fine", &format!("{CMD}on_success = [\"a\"]\n")),
        ]);
        assert_eq!(
            found,
            [
                "error: jobs.d/a.toml:3:15: `on_failure[0]`: on_failure makes a loop: a →(on_failure) b →(on_success) c →(on_failure) a\n  hint: systemd would start these jobs over and over; remove a link of the loop (to run a job again after a failure, use `retry`)",
                "error: jobs.d/b.toml:3:15: `on_success[0]`: on_success makes a loop: b →(on_success) c →(on_failure) a →(on_failure) b\n  hint: systemd would start these jobs over and over; remove a link of the loop (to run a job again after a failure, use `retry`)",
                "error: jobs.d/c.toml:3:15: `on_failure[0]`: on_failure makes a loop: c →(on_failure) a →(on_failure) b →(on_success) c\n  hint: systemd would start these jobs over and over; remove a link of the loop (to run a job again after a failure, use `retry`)",
                "error: jobs.d/self.toml:3:15: `on_failure[0]`: on_failure names the job itself: self →(on_failure) self\n  hint: systemd would start these jobs over and over; remove a link of the loop (to run a job again after a failure, use `retry`)",
            ]
        );
        // A diamond is no loop.
        let found = problems(&[
            ("top", &format!("{CMD}on_success = [\"left\", \"right\"]\n")),
            ("left", &format!("{CMD}on_success = [\"bottom\"]\n")),
            ("right", &format!("{CMD}on_failure = [\"bottom2\"]\n")),
            ("bottom", CMD),
            ("bottom2", CMD),
        ]);
        assert_eq!(found, Vec::<String>::new());
    }

    #[test]
    fn a_loop_through_files_not_checked_is_found_from_the_checked_one() {
        let config = Config::default();
        let (checked, _) = load_all(&[("a", &format!("{CMD}on_failure = [\"b\"]\n"))], &config);
        let (others, _) = load_all(&[("b", &format!("{CMD}on_failure = [\"a\"]\n"))], &config);
        let known = ["a".to_string(), "b".to_string()].into();
        let found = chain_problems(&checked, &others, &known);
        assert_eq!(found.diagnostics.len(), 1, "{found:?}");
        assert_eq!(found.diagnostics[0].file, "jobs.d/a.toml");
        assert_eq!(found.invalid, ["a".to_string()].into());
    }

    #[test]
    fn a_job_in_both_keys_of_one_job_is_a_warning() {
        let found = problems(&[
            ("a", &format!("{CMD}on_failure = [\"cleanup\"]\n")),
            (
                "b",
                &format!(
                    "{CMD}on_success = [\"cleanup\", \"x.service\"]\non_failure = [\"cleanup\", \"x.service\"]\n"
                ),
            ),
            ("cleanup", CMD),
        ]);
        // Several jobs naming one is fine: systemd tells it which one ended
        // (unless they end at the same moment, docs/job-file.md).
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with(
                "warning: jobs.d/b.toml:4:15: `on_failure[0]`: job \"cleanup\" is in both on_success and on_failure"
            ),
            "{}",
            found[0]
        );
    }

    #[test]
    fn defaults_are_reported_once_in_the_configuration() {
        let config_text = "[defaults]\non_failure = [\"cleanup\"]\n";
        let (config, diags) =
            crate::config::load_config("config.toml", config_text, Mode::System, &UtcOnly);
        assert_eq!(diags, []);
        let (jobs, diags) = load_all(
            &[
                ("a", CMD),
                ("b", CMD),
                ("cleanup", &format!("{CMD}on_failure = []\n")),
            ],
            &config,
        );
        assert_eq!(diags, []);
        let known: BTreeSet<String> = ["a", "b", "cleanup"].map(String::from).into();
        let found: Vec<String> = chain_problems(&jobs, &[], &known)
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect();
        // Two jobs name cleanup through the one default: nothing to say.
        assert_eq!(found, Vec::<String>::new());
        // Without cleanup's own `on_failure = []`, it would start itself.
        let (jobs, _) = load_all(&[("cleanup", CMD)], &config);
        let found = chain_problems(&jobs, &[], &known).diagnostics;
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("names the job itself"),
            "{found:?}"
        );
        // A default naming a job that is not there: one error, in the
        // configuration, for every job; each of them invalid.
        let config_text = "[defaults]\non_failure = [\"gone\"]\n";
        let (config, _) =
            crate::config::load_config("config.toml", config_text, Mode::System, &UtcOnly);
        let (jobs, _) = load_all(&[("a", CMD), ("b", CMD)], &config);
        let found = chain_problems(&jobs, &[], &known);
        assert_eq!(found.diagnostics.len(), 1, "{found:#?}");
        assert!(
            found.diagnostics[0].to_string().starts_with(
                "error: config.toml:2:15: `defaults.on_failure[0]`: on_failure names job \"gone\""
            ),
            "{found:?}"
        );
        assert_eq!(found.invalid, ["a".to_string(), "b".to_string()].into());
    }

    #[test]
    fn on_success_needs_systemd_249() {
        let config = Config::default();
        let text = format!("{CMD}on_success = [\"b\"]\non_failure = [\"c\"]\n");
        let load = |version| {
            load_job(
                JobSource {
                    path: "jobs.d/a.toml",
                    stem: "a",
                    text: &text,
                },
                &ctx(&config, version),
            )
        };
        let refused = load(Some(248));
        assert!(refused.job.is_none());
        assert_eq!(
            refused
                .diagnostics
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>(),
            [
                "error: jobs.d/a.toml:3:14: `on_success`: OnSuccess= needs systemd 249; the target is systemd 248 (--systemd-version)\n  hint: remove on_success, or install the job on a newer systemd (on_failure works on every version)"
            ]
        );
        assert!(load(Some(249)).job.is_some());
        assert!(load(None).job.is_some());
        // on_failure alone is fine anywhere.
        let text = format!("{CMD}on_failure = [\"c\"]\n");
        let loaded = load_job(
            JobSource {
                path: "jobs.d/a.toml",
                stem: "a",
                text: &text,
            },
            &ctx(&config, Some(230)),
        );
        assert!(loaded.job.is_some(), "{:?}", loaded.diagnostics);
    }
}
