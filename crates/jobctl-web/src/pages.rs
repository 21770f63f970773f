//! The pages: server-rendered HTML (maud: every value is escaped unless
//! marked otherwise, and nothing here marks a value), one small stylesheet
//! and one script file (`/page.js`, crate::live; the pages work without it),
//! built from the same `--json` documents the API serves. What a
//! user recorded (output, error text) also has its control characters made
//! visible (`jobctl::output::escape`), as on root's terminal.

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jobctl::exit::Exit;
use jobctl::output::{Lines, escape};
use jobctl_core::web::filter::JobFilter;
use jobctl_core::web::{Caller, Scope};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{LabelQuery, Shared, capture};
use crate::auth::Peer;
use crate::extract::{Form, NoParams, Path, Query};
use crate::when::when;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/", get(jobs))
        .route("/jobs/{job}", get(job))
        .route("/jobs/{job}/runs/{id}", get(run))
        .route("/jobs/{job}/run", post(run_now))
        .route("/health", get(health))
        .route("/login", get(login_form).post(login))
        .route("/style.css", get(style))
}

const STYLE: &str = include_str!("style.css");

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/css"))],
        STYLE,
    )
        .into_response()
}

/// Text a user may have written: control characters visible, on one line.
fn shown(text: &str) -> String {
    escape(text, Lines::Escape).into_owned()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn page(title: &str, body: Markup) -> Response {
    page_with(title, html! {}, body)
}

/// A page with more in its head (`head`): the run page's refresh.
fn page_with(title: &str, head: Markup, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · jobctl" }
                link rel="stylesheet" href="/style.css";
                // The one script (crates/jobctl-web/src/page.js): the pages
                // work without it.
                script src="/page.js" defer {}
                (head)
            }
            body {
                nav { a href="/" { "Jobs" } " " a href="/health" { "Health" } }
                main { (body) }
            }
        }
    };
    axum::response::Html(markup.into_string()).into_response()
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let mut res = page("Error", html! { h1 { "Error" } p.error { (message) } });
    *res.status_mut() = status;
    res
}

/// The caller may read, or the answer (401 offers the token form).
fn reader(s: &Shared, p: &Peer, h: &HeaderMap) -> Result<(Caller, bool), Response> {
    let (caller, ambient) = s.caller_with_cookie(p, h).map_err(refusal_page)?;
    s.allow(&caller, Scope::Read)
        .map_err(|r| explained_page(s, r, h, &caller, Scope::Read))?;
    Ok((caller, ambient))
}

/// A refusal of what `caller` asked, saying what it lacks and how to get
/// it (as the API's answer does), else as [`refusal_page`].
fn explained_page(
    s: &Shared,
    r: jobctl_core::web::Refusal,
    h: &HeaderMap,
    caller: &Caller,
    scope: Scope,
) -> Response {
    use jobctl_core::web::Refusal;
    match (
        r,
        crate::api::refusal_message(s, r, h, Some((caller, scope))),
    ) {
        (Refusal::Forbidden | Refusal::ActionsOff, Some(message)) => {
            error_page(StatusCode::FORBIDDEN, &format!("Not allowed: {message}."))
        }
        _ => refusal_page(r),
    }
}

fn refusal_page(r: jobctl_core::web::Refusal) -> Response {
    use jobctl_core::web::Refusal;
    match r {
        Refusal::Unauthenticated => Redirect::to("/login").into_response(),
        // A job a token's filter hides looks like one that does not exist.
        Refusal::Hidden => error_page(StatusCode::NOT_FOUND, "No such job."),
        Refusal::BadProxyHeader => error_page(
            StatusCode::BAD_REQUEST,
            "The proxy's user header is not one user name (sent once, 1 to 128 letters, digits and . _ @ + -).",
        ),
        _ => error_page(StatusCode::FORBIDDEN, "Not allowed for this caller."),
    }
}

/// The caller may do what `scope` covers to `job` (a token's job filter),
/// or the page to answer.
async fn job_gate(s: &Shared, caller: &Caller, scope: Scope, job: &str) -> Result<(), Response> {
    crate::visible::decide(s, caller, scope, job)
        .await?
        .map_err(refusal_page)
}

