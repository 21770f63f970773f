//! The routes: the JSON API (`/api/v1/…`, each answer the document the CLI
//! prints with `--json`, captured from the same code), the pages, and the
//! security headers on everything.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jobctl::exit::Exit;
use jobctl_core::web::{Caller, Refusal, Scope};
use serde::Deserialize;

use crate::auth::{self, Peer};
use crate::extract::{Limit, LineCount, Path, Query};

pub type Shared = Arc<auth::State>;

/// Every route.
pub fn router(state: Shared) -> Router {
    let routes = Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/jobs/{job}", get(job))
        .route("/api/v1/jobs/{job}/runs", get(job_runs))
        .route("/api/v1/jobs/{job}/runs/{id}", get(run))
        .route("/api/v1/jobs/{job}/runs/{id}/output", get(run_output))
        .route("/api/v1/runs", get(runs))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/csrf", get(csrf))
        .route("/api/v1/jobs/{job}/run", post(run_now))
        .route("/api/v1/jobs/{job}/enable", post(enable))
        .route("/api/v1/jobs/{job}/disable", post(disable))
        .route("/metrics", get(metrics))
        .merge(crate::pages::router())
        .merge(crate::live::router())
        .merge(crate::runs::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), freshness))
        .with_state(state);
    // Around the whole router, so that they see its final answers (axum
    // adds a 405's `Allow` header outside the routes' own layers).
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(method_not_allowed))
        .layer(middleware::from_fn(security_headers))
}

/// Every request accepts readings up to `[web] max_age` old, or younger if
/// its `Cache-Control` asks (`readings`); an answer made from readings says
/// when the oldest of them started: `Jobctl-Read-At` (RFC 3339, UTC, ms) and
/// `Age` (whole seconds since, RFC 9111).
async fn freshness(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let asked = req
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok());
    let max_age = crate::readings::requested_age(asked, s.web.max_age());
    let (mut res, used) = crate::readings::within(max_age, next.run(req)).await;
    if let Some(p) = used {
        let h = res.headers_mut();
        h.insert(header::AGE, HeaderValue::from(p.age().as_secs()));
        if let Ok(at) = jiff::Timestamp::try_from(p.wall)
            && let Ok(v) = HeaderValue::from_str(&format!("{at:.3}"))
        {
            h.insert("jobctl-read-at", v);
        }
    }
    res
}

