//! A token's job/tag filter applied to what the server answers
//! (docs/dashboard.md, "Tokens for some jobs"). Which jobs pass is decided by
//! `jobctl_core::web::filter`; this module finds each job's tags (from the
//! `list` document) and narrows the documents.
//!
//! The readings themselves are the unfiltered ones, shared by every caller
//! (`readings`): the filter is applied afterwards, to the parsed document,
//! so no filtered answer can reach another caller and no caller's answer
//! depends on who else asked. What a filtered caller cannot see is the same
//! to it as what does not exist: one job, its runs or output, an action on
//! it are 404 `{"error": "no such job"}` whether the job is hidden or
//! unknown (a 403 would say that it exists).

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use jobctl::exit::Exit;
use jobctl_core::health::ProblemKind;
use jobctl_core::web::filter::{Target, allow_job};
use jobctl_core::web::{Caller, JobFilter, Refusal, Scope};
use serde_json::Value;

use crate::api::{capture, json_error, refused};
use crate::auth::State;

/// The header on every answer narrowed by a filter: the document holds only
/// the jobs this caller may see (its counts are of those jobs).
pub const FILTERED: &str = "jobctl-filtered";

/// The jobs a filtered caller may see, from the shared `list --json`
/// reading, with that document's `host`.
pub struct Visible {
    pub names: BTreeSet<String>,
    pub host: Value,
}

/// The names and tags of every job, as `list --json` (one shared reading,
/// the same as an unfiltered `/api/v1/jobs`).
async fn listed(s: &State) -> Result<(Value, Vec<(String, Vec<String>)>), Response> {
    let (exit, body) = capture(s, vec!["list".into(), "--json".into()]).await;
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !matches!(exit, Exit::Success | Exit::Partial) || doc["jobs"].as_array().is_none() {
        return Err(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the list of jobs could not be read",
        ));
    }
    let jobs = doc["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| {
            let name = row["job"].as_str()?.to_string();
            let tags = row["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect();
            Some((name, tags))
        })
        .collect();
    Ok((doc["host"].clone(), jobs))
}

/// The jobs `filter` lets through.
pub async fn visible(s: &State, filter: &JobFilter) -> Result<Visible, Response> {
    let (host, jobs) = listed(s).await?;
    let names = jobs
        .into_iter()
        .filter(|(name, tags)| filter.admits(name, tags))
        .map(|(name, _)| name)
        .collect();
    Ok(Visible { names, host })
}

/// Whether `caller` may do what `scope` covers to `job`: the answer to
/// give when not (404 for a job its filter hides or that does not exist).
/// Callers without a filter pass at once (their scope is checked before).
pub async fn gate(s: &State, caller: &Caller, scope: Scope, job: &str) -> Result<(), Response> {
    decide(s, caller, scope, job).await?.map_err(refused)
}

/// [`gate`]'s decision, for the pages to answer in HTML; `Err` when the
/// jobs could not be read.
pub async fn decide(
    s: &State,
    caller: &Caller,
    scope: Scope,
    job: &str,
) -> Result<Result<(), Refusal>, Response> {
    if caller.filter().is_none() {
        return Ok(Ok(()));
    }
    // An action is decided on the tags as they are now, not as a shared
    // reading up to `max_age` old has them (a job just tagged out of a
    // token's reach must not run for it).
    let (_, jobs) = if scope == Scope::Read {
        listed(s).await?
    } else {
        crate::readings::exact(listed(s)).await?
    };
    let target = match jobs.iter().find(|(name, _)| name == job) {
        Some((name, tags)) => Target::Job { name, tags },
        None => Target::Unknown,
    };
    Ok(allow_job(
        caller, scope, target, &s.web, &s.groups, s.own_uid,
    ))
}

/// Marks an answer as narrowed.
pub fn mark(res: &mut Response) {
    res.headers_mut()
        .insert(FILTERED, HeaderValue::from_static("jobs"));
}

/// `list --json` (or `status --json`) with only the visible jobs.
pub fn narrow_jobs(doc: &mut Value, visible: &BTreeSet<String>) {
    if let Some(rows) = doc.get_mut("jobs").and_then(Value::as_array_mut) {
        rows.retain(|row| row["job"].as_str().is_some_and(|j| visible.contains(j)));
    }
}