async fn doc(s: &Shared, args: Vec<String>) -> Result<(Exit, Value), Response> {
    let (exit, body) = capture(s, args).await;
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if matches!(exit, Exit::Success | Exit::Partial) || value.get("jobs_checked").is_some() {
        Ok((exit, value))
    } else {
        let message = str_of(&value, "error").to_string();
        let status = if message.starts_with("unknown job ") || message.contains(": no run with id ")
        {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        Err(error_page(status, &shown(&message)))
    }
}

fn status_class(status: &str) -> &'static str {
    match status {
        "success" => "ok",
        "running" => "running",
        "" => "none",
        _ => "bad",
    }
}

fn last_result(row: &Value) -> Markup {
    let last = &row["last_run"];
    let status = str_of(last, "status");
    html! {
        @if last.is_null() { span.none { "never ran" } }
        @else {
            span class=(status_class(status)) { (status) }
            @if let Some(code) = last.get("exit_code").and_then(Value::as_i64) { @if code != 0 { " " (code) } }
        }
    }
}

/// A run's CPU time (user and system, docs/json.md "object: usage"), ms.
fn cpu_ms(usage: &Value) -> Option<i64> {
    Some((usage["cpu_user_us"].as_i64()? + usage["cpu_system_us"].as_i64()?) / 1000)
}

fn duration(ms: Option<i64>) -> String {
    match ms {
        None => String::new(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{}min {:02}s", ms / 60_000, (ms / 1000) % 60),
    }
}

/// The jobs page's filters, what its form sends; any other parameter is
/// refused, as the API refuses one.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    owner: Option<String>,
    team: Option<String>,
    tag: Option<String>,
    /// Only jobs whose last run has this status.
    status: Option<String>,
}

/// A rendered page: status, headers, body.
pub type Rendered = (StatusCode, HeaderMap, axum::body::Bytes);