/// On every answer: a Content-Security-Policy that allows nothing but this
/// origin's own stylesheet, forms, script file (`/page.js`, no inline
/// script) and event streams, no framing, no sniffing, no referrer, no
/// caching of what may be secret.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A refusal as JSON: 401 (with `WWW-Authenticate`) or 403.
pub fn refused(refusal: Refusal) -> Response {
    let (status, message) = match refusal {
        Refusal::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "authentication required: a bearer token (jobctl token create) on TCP",
        ),
        Refusal::Forbidden => (StatusCode::FORBIDDEN, "not allowed for this caller"),
        Refusal::ActionsOff => (
            StatusCode::FORBIDDEN,
            "actions are off; set actions = true in [web] of the configuration",
        ),
        // The same answer for a job a token's filter hides and for one that
        // does not exist (crate::visible).
        Refusal::Hidden => (StatusCode::NOT_FOUND, "no such job"),
        Refusal::UntrustedProxy => (
            StatusCode::FORBIDDEN,
            "a user header from a peer that is not a trusted proxy ([web.trusted_proxy] from)",
        ),
        Refusal::BadProxyHeader => (
            StatusCode::BAD_REQUEST,
            "the trusted proxy's user header is not one user name (sent once, 1 to 128 letters, digits and . _ @ + -)",
        ),
    };
    let mut res = json_error(status, message);
    if refusal == Refusal::Unauthenticated {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

/// A refusal as [`refused`], its message saying what the caller lacks and
/// how to get it: an unknown token (401, `error="invalid_token"`), the
/// scope a token or a proxy's user does not have, the groups of `[web]`, or
/// the configuration file that turns actions on. `asked` is the caller and
/// the scope it asked for, once it is known.
pub fn explained(
    state: &auth::State,
    refusal: Refusal,
    headers: &HeaderMap,
    asked: Option<(&Caller, Scope)>,
) -> Response {
    let Some(message) = refusal_message(state, refusal, headers, asked) else {
        return refused(refusal);
    };
    let mut res = json_error(status_of_refusal(refusal), &message);
    if refusal == Refusal::Unauthenticated {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    res
}

/// The message of [`explained`] (also on the pages), `None` where the
/// plain refusal says all there is.
pub fn refusal_message(
    state: &auth::State,
    refusal: Refusal,
    headers: &HeaderMap,
    asked: Option<(&Caller, Scope)>,
) -> Option<String> {
    let config = state.config_file.display();
    let message = match (refusal, asked) {
        (Refusal::Unauthenticated, _) => match headers.get(header::AUTHORIZATION) {
            Some(v) if v.as_bytes().starts_with(b"Bearer ") => {
                "this bearer token is not known here: mistyped, or revoked \
                 (`jobctl token list` on the server names the tokens; \
                 `jobctl token create` makes one)"
                    .to_string()
            }
            Some(_) => "the Authorization header is not `Bearer TOKEN`: send a token \
                        made with `jobctl token create`"
                .to_string(),
            None if auth::cookie(headers, "jobctl_token").is_some() => {
                "the sign-in cookie's token is not known here (revoked?): sign in again at /login"
                    .to_string()
            }
            None => return None,
        },
        (Refusal::ActionsOff, _) => {
            format!("actions are off; set actions = true in [web] of {config}")
        }
        (Refusal::Forbidden, Some((caller, scope))) => {
            let scope = scope.as_str();
            match caller {
                Caller::Token { name, scopes, .. } => format!(
                    "token {name} does not have the `{scope}` scope (it has {}); \
                     create one that has: jobctl token create --scope {}",
                    scopes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    // Its own scopes, the missing one and read (every
                    // action's page and CSRF token needs it), in order.
                    Scope::ALL
                        .iter()
                        .filter(|s| {
                            **s == Scope::Read || s.as_str() == scope || scopes.contains(s)
                        })
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                Caller::Proxy { user, .. } => format!(
                    "proxy user {user} does not have the `{scope}` scope: \
                     give it in [web.trusted_proxy] (users or scopes) of {config}"
                ),
                Caller::Unix { uid, .. } if state.own_uid != 0 => format!(
                    "uid {uid} may not use this socket: it serves uid {} only",
                    state.own_uid
                ),
                // No group written: only root may, and the way in is a group.
                Caller::Unix { uid, .. }
                    if scope == "read"
                        && state.web.read_group.is_none()
                        && state.web.action_group.is_none() =>
                {
                    format!(
                        "uid {uid} may not read: only root may, as neither read_group nor \
                         action_group is written in [web] of {config}; write read_group \
                         (its members may read) or action_group (read and act) there and \
                         restart jobctl-web.service"
                    )
                }
                Caller::Unix { uid, .. } if scope != "read" && state.web.action_group.is_none() => {
                    format!(
                        "uid {uid} may not {scope}: only root may, as action_group is not \
                         written in [web] of {config}; write action_group there (its \
                         members may read and act) and restart jobctl-web.service"
                    )
                }
                Caller::Unix { uid, .. } if scope == "read" => format!(
                    "uid {uid} may not read: only root and the members of read_group \
                     or action_group in [web] of {config} may"
                ),
                Caller::Unix { uid, .. } => format!(
                    "uid {uid} may not {scope}: only root and the members of \
                     action_group in [web] of {config} may"
                ),
                Caller::Anonymous => return None,
            }
        }
        _ => return None,
    };
    Some(message)
}

fn status_of_refusal(refusal: Refusal) -> StatusCode {
    refused(refusal).status()
}

pub fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message });
    (status, axum::Json(body)).into_response()
}