/// `health --json` with only the visible jobs, its counts and summary
/// recounted for them (as `jobctl health JOB…` counts): `jobs_checked`,
/// `problems`, `counts`, `healthy`, `summary`. Problems of no job
/// (`global`: the configuration, a database) stay.
pub fn narrow_health(doc: &mut Value, visible: &BTreeSet<String>) {
    narrow_jobs(doc, visible);
    let jobs = doc["jobs"].as_array().cloned().unwrap_or_default();
    let global = doc["global"].as_array().cloned().unwrap_or_default();
    let mut counts: BTreeMap<ProblemKind, usize> = BTreeMap::new();
    let problems = jobs
        .iter()
        .flat_map(|j| j["problems"].as_array().cloned().unwrap_or_default())
        .chain(global.iter().cloned());
    for p in problems {
        if let Some(kind) = p["kind"].as_str().and_then(ProblemKind::parse) {
            *counts.entry(kind).or_default() += 1;
        }
    }
    let total: usize = counts.values().sum();
    let unhealthy = jobs
        .iter()
        .filter(|j| j["healthy"].as_bool() != Some(true))
        .count();
    doc["jobs_checked"] = jobs.len().into();
    doc["problems"] = total.into();
    doc["healthy"] = (total == 0).into();
    doc["summary"] =
        jobctl::view::health::summary_line(jobs.len(), unhealthy, &counts, global.len()).into();
    doc["counts"] = counts
        .iter()
        .map(|(k, n)| (k.as_str().to_string(), Value::from(*n)))
        .collect::<serde_json::Map<_, _>>()
        .into();
}

/// The Prometheus exposition with only the series of visible jobs. A series
/// without a `job` label sums over every job's (`jobctl_notifications_total`):
/// it is left out, and a comment says so.
pub fn narrow_metrics(text: &str, visible: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut dropped = BTreeSet::new();
    for line in text.lines() {
        let keep = if line.starts_with('#') || line.trim().is_empty() {
            true
        } else {
            match label(line, "job") {
                Some(job) => visible.contains(&job),
                None => {
                    let name = line.split(['{', ' ']).next().unwrap_or_default();
                    dropped.insert(name.to_string());
                    false
                }
            }
        };
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    for name in dropped {
        out.push_str(&format!(
            "# jobctl-web: {name} left out: it counts every job's, and this token sees only some jobs\n"
        ));
    }
    out
}

/// The value of label `name` in a sample line (`metric{a="x",job="y"} 1`),
/// unescaped; `None` when the line has no such label or does not parse.
fn label(line: &str, name: &str) -> Option<String> {
    let open = line.find('{')?;
    if line[..open].contains(' ') {
        return None;
    }
    let mut rest = &line[open + 1..];
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.starts_with('}') {
            return None;
        }
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = &after[end + 1..];
    }
}

/// Documents of several readings (one per visible job) as one: the
/// elements of `key` of each, ordered by `order` (newest first), at most
/// `limit`; `schema` and `host` from the first, or as given when there is
/// none. The exit status is the worst of theirs.
pub fn merge(
    docs: Vec<(Exit, Value)>,
    key: &str,
    limit: usize,
    empty: Value,
    order: fn(&Value, &Value) -> std::cmp::Ordering,
) -> (Exit, Value) {
    let mut exit = Exit::Success;
    let mut all = Vec::new();
    let mut first = None;
    for (e, mut doc) in docs {
        if e != Exit::Success {
            exit = e;
        }
        if let Some(items) = doc.get_mut(key).and_then(Value::as_array_mut) {
            all.append(items);
        }
        first.get_or_insert(doc);
    }
    all.sort_by(order);
    all.truncate(limit);
    let mut doc = first.unwrap_or(empty);
    doc[key] = Value::Array(all);
    (exit, doc)
}

/// Runs newest first, as `history` orders them: start, then id.
pub fn run_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    let key = |r: &Value| {
        (
            r["started_us"].as_i64(),
            r["id"].as_str().map(str::to_string),
        )
    };
    key(b).cmp(&key(a))
}