async fn jobs(
    State(s): State<Shared>,
    ConnectInfo(p): ConnectInfo<Peer>,
    h: HeaderMap,
    Query(q): Query<JobsQuery>,
) -> Response {
    let (caller, _) = match reader(&s, &p, &h) {
        Ok(c) => c,
        Err(r) => return r,
    };
    // The page depends on the query and on the caller's job filter, never
    // on anything else about the caller: both are the key of the shared
    // rendering, so a filtered token never gets a page made for another.
    let filter = caller.filter().cloned();
    let key = vec![
        q.owner.clone().unwrap_or_default(),
        q.team.clone().unwrap_or_default(),
        q.tag.clone().unwrap_or_default(),
        q.status.clone().unwrap_or_default(),
        filter
            .as_ref()
            .map(|f| serde_json::to_string(f).unwrap_or_else(|_| format!("{f:?}")))
            .unwrap_or_default(),
    ];
    // The jobs page is the same for every reader with the same filters:
    // one rendering of one `list` reading answers them all while it is
    // young enough (`readings`), instead of each request parsing the `list`
    // document (600 KB for 1,000 jobs) and writing a row per job
    // (docs/dashboard.md, "Under load").
    let shared = s.clone();
    let (status, headers, body) = s
        .pages
        .get(key, move || async move {
            let (parts, body) = jobs_page(&shared, q, filter.as_ref()).await.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            (parts.status, parts.headers, body)
        })
        .await;
    let mut res = Response::new(axum::body::Body::from(body));
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

/// The jobs page for these filters (and the caller's job filter), from one
/// `list` reading.
async fn jobs_page(s: &Shared, q: JobsQuery, filter: Option<&JobFilter>) -> Response {
    // A status no job can have would show "0 jobs" as if none matched: say
    // what the filter takes instead.
    if let Some(wanted) = q.status.as_deref().filter(|x| !x.is_empty()) {
        let known: Vec<&str> = jobctl_history::Status::ALL
            .iter()
            .map(|st| st.as_str())
            .chain(
                jobctl_core::state::JobState::ALL
                    .iter()
                    .map(|st| st.as_str()),
            )
            .collect();
        if !known.contains(&wanted) {
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!(
                    "There is no status \"{}\": a run's status ({}) or a job's state ({}).",
                    escape(wanted, Lines::Escape),
                    known[..jobctl_history::Status::ALL.len()].join(", "),
                    known[jobctl_history::Status::ALL.len()..].join(", "),
                ),
            );
        }
    }
    let labels = LabelQuery {
        owner: q.owner.clone(),
        team: q.team.clone(),
        tag: q.tag.clone(),
    };
    let mut args = vec!["list".into(), "--json".into()];
    args.extend(labels.args());
    let rows = match doc(s, args).await {
        // jobctl.list/v1 (docs/json.md): the rows are under `jobs`.
        Ok((_, v)) => v["jobs"].as_array().cloned().unwrap_or_default(),
        Err(r) => return r,
    };
    let wanted = q.status.clone().filter(|x| !x.is_empty());
    let rows: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            wanted
                .as_deref()
                .is_none_or(|w| str_of(&r["last_run"], "status") == w || str_of(r, "state") == w)
        })
        .filter(|r| {
            filter.is_none_or(|f| {
                let tags: Vec<String> = r["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
                f.admits(str_of(r, "job"), &tags)
            })
        })
        .collect();
    page(
        "Jobs",
        html! {
            h1 { "Jobs" }
            form.filters method="get" action="/" {
                label { "Team " input name="team" value=(q.team.clone().unwrap_or_default()); }
                label { "Owner " input name="owner" value=(q.owner.clone().unwrap_or_default()); }
                label { "Tag " input name="tag" value=(q.tag.clone().unwrap_or_default()); }
                label { "Status " select name="status" {
                    @for st in ["", "success", "failed", "error", "timeout", "killed", "lost", "running", "active", "manual", "disabled"] {
                        option value=(st) selected[wanted.as_deref() == Some(st)] { (if st.is_empty() { "any" } else { st }) }
                    }
                } }
                button type="submit" { "Filter" }
            }
            p { (rows.len()) @if rows.len() == 1 { " job" } @else { " jobs" }
                @if filter.is_some() { " (only the jobs this token may see)" } }
            div.scroll { table {
                thead { tr { th { "Job" } th { "State" } th { "Schedule" } th { "Next run" } th { "Last result" } th { "Duration" } th { "Fails" } th { "Owner / team / tags" } } }
                tbody {
                    @for row in &rows {
                        @let name = str_of(row, "job");
                        tr {
                            td { a href={ "/jobs/" (urlencode(name)) } { (shown(name)) } }
                            td { (str_of(row, "state")) @if row["running"].as_bool() == Some(true) { " (running)" } }
                            td { (shown(str_of(row, "schedule"))) }
                            td { (when(str_of(row, "next_run"))) }
                            td { (last_result(row)) }
                            td { (duration(row["last_run"]["duration_ms"].as_i64())) }
                            td class=(if row["failure_streak"].as_u64().unwrap_or(0) > 0 { "bad" } else { "" }) { (row["failure_streak"].as_u64().unwrap_or(0)) }
                            td { (shown(str_of(row, "owner"))) " " (shown(str_of(row, "team"))) " "
                                @for tag in row["tags"].as_array().into_iter().flatten() { span.tag { (shown(tag.as_str().unwrap_or(""))) } " " } }
                        }
                    }
                }
            } }
        },
    )
}