/// The caller, allowed `scope`, or the refusal's answer.
pub fn authorize(
    state: &auth::State,
    peer: &Peer,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<Caller, Response> {
    let (caller, _) = state
        .caller_with_cookie(peer, headers)
        .map_err(|r| explained(state, r, headers, None))?;
    state
        .allow(&caller, scope)
        .map_err(|r| explained(state, r, headers, Some((&caller, scope))))?;
    Ok(caller)
}

/// [`authorize`], then the token's job filter for `job` (a job it hides is
/// 404, as one that does not exist: `visible::gate`).
pub async fn authorize_job(
    state: &auth::State,
    peer: &Peer,
    headers: &HeaderMap,
    scope: Scope,
    job: &str,
) -> Result<Caller, Response> {
    let caller = authorize(state, peer, headers, scope)?;
    crate::visible::gate(state, &caller, scope, job).await?;
    Ok(caller)
}

/// A command's `--json` document, run as the CLI runs it (on a blocking
/// thread: the readers are synchronous), with the server's global options.
/// A read (`list`, `status`, …) comes from a reading shared with the other
/// requests for the same arguments, at most as old as the request accepts
/// (`readings`); an action always runs for its own request.
pub async fn capture(state: &auth::State, args: Vec<String>) -> auth::Captured {
    if shared_read(&args) {
        let globals = state.globals.clone();
        state
            .reads
            .get(args.clone(), move || async move {
                run_command(&globals, args, None).await
            })
            .await
    } else {
        run_command(&state.globals, args, None).await
    }
}

/// An action on behalf of `starter`: a `run` it makes records the run's
/// origin (trigger `web`, [`crate::origin::actor_of`] the caller). Never
/// shared, and no reading from before it is used after it.
pub async fn capture_as(state: &auth::State, args: Vec<String>, starter: Caller) -> auth::Captured {
    let done = run_command(&state.globals, args, Some(starter)).await;
    state.actions.acted();
    done
}

/// The commands that only read, whose document depends on nothing but
/// their arguments and the server's options (not on the caller).
fn shared_read(args: &[String]) -> bool {
    matches!(
        args.first().map(String::as_str),
        Some("list" | "status" | "history" | "logs" | "health" | "notifications")
    )
}

async fn run_command(
    globals: &[String],
    args: Vec<String>,
    starter: Option<Caller>,
) -> auth::Captured {
    let mut argv = vec!["jobctl".to_string()];
    argv.extend(globals.iter().cloned());
    argv.extend(args);
    let joined =
        tokio::task::spawn_blocking(
            move || match <jobctl::cli::Cli as clap::Parser>::try_parse_from(&argv) {
                Ok(cli) => {
                    let acting = starter.map(|c| jobctl::origin::Acting {
                        actor: crate::origin::actor_of(&c),
                    });
                    jobctl::origin::acting(acting, || jobctl::commands::run_captured(cli))
                }
                Err(e) => {
                    // The document the CLI prints for it with `--json`.
                    let (error, hints) = jobctl::cli::refusal_parts(&e);
                    let doc = serde_json::json!({
                        "schema": "jobctl.error/v1",
                        "error": error,
                        "causes": [],
                        "hints": hints,
                        "diagnostics": [],
                        "exit_status": Exit::Usage.code(),
                    });
                    (Exit::Usage, serde_json::to_vec(&doc).unwrap_or_default())
                }
            },
        )
        .await;
    // Bytes: a shared reading is cloned for every request it answers.
    joined.map_or_else(
        |_| {
            (
                Exit::Failure,
                Bytes::from_static(br#"{"error":"the request's reader panicked"}"#),
            )
        },
        |(exit, body)| (exit, Bytes::from(body)),
    )
}

/// The HTTP status for a command's exit status. `health` exits 1 when it
/// finds a problem; its report is still the answer (`ok_on_failure`).
fn status_of(exit: Exit, ok_on_failure: bool) -> StatusCode {
    match exit {
        Exit::Success | Exit::Partial => StatusCode::OK,
        Exit::Failure if ok_on_failure => StatusCode::OK,
        Exit::Usage => StatusCode::BAD_REQUEST,
        Exit::NotStarted => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub fn json_response(exit: Exit, body: impl Into<Bytes>, ok_on_failure: bool) -> Response {
    let body: Bytes = body.into();
    let mut status = status_of(exit, ok_on_failure);
    // The CLI's "unknown job" and "no run" refusals are usage errors; over
    // HTTP they are a resource that is not there.
    if matches!(exit, Exit::Usage | Exit::Failure) && missing(&body) {
        status = StatusCode::NOT_FOUND;
    }
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // The CLI's exit status, for clients that want it (5: partly read).
    res.headers_mut().insert(
        "jobctl-exit-status",
        HeaderValue::from(u16::from(exit.code())),
    );
    res
}

/// A document narrowed to the jobs a filtered caller may see
/// (`crate::visible`), marked so.
fn narrowed(exit: Exit, doc: &serde_json::Value, ok_on_failure: bool) -> Response {
    let mut res = json_response(
        exit,
        serde_json::to_vec(doc).unwrap_or_default(),
        ok_on_failure,
    );
    crate::visible::mark(&mut res);
    res
}

/// Whether a command's error document says that the job or run asked for
/// does not exist (`unknown job "…"`, `job …: no run with id …`).
fn missing(body: &[u8]) -> bool {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let error = doc
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or_default();
    error.starts_with("unknown job ") || error.contains(": no run with id ")
}

/// A value from the request as one `--flag=value` argument: the value can
/// never be read as another option, whatever it starts with.
fn flag(name: &str, value: &str) -> String {
    format!("--{name}={value}")
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelQuery {
    pub owner: Option<String>,
    pub team: Option<String>,
    pub tag: Option<String>,
}

impl LabelQuery {
    pub fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        for (name, v) in [
            ("owner", &self.owner),
            ("team", &self.team),
            ("tag", &self.tag),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                a.push(flag(name, v));
            }
        }
        a
    }
}

type Conn = ConnectInfo<Peer>;

async fn health(State(s): State<Shared>, ConnectInfo(p): Conn, h: HeaderMap) -> Response {
    let caller = match authorize(&s, &p, &h, Scope::Read) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (exit, body) = capture(&s, vec!["health".into(), "--json".into()]).await;
    if let Some(filter) = caller.filter()
        && let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&body)
        && doc.get("healthy").is_some()
    {
        let visible = match crate::visible::visible(&s, filter).await {
            Ok(v) => v,
            Err(r) => return r,
        };
        crate::visible::narrow_health(&mut doc, &visible.names);
        // `health` exits 1 when it finds a problem: so does its narrowed
        // report, about the jobs it keeps.
        let exit = match (exit, doc["healthy"].as_bool()) {
            (Exit::Success | Exit::Failure, Some(true)) => Exit::Success,
            (Exit::Success | Exit::Failure, Some(false)) => Exit::Failure,
            (other, _) => other,
        };
        return narrowed(exit, &doc, true);
    }
    // Exit 1 with a report is "a problem was found", still the answer; exit 1
    // with an error document is an error.
    let report = serde_json::from_slice::<serde_json::Value>(&body)
        .is_ok_and(|d| d.get("healthy").is_some());
    json_response(exit, body, report)
}

async fn jobs(
    State(s): State<Shared>,
    ConnectInfo(p): Conn,
    h: HeaderMap,
    Query(q): Query<LabelQuery>,
) -> Response {
    let caller = match authorize(&s, &p, &h, Scope::Read) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut args = vec!["list".into(), "--json".into()];
    args.extend(q.args());
    let (exit, body) = capture(&s, args).await;
    if let Some(filter) = caller.filter()
        && let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&body)
        && doc.get("jobs").is_some()
    {
        // The rows carry each job's tags: the filter needs nothing more.
        if let Some(rows) = doc.get_mut("jobs").and_then(|j| j.as_array_mut()) {
            rows.retain(|row| {
                let tags: Vec<String> = row["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
                filter.admits(row["job"].as_str().unwrap_or_default(), &tags)
            });
        }
        return narrowed(exit, &doc, false);
    }
    json_response(exit, body, false)
}

async fn job(
    State(s): State<Shared>,
    ConnectInfo(p): Conn,
    h: HeaderMap,
    Path(job): Path<String>,
) -> Response {
    if let Err(r) = authorize_job(&s, &p, &h, Scope::Read, &job).await {
        return r;
    }
    let (exit, body) = capture(&s, vec!["status".into(), "--json".into(), "--".into(), job]).await;
    // A document with no job in `jobs` is no such job (`status JOB` of an
    // unknown job is also refused as one, which `json_response` maps).
    let empty = serde_json::from_slice::<serde_json::Value>(&body)
        .is_ok_and(|d| d["jobs"].as_array().is_some_and(Vec::is_empty));
    if exit == Exit::Success && empty {
        return json_error(StatusCode::NOT_FOUND, "no such job");
    }
    json_response(exit, body, false)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    pub job: Option<String>,
    /// Comma-separated statuses, as `history --status`.
    pub status: Option<String>,
    pub failed: Option<bool>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<Limit>,
    /// The page after the one that gave this cursor (its `next` link).
    pub cursor: Option<String>,
}

/// Runs across jobs (or one job's): `history --json` with its filters, and
/// cursor pagination: when a page is full, a `Link: <…>; rel="next"` header
/// (and `Jobctl-Next-Cursor`) names the next one. The cursor is the start
/// time of the page's last run: the next page has the runs started before it.
async fn history(s: &auth::State, job: Option<String>, q: RunsQuery) -> Response {
    let limit = q.limit.map_or(50, |l| l.0);
    let mut args = vec![
        "history".into(),
        "--json".into(),
        flag("limit", &limit.to_string()),
    ];
    if let Some(job) = job.or(q.job) {
        args.push(flag("job", &job));
    }
    if let Some(st) = q.status.as_deref().filter(|v| !v.is_empty()) {
        args.push(flag("status", st));
    }
    if q.failed == Some(true) {
        args.push("--failed".into());
    }
    if let Some(v) = q.since.as_deref().filter(|v| !v.is_empty()) {
        args.push(flag("since", v));
    }
    const BAD_CURSOR: &str = "invalid cursor: pass the previous page's Jobctl-Next-Cursor \
                              header as it is (with the same filters)";
    let until = match (&q.cursor, &q.until) {
        (Some(c), _) => match c.parse::<i64>() {
            Ok(us) => match jiff::Timestamp::from_microsecond(us) {
                Ok(ts) => Some(ts.to_string()),
                Err(_) => return json_error(StatusCode::BAD_REQUEST, BAD_CURSOR),
            },
            Err(_) => return json_error(StatusCode::BAD_REQUEST, BAD_CURSOR),
        },
        (None, u) => u.clone().filter(|v| !v.is_empty()),
    };
    if let Some(u) = &until {
        args.push(flag("until", u));
    }
    let (exit, body) = capture(s, args).await;
    let mut res = json_response(exit, body.clone(), false);
    if exit == Exit::Success || exit == Exit::Partial {
        let last = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|doc| {
                let runs = doc.get("runs")?.as_array()?.clone();
                if runs.len() < limit {
                    return None;
                }
                runs.last()?.get("started_us")?.as_i64()
            });
        if let Some(cursor) = last {
            res.headers_mut()
                .insert("jobctl-next-cursor", HeaderValue::from(cursor));
        }
    }
    res
}

async fn runs(
    State(s): State<Shared>,
    ConnectInfo(p): Conn,
    h: HeaderMap,
    Query(q): Query<RunsQuery>,
) -> Response {
    let caller = match authorize(&s, &p, &h, Scope::Read) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(job) = q.job.as_deref() {
        if let Err(r) = crate::visible::gate(&s, &caller, Scope::Read, job).await {
            return r;
        }
    } else if let Some(filter) = caller.filter() {
        return filtered_history(&s, filter, q).await;
    }
    history(&s, None, q).await
}

/// Runs across the jobs a filtered caller may see: one reading per visible
/// job (each `history --job JOB` with the request's filters, shared like any
/// other), merged newest first, as `history` would list them for those jobs
/// alone; the same cursor pagination.
async fn filtered_history(
    s: &auth::State,
    filter: &jobctl_core::web::JobFilter,
    q: RunsQuery,
) -> Response {
    let visible = match crate::visible::visible(s, filter).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let limit = q.limit.map_or(50, |l| l.0);
    let mut docs = Vec::new();
    for job in &visible.names {
        let q = RunsQuery {
            job: None,
            status: q.status.clone(),
            failed: q.failed,
            since: q.since.clone(),
            until: q.until.clone(),
            limit: Some(crate::extract::Count(limit)),
            cursor: q.cursor.clone(),
        };
        let res = history(s, Some(job.clone()), q).await;
        let status = res.status();
        let exit = res
            .headers()
            .get("jobctl-exit-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u8>().ok());
        let body = match axum::body::to_bytes(res.into_body(), usize::MAX).await {
            Ok(b) => b,
            Err(_) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, "a reading failed"),
        };
        if status != StatusCode::OK {
            // An invalid filter (400) is the same for every job: answer it.
            let mut res = Response::new(Body::from(body));
            *res.status_mut() = status;
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return res;
        }
        let exit = if exit == Some(Exit::Partial.code()) {
            Exit::Partial
        } else {
            Exit::Success
        };
        docs.push((exit, serde_json::from_slice(&body).unwrap_or_default()));
    }
    let empty = serde_json::json!({
        "schema": "jobctl.history/v1",
        "host": visible.host,
        "runs": [],
    });
    let (exit, doc) = crate::visible::merge(docs, "runs", limit, empty, crate::visible::run_order);
    let mut res = narrowed(exit, &doc, false);
    let runs = doc["runs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if runs.len() == limit
        && let Some(cursor) = runs.last().and_then(|r| r["started_us"].as_i64())
    {
        res.headers_mut()
            .insert("jobctl-next-cursor", HeaderValue::from(cursor));
    }
    res
}

async fn job_runs(
    State(s): State<Shared>,
    ConnectInfo(p): Conn,
    h: HeaderMap,
    Path(job): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Response {
    if let Err(r) = authorize_job(&s, &p, &h, Scope::Read, &job).await {
        return r;
    }
    history(&s, Some(job), q).await
}

/// `logs --json` of one run: `{run, output, output_removed, output_not_stored}`.
pub async fn logs_doc(s: &auth::State, job: String, id: String) -> auth::Captured {
    capture(
        s,
        vec![
            "logs".into(),
            "--json".into(),
            flag("run", &id),
            "--".into(),
            job,
        ],
    )
    .await
}

async fn run(
    State(s): State<Shared>,
    ConnectInfo(p): Conn,
    h: HeaderMap,
    Path((job, id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = authorize_job(&s, &p, &h, Scope::Read, &job).await {
        return r;
    }
    let (exit, body) = logs_doc(&s, job, id).await;
    if exit != Exit::Success && exit != Exit::Partial {
        return json_response(exit, body, false);
    }
    let run = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|mut d| d.get_mut("run").map(serde_json::Value::take));
    match run {
        Some(run) => json_response(exit, serde_json::to_vec(&run).unwrap_or_default(), false),
        None => json_error(StatusCode::INTERNAL_SERVER_ERROR, "no run in logs' report"),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputQuery {
    /// Only the last N lines of each part of the output.
    tail: Option<LineCount>,
}

async fn run_output(
    State(s): State<Shared>,
    ConnectInfo(p): Conn,
    h: HeaderMap,
    Path((job, id)): Path<(String, String)>,
    Query(q): Query<OutputQuery>,
) -> Response {
    if let Err(r) = authorize_job(&s, &p, &h, Scope::Read, &job).await {
        return r;
    }
    let (exit, body) = logs_doc(&s, job, id).await;
    if exit != Exit::Success && exit != Exit::Partial {
        return json_response(exit, body, false);
    }
    let Some(crate::extract::Count(n)) = q.tail else {
        return json_response(exit, body, false);
    };
    // The tail: the last N lines of the captured output, each segment kept
    // with its stream mark; an omission before them is said as one.
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return json_response(exit, body, false);
    };
    if let Some(segments) = doc.get_mut("output").and_then(|o| o.as_array_mut()) {
        *segments = tail_segments(segments, n);
    }
    json_response(exit, serde_json::to_vec(&doc).unwrap_or_default(), false)
}

/// The last `n` lines of `logs --json`'s segments, marks kept.
pub fn tail_segments(segments: &[serde_json::Value], n: usize) -> Vec<serde_json::Value> {
    let mut left = n;
    let mut out = Vec::new();
    for seg in segments.iter().rev() {
        if left == 0 {
            break;
        }
        let Some(text) = seg.get("text").and_then(|t| t.as_str()) else {
            continue;
        };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let take = lines.len().min(left);
        left -= take;
        let mut seg = seg.clone();
        seg["text"] = lines[lines.len() - take..].concat().into();
        out.push(seg);
    }
    out.reverse();
    out
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationsQuery {
    job: Option<String>,
    limit: Option<Limit>,
}

async fn notifications(
    State(s): State<Shared>,
    ConnectInfo(p): Conn,
    h: HeaderMap,
    Query(q): Query<NotificationsQuery>,
) -> Response {
    let caller = match authorize(&s, &p, &h, Scope::Read) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let limit = q.limit.map_or(50, |l| l.0);
    let args = |job: Option<String>| -> Vec<String> {
        let mut args: Vec<String> = vec![
            "notifications".into(),
            "--json".into(),
            flag("limit", &limit.to_string()),
        ];
        if let Some(job) = job {
            args.push("--".into());
            args.push(job);
        }
        args
    };
    if let Some(job) = q.job.as_deref() {
        if let Err(r) = crate::visible::gate(&s, &caller, Scope::Read, job).await {
            return r;
        }
    } else if let Some(filter) = caller.filter() {
        // One reading per visible job, merged newest first.
        let visible = match crate::visible::visible(&s, filter).await {
            Ok(v) => v,
            Err(r) => return r,
        };
        let mut docs = Vec::new();
        for job in &visible.names {
            let (exit, body) = capture(&s, args(Some(job.clone()))).await;
            if exit != Exit::Success {
                return json_response(exit, body, false);
            }
            docs.push((exit, serde_json::from_slice(&body).unwrap_or_default()));
        }
        let empty = serde_json::json!({
            "schema": "jobctl.notifications/v1",
            "host": visible.host,
            "notifications": [],
        });
        let (exit, doc) = crate::visible::merge(
            docs,
            "notifications",
            limit,
            empty,
            crate::visible::notification_order,
        );
        return narrowed(exit, &doc, false);
    }
    let (exit, body) = capture(&s, args(q.job)).await;
    json_response(exit, body, false)
}

/// This caller's CSRF token, for clients that act with ambient credentials
/// (the unix socket): send it as `X-Jobctl-Csrf`.
async fn csrf(State(s): State<Shared>, ConnectInfo(p): Conn, h: HeaderMap) -> Response {
    match authorize(&s, &p, &h, Scope::Read) {
        Ok(caller) => {
            axum::Json(serde_json::json!({ "csrf": s.csrf_token(&caller) })).into_response()
        }
        Err(r) => r,
    }
}

/// An action on `job`: the scope, then CSRF, then the CLI's `command`
/// (`run`, `enable`, `disable`) with `--json`.
async fn act(
    s: &auth::State,
    p: &Peer,
    h: &HeaderMap,
    scope: Scope,
    command: &str,
    job: String,
) -> Response {
    let args = vec![command.into(), "--json".into(), "--".into(), job.clone()];
    let (caller, ambient) = match s.caller_with_cookie(p, h) {
        Ok(c) => c,
        Err(r) => return explained(s, r, h, None),
    };
    if let Err(r) = s.allow(&caller, scope) {
        return explained(s, r, h, Some((&caller, scope)));
    }
    // A job the token's filter hides is 404.
    if let Err(r) = crate::visible::gate(s, &caller, scope, &job).await {
        return r;
    }
    if ambient && !s.csrf_ok(&caller, h) {
        return json_error(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: send X-Jobctl-Csrf (GET /api/v1/csrf) or a bearer token",
        );
    }
    let what = args.join(" ");
    let started_job = (command == "run").then_some(job);
    let (exit, body) = capture_as(s, args, caller.clone()).await;
    // Who acted, in the server's log (the journal, under jobctl-web.service).
    jobctl::output::note(&jobctl::output::escape(
        &format!(
            "{}: jobctl {what} (exit status {})",
            caller.describe(),
            exit.code()
        ),
        jobctl::output::Lines::Escape,
    ));
    // A run that started: where its record is, once the shim has written it
    // (the body stays the CLI's document, whose `run_id` is null).
    let recorded = match (&started_job, exit) {
        (Some(job), Exit::Success) => match started_invocation(&body) {
            Some(invocation) => recorded_run(s, job, &invocation).await,
            None => None,
        },
        _ => None,
    };
    let mut res = json_response(exit, body, false);
    if let (Some(job), Some(id)) = (started_job, recorded) {
        let location = format!("/api/v1/jobs/{}/runs/{id}", crate::pages::urlencode(&job));
        if let (Ok(id), Ok(location)) =
            (HeaderValue::from_str(&id), HeaderValue::from_str(&location))
        {
            res.headers_mut().insert(RUN_ID, id);
            res.headers_mut().insert(header::LOCATION, location);
        }
    }
    res
}

/// The run id of a "run now", once its shim has recorded it.
pub const RUN_ID: &str = "jobctl-run-id";

/// How long a "run now" waits for the shim to record the run it started
/// (it does so as it begins, before the job's command runs).
const RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The invocation a `run --json` document says it started (`started`
/// true), in systemd's form.
pub fn started_invocation(body: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    if doc["started"] != serde_json::Value::Bool(true) {
        return None;
    }
    doc["invocation_id"]
        .as_str()
        .filter(|id| jobctl_history::is_invocation_id(id))
        .map(str::to_string)
}

/// The id of `job`'s run of `invocation`, read from the history (the same
/// shared `history` reading as `/api/v1/jobs/{job}/runs`) until the shim
/// has recorded it or [`RECORD_WAIT`] has passed.
pub async fn recorded_run(s: &auth::State, job: &str, invocation: &str) -> Option<String> {
    let deadline = tokio::time::Instant::now() + RECORD_WAIT;
    loop {
        let args = vec![
            "history".into(),
            "--json".into(),
            flag("limit", "5"),
            flag("job", job),
        ];
        // Exact: each look must see what the shim has written since.
        let (_, body) = crate::readings::exact(capture(s, args)).await;
        let found = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|doc| {
                doc["runs"].as_array().and_then(|runs| {
                    runs.iter()
                        .find(|r| r["invocation_id"] == invocation)
                        .and_then(|r| r["id"].as_str().map(str::to_string))
                })
            });
        if found.is_some() || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn run_now(
    State(s): State<Shared>,
    ConnectInfo(p): Conn,
    h: HeaderMap,
    Path(job): Path<String>,
) -> Response {
    act(&s, &p, &h, Scope::Run, "run", job).await
}

async fn enable(
    State(s): State<Shared>,
    ConnectInfo(p): Conn,
    h: HeaderMap,
    Path(job): Path<String>,
) -> Response {
    act(&s, &p, &h, Scope::Manage, "enable", job).await
}

async fn disable(
    State(s): State<Shared>,
    ConnectInfo(p): Conn,
    h: HeaderMap,
    Path(job): Path<String>,
) -> Response {
    act(&s, &p, &h, Scope::Manage, "disable", job).await
}

/// The Prometheus exposition, exactly `jobctl metrics` (docs/metrics.md),
/// for a plain HTTP scrape; the `read` scope, like every other reader.
/// A database that could not be read leaves its jobs' run metrics out, as
/// the command does, and is named in `Jobctl-Warning` headers (and the
/// exit status 5 in `Jobctl-Exit-Status`).
async fn metrics(State(s): State<Shared>, ConnectInfo(p): Conn, h: HeaderMap) -> Response {
    let caller = match authorize(&s, &p, &h, Scope::Read) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let visible = match caller.filter() {
        Some(filter) => match crate::visible::visible(&s, filter).await {
            Ok(v) => Some(v.names),
            Err(r) => return r,
        },
        None => None,
    };
    let mut argv = vec!["jobctl".to_string()];
    argv.extend(s.globals.iter().cloned());
    argv.push("metrics".into());
    let rendered = tokio::task::spawn_blocking(
        move || -> Result<jobctl::commands::metrics::Rendered, Vec<u8>> {
            let cli = <jobctl::cli::Cli as clap::Parser>::try_parse_from(&argv).map_err(|e| {
                let line = e.render().to_string();
                let line = line.lines().next().unwrap_or_default().to_string();
                serde_json::to_vec(&serde_json::json!({ "error": line })).unwrap_or_default()
            })?;
            jobctl::commands::metrics_text(&cli.global)
                .map_err(|e| serde_json::to_vec(&e.json()).unwrap_or_default())
        },
    )
    .await;
    match rendered {
        Ok(Ok(rendered)) => {
            let text = match &visible {
                Some(names) => crate::visible::narrow_metrics(&rendered.text, names),
                None => rendered.text,
            };
            let mut res = Response::new(Body::from(text));
            if visible.is_some() {
                crate::visible::mark(&mut res);
            }
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            let exit = if rendered.warnings.is_empty() {
                Exit::Success
            } else {
                Exit::Partial
            };
            res.headers_mut().insert(
                "jobctl-exit-status",
                HeaderValue::from(u16::from(exit.code())),
            );
            for warning in &rendered.warnings {
                // Escaped: a header value is one line of visible ASCII.
                let line: String = warning.escape_default().collect();
                if let Ok(value) = HeaderValue::from_str(&line) {
                    res.headers_mut().append("jobctl-warning", value);
                }
            }
            res
        }
        Ok(Err(doc)) => {
            let mut res = Response::new(Body::from(doc));
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res
        }
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request's reader panicked",
        ),
    }
}

/// axum answers a method a route does not take with an empty 405 (and its
/// `Allow` header): say so, as JSON on the API and the error page elsewhere.
async fn method_not_allowed(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    if res.status() != StatusCode::METHOD_NOT_ALLOWED {
        return res;
    }
    let allow = res.headers().get(header::ALLOW).cloned();
    let takes = allow
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let api = path.starts_with("/api/") || path == "/metrics";
    let message = format!(
        "method {method} is not allowed here; this {} takes {takes}",
        if api { "route" } else { "page" }
    );
    let mut answer = if api {
        json_error(StatusCode::METHOD_NOT_ALLOWED, &message)
    } else {
        crate::pages::error_page(StatusCode::METHOD_NOT_ALLOWED, &message)
    };
    if let Some(v) = allow {
        answer.headers_mut().insert(header::ALLOW, v);
    }
    answer
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such page or API route")
}

#[cfg(test)]
mod tests {
    use super::shared_read;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reads_are_shared_and_actions_never() {
        for read in [
            "list",
            "status",
            "history",
            "logs",
            "health",
            "notifications",
        ] {
            assert!(shared_read(&args(&[read, "--json"])), "{read}");
        }
        for action in ["run", "enable", "disable", "apply", "token", "exec"] {
            assert!(!shared_read(&args(&[action, "--json"])), "{action}");
        }
        assert!(!shared_read(&[]));
    }
}