/// Notifications newest first, as `notifications` orders them (its
/// `created` times are RFC 3339 in UTC with microseconds: they sort as
/// text); the sort is stable, so one job's own order is kept.
pub fn notification_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    b["created"].as_str().cmp(&a["created"].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(n: &[&str]) -> BTreeSet<String> {
        n.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn health_is_recounted_for_the_visible_jobs() {
        let problem = |kind: &str| json!({"kind": kind, "message": "m"});
        let mut doc = json!({
            "schema": "jobctl.health/v1", "host": "h", "healthy": false,
            "summary": "PROBLEMS - 3 in 2 of 3 jobs: failed 2, overdue 1",
            "jobs_checked": 3, "problems": 3, "counts": {"failed": 2, "overdue": 1},
            "global": [],
            "jobs": [
                {"job": "a", "healthy": false, "problems": [problem("failed")]},
                {"job": "b", "healthy": false, "problems": [problem("failed"), problem("overdue")]},
                {"job": "c", "healthy": true, "problems": []},
            ],
        });
        let mut all = doc.clone();
        narrow_health(&mut all, &names(&["a", "b", "c"]));
        assert_eq!(all, doc, "narrowed to every job, the report is unchanged");
        narrow_health(&mut doc, &names(&["a", "c"]));
        assert_eq!(doc["jobs_checked"], 2);
        assert_eq!(doc["problems"], 1);
        assert_eq!(doc["counts"], json!({"failed": 1}));
        assert_eq!(doc["summary"], "PROBLEMS - 1 in 1 of 2 jobs: failed 1");
        assert_eq!(doc["jobs"].as_array().unwrap().len(), 2);
        narrow_health(&mut doc, &names(&["c"]));
        assert_eq!(doc["healthy"], true);
        assert_eq!(doc["summary"], "OK - 1 job, no problems");
        assert_eq!(doc["counts"], json!({}));
    }

    #[test]
    fn metrics_keep_only_visible_jobs_and_say_what_is_left_out() {
        let text = "# HELP jobctl_job_enabled x\n# TYPE jobctl_job_enabled gauge\n\
            jobctl_job_enabled{job=\"a\",user=\"root\"} 1\n\
            jobctl_job_enabled{job=\"b\",user=\"root\",tags=\"job=\\\"a\\\"\"} 1\n\
            jobctl_job_runs_total{user=\"root\",job=\"a\",status=\"success\"} 3\n\
            jobctl_notifications_total{channel=\"ops\",result=\"sent\"} 2\n";
        let out = narrow_metrics(text, &names(&["a"]));
        assert!(out.contains("jobctl_job_enabled{job=\"a\""), "{out}");
        assert!(
            !out.contains("job=\"b\""),
            "a label value that looks like job=\"a\" is not the job: {out}"
        );
        assert!(
            out.contains("jobctl_job_runs_total{user=\"root\",job=\"a\""),
            "{out}"
        );
        assert!(!out.contains("jobctl_notifications_total{"), "{out}");
        assert!(
            out.contains("# jobctl-web: jobctl_notifications_total left out"),
            "{out}"
        );
        assert!(out.contains("# TYPE jobctl_job_enabled gauge"), "{out}");
        assert_eq!(
            label("m{job=\"x\\\\y\\\"z\\n\"} 1", "job").unwrap(),
            "x\\y\"z\n"
        );
        assert_eq!(label("m 1", "job"), None);
        assert_eq!(label("m{job=\"unterminated} 1", "job"), None);
    }

    #[test]
    fn merged_runs_are_newest_first_and_limited() {
        let run = |id: &str, us: i64| json!({"id": id, "started_us": us});
        let docs = vec![
            (
                Exit::Success,
                json!({"schema": "jobctl.history/v1", "host": "h", "runs": [run("a3", 30), run("a1", 10)]}),
            ),
            (
                Exit::Partial,
                json!({"schema": "jobctl.history/v1", "host": "h", "runs": [run("b2", 20), run("b0", 5)]}),
            ),
        ];
        let (exit, doc) = merge(docs, "runs", 3, Value::Null, run_order);
        assert_eq!(exit, Exit::Partial);
        let ids: Vec<&str> = doc["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a3", "b2", "a1"]);
        assert_eq!(doc["schema"], "jobctl.history/v1");
        let empty = json!({"schema": "jobctl.history/v1", "host": "h", "runs": []});
        let (exit, doc) = merge(Vec::new(), "runs", 3, empty.clone(), run_order);
        assert_eq!((exit, doc), (Exit::Success, empty));
    }

    #[test]
    fn only_visible_rows_are_listed() {
        let mut doc = json!({"schema": "jobctl.list/v1", "jobs": [{"job": "a"}, {"job": "b"}]});
        narrow_jobs(&mut doc, &names(&["b"]));
        assert_eq!(doc["jobs"], json!([{"job": "b"}]));
    }
}