/// A path segment: everything but unreserved characters percent-encoded.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn job(
    State(s): State<Shared>,
    ConnectInfo(p): ConnectInfo<Peer>,
    h: HeaderMap,
    Path(name): Path<String>,
    _: Query<NoParams>,
) -> Response {
    let (caller, ambient) = match reader(&s, &p, &h) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = job_gate(&s, &caller, Scope::Read, &name).await {
        return r;
    }
    let status = match doc(
        &s,
        vec!["status".into(), "--json".into(), "--".into(), name.clone()],
    )
    .await
    {
        // jobctl.status/v1 for one job: its row is the one under `jobs`.
        Ok((_, v)) => v["jobs"][0].clone(),
        Err(r) => return r,
    };
    let runs = match doc(
        &s,
        vec![
            "history".into(),
            "--json".into(),
            format!("--job={name}"),
            "--limit=50".into(),
        ],
    )
    .await
    {
        Ok((_, v)) => v["runs"].as_array().cloned().unwrap_or_default(),
        Err(r) => return r,
    };
    let definition = crate::jobpage::read(&s, &name).await;
    let may_run = s.allow(&caller, Scope::Run).is_ok();
    let csrf = s.csrf_token(&caller);
    let _ = ambient;
    page(
        &shown(&name),
        html! {
            h1 { (shown(&name)) }
            dl {
                dt { "State" } dd { (str_of(&status, "state")) @if status["running"].as_bool() == Some(true) { " (running)" } }
                dt { "Schedule" } dd { (shown(str_of(&status, "schedule"))) }
                dt { "Next run" } dd { (when(str_of(&status, "next_run"))) }
                dt { "Last result" } dd { (last_result(&status)) }
                dt { "Failures in a row" } dd { (status["failure_streak"].as_u64().unwrap_or(0)) }
                dt { "Last success" } dd { (when(str_of(&status, "last_success"))) }
                dt { "Owner / team" } dd { (shown(str_of(&status, "owner"))) " " (shown(str_of(&status, "team"))) }
                dt { "Units" } dd { (str_of(&status, "service")) " " (str_of(&status, "timer")) }
                dt { "Job file" } dd { (shown(str_of(&status, "source"))) }
                @if let Some(zone) = &definition.zone { dt { "Time zone" } dd { (shown(zone)) " (the job's " code { "timezone" } ")" } }
            }
            @let problems = status["problems"].as_array().cloned().unwrap_or_default();
            @if !problems.is_empty() {
                h2 { "Problems" }
                ul { @for pr in &problems { li.bad { (str_of(pr, "kind")) ": " (shown(str_of(pr, "message"))) } } }
            }
            @if may_run {
                form method="post" action={ "/jobs/" (urlencode(&name)) "/run" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Run now" }
                }
            }
            (crate::jobpage::render_next(&definition))
            h2 { "Runs" }
            div.scroll { table {
                thead { tr { th { "Run" } th { "Started" } th { "Status" } th { "Duration" } th { "Trigger" } th { "CPU" } th { "Peak memory" } } }
                tbody {
                    @for run in &runs {
                        @let id = str_of(run, "id");
                        @let st = str_of(run, "status");
                        tr {
                            td { a href={ "/jobs/" (urlencode(&name)) "/runs/" (urlencode(id)) } { (id) } }
                            td { (when(str_of(run, "started"))) }
                            td class=(status_class(st)) { (st) @if let Some(c) = run["exit_code"].as_i64() { @if c != 0 { " " (c) } } }
                            td { (duration(run["duration_us"].as_i64().map(|us| us / 1000))) }
                            td { (str_of(run, "trigger")) @if let Some(a) = run["actor"].as_str() { " (" (shown(a)) ")" } }
                            td { (cpu_ms(&run["usage"]).map(|ms| duration(Some(ms))).unwrap_or_default()) }
                            td { (run["usage"]["memory_peak_bytes"].as_u64().map(|b| format!("{:.1} MiB", b as f64 / 1048576.0)).unwrap_or_default()) }
                        }
                    }
                }
            } }
            (crate::jobpage::render_definition(&definition))
        },
    )
}

async fn run(
    State(s): State<Shared>,
    ConnectInfo(p): ConnectInfo<Peer>,
    h: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    _: Query<NoParams>,
) -> Response {
    let (caller, _) = match reader(&s, &p, &h) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = job_gate(&s, &caller, Scope::Read, &name).await {
        return r;
    }
    let logs = match doc(
        &s,
        vec![
            "logs".into(),
            "--json".into(),
            format!("--run={id}"),
            "--".into(),
            name.clone(),
        ],
    )
    .await
    {
        Ok((_, v)) => v,
        Err(r) => return r,
    };
    let run = &logs["run"];
    // A running run: without JavaScript the page refreshes itself; with it,
    // page.js follows the run's new lines (crate::live).
    let running = str_of(run, "status") == "running";
    let events = running.then(|| {
        format!(
            "/api/v1/jobs/{}/runs/{}/output/events",
            urlencode(&name),
            urlencode(str_of(run, "id"))
        )
    });
    let head = html! {
        @if running { noscript { meta http-equiv="refresh" content="5"; } }
    };
    page_with(
        &format!("{} run {}", shown(&name), shown(&id)),
        head,
        html! {
            h1 { a href={ "/jobs/" (urlencode(&name)) } { (shown(&name)) } " · run " (shown(str_of(run, "id"))) }
            dl {
                dt { "Status" } dd #status class=(status_class(str_of(run, "status"))) { (str_of(run, "status"))
                    @if let Some(c) = run["exit_code"].as_i64() { " (exit status " (c) ")" } }
                dt { "Started" } dd { (when(str_of(run, "started"))) }
                dt { "Ended" } dd { (when(str_of(run, "ended"))) }
                dt { "Trigger" } dd { (str_of(run, "trigger")) @if let Some(a) = run["actor"].as_str() { " by " (shown(a)) } }
                dt { "As user" } dd { (shown(str_of(run, "user"))) }
                @if !str_of(run, "error").is_empty() { dt { "Error" } dd.bad { (shown(str_of(run, "error"))) } }
                // The CLI's hint (`logs` makes it as `status` does).
                @if let Some(hint) = logs["journal_hint"].as_str() {
                    dt { "Journal" } dd { code { (shown(hint)) } }
                }
            }
            h2 { "Output" }
            @if running {
                p #live { "This run is still running; its output is stored when it ends. "
                    "This page refreshes every 5 s: " a href="" { "Refresh" } }
            }
            pre.output data-events=[events] {
                @for seg in logs["output"].as_array().into_iter().flatten() {
                    @if let Some(n) = seg.get("omitted_bytes").and_then(Value::as_u64) {
                        span.omitted { "… " (n) " bytes omitted …\n" }
                    } @else {
                        @let stream = str_of(seg, "stream");
                        @let mark = match stream { "stdout" => "out|", "stderr" => "err|", _ => "o+e|" };
                        @for line in escape(str_of(seg, "text"), Lines::Keep).split_inclusive('\n') {
                            span class=(stream) { span.mark { (mark) } (line) }
                        }
                    }
                }
            }
            @if logs["output_not_stored"].as_bool() == Some(true) { p { "The output of this run was not stored." } }
            @if logs["output_removed"].as_bool() == Some(true) { p { "The output of this run was removed by retention." } }
        },
    )
}

async fn health(
    State(s): State<Shared>,
    ConnectInfo(p): ConnectInfo<Peer>,
    h: HeaderMap,
    _: Query<NoParams>,
) -> Response {
    let (caller, _) = match reader(&s, &p, &h) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut report = match doc(&s, vec!["health".into(), "--json".into()]).await {
        Ok((_, v)) => v,
        Err(r) => return r,
    };
    let filtered = caller.filter().is_some();
    if let Some(filter) = caller.filter() {
        match crate::visible::visible(&s, filter).await {
            Ok(v) => crate::visible::narrow_health(&mut report, &v.names),
            Err(r) => return r,
        }
    }
    let healthy = report["healthy"].as_bool() == Some(true);
    page(
        "Health",
        html! {
            h1 { "Health" }
            p class=(if healthy { "ok" } else { "bad" }) { (shown(str_of(&report, "summary"))) }
            @if filtered { p { "Only the jobs this token may see are counted." } }
            @for g in report["global"].as_array().into_iter().flatten() {
                p.bad { (str_of(g, "kind")) ": " (shown(str_of(g, "message"))) }
            }
            div.scroll { table {
                thead { tr { th { "Job" } th { "State" } th { "Problems" } } }
                tbody {
                    @for j in report["jobs"].as_array().into_iter().flatten() {
                        @if j["healthy"].as_bool() != Some(true) {
                            @let name = str_of(j, "job");
                            tr {
                                td { a href={ "/jobs/" (urlencode(name)) } { (shown(name)) } }
                                td { (str_of(j, "state")) }
                                td { ul { @for pr in j["problems"].as_array().into_iter().flatten() { li { (str_of(pr, "kind")) ": " (shown(str_of(pr, "message"))) } } } }
                            }
                        }
                    }
                }
            } }
        },
    )
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    /// Missing is wrong: the documented 403, not a form error.
    #[serde(default)]
    csrf: String,
}

/// The "Run now" button: the run scope and the form's CSRF token, then
/// `jobctl run`, then back to the job's page.
async fn run_now(
    State(s): State<Shared>,
    ConnectInfo(p): ConnectInfo<Peer>,
    h: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (caller, _) = match s.caller_with_cookie(&p, &h) {
        Ok(c) => c,
        Err(r) => return refusal_page(r),
    };
    if let Err(r) = s.allow(&caller, Scope::Run) {
        return explained_page(&s, r, &h, &caller, Scope::Run);
    }
    if let Err(r) = job_gate(&s, &caller, Scope::Run, &name).await {
        return r;
    }
    // A form is always checked: the browser sends cookies by itself.
    if !s.csrf_matches(&caller, &form.csrf) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Missing or wrong CSRF token; reload the job's page.",
        );
    }
    let args = vec!["run".into(), "--json".into(), "--".into(), name.clone()];
    let what = args.join(" ");
    let (exit, body) = crate::api::capture_as(&s, args, caller.clone()).await;
    jobctl::output::note(&escape(
        &format!(
            "{}: jobctl {what} (exit status {})",
            caller.describe(),
            exit.code()
        ),
        Lines::Escape,
    ));
    if exit != Exit::Success {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return error_page(StatusCode::CONFLICT, &shown(str_of(&v, "error")));
    }
    // To the run's page (its live tail) once the shim has recorded it; the
    // job's page if that takes longer.
    let recorded = match crate::api::started_invocation(&body) {
        Some(invocation) => crate::api::recorded_run(&s, &name, &invocation).await,
        None => None,
    };
    match recorded {
        Some(id) => Redirect::to(&format!(
            "/jobs/{}/runs/{}",
            urlencode(&name),
            urlencode(&id)
        ))
        .into_response(),
        None => Redirect::to(&format!("/jobs/{}", urlencode(&name))).into_response(),
    }
}

async fn login_form(_: Query<NoParams>) -> Response {
    sign_in(None)
}

/// The sign-in form, after a refused token with why.
fn sign_in(refused: Option<&str>) -> Response {
    page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some(why) = refused { p.error { (why) } }
            p { "Paste a token made with " code { "jobctl token create" } "." }
            form method="post" action="/login" {
                input type="password" name="token" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

/// Checks the token and keeps it in a cookie only this origin's requests
/// carry (`SameSite=Strict`, `HttpOnly`).
async fn login(State(s): State<Shared>, Form(form): Form<LoginForm>) -> Response {
    let Some(caller) = s.token_caller_of(form.token.trim()) else {
        let mut res = sign_in(Some(
            "This token is not known here: mistyped, or revoked. \
             `jobctl token list` on the server names the tokens.",
        ));
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        return res;
    };
    // Every page (and the CSRF token of every form) needs `read`: a token
    // without it would be signed in to nothing but refusals.
    if let Err(r) = s.allow(&caller, Scope::Read) {
        let hint =
            crate::api::refusal_message(&s, r, &HeaderMap::new(), Some((&caller, Scope::Read)))
                .map(|m| {
                    format!("Not signed in: every page needs the `read` scope; {m} --name NAME.")
                })
                .unwrap_or_else(|| "Not signed in: every page needs the `read` scope.".into());
        let mut res = sign_in(Some(&hint));
        *res.status_mut() = StatusCode::FORBIDDEN;
        return res;
    }
    let mut res = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "jobctl_token={}; Path=/; HttpOnly; SameSite=Strict",
        form.token.trim()
    )) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}
