//! A run reached by its id alone (`/api/v1/runs/{id}`), and a run's captured
//! output as text with `Range` requests (`…/output/text`).

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use jobctl::exit::Exit;
use jobctl_core::web::Scope;
use jobctl_history::RunLookup;
use serde_json::Value;

use crate::api::{Shared, authorize, authorize_job, json_error, json_response, logs_doc};
use crate::auth::Peer;
use crate::extract::{Path, Query};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v1/runs/{id}", get(run_by_id))
        .route("/api/v1/jobs/{job}/runs/{id}/output/text", get(output_text))
}

/// The job of the run `id` (a run id or a unique prefix of at least 4
/// digits), looked up in every database the CLI's readers open, with
/// their checks (a user's database yields only runs of that user's jobs):
/// `Ok(Some((job, full id)))`, `Ok(None)` for no such run, or an answer.
fn job_of_run(globals: &[String], id: &str) -> Result<Option<(String, String)>, Response> {
    let mut argv = vec!["jobctl".to_string()];
    argv.extend(globals.iter().cloned());
    argv.push("history".into());
    let cli = <jobctl::cli::Cli as clap::Parser>::try_parse_from(&argv).map_err(|_| {
        json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server's options do not parse",
        )
    })?;
    let failure = |e: anyhow::Error| {
        let causes: Vec<String> = e.chain().map(ToString::to_string).collect();
        json_error(StatusCode::INTERNAL_SERVER_ERROR, &causes.join(": "))
    };
    let paths = jobctl::paths::Paths::resolve(&cli.global).map_err(failure)?;
    let readers = jobctl::history_db::Readers::open(&paths, None).map_err(failure)?;
    let probe = jobctl_history::liveness::LivenessProbe::current(jobctl::host::hostname());
    let now = jobctl::host::now_us();
    let lookup = RunLookup::Id(id.to_string());
    let mut found: Vec<(String, String)> = Vec::new();
    for (located, store) in &readers.stores {
        match store.find_run(None, &lookup, &probe, now) {
            Ok(Some(run)) if readers.accepts(located, &run.job) => {
                found.push((run.job.clone(), run.id.to_string()));
            }
            Ok(_) => {}
            Err(
                e @ (jobctl_history::Error::BadRunId(_)
                | jobctl_history::Error::AmbiguousRunId { .. }),
            ) => {
                return Err(json_error(StatusCode::BAD_REQUEST, &e.to_string()));
            }
            Err(e) => {
                let what = format!("cannot read {}: {e}", located.path.display());
                return Err(json_error(StatusCode::INTERNAL_SERVER_ERROR, &what));
            }
        }
    }
    found.dedup();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(json_error(
            StatusCode::BAD_REQUEST,
            &format!("run id \"{id}\" matches runs in {n} databases; give more digits"),
        )),
    }
}

/// `GET /api/v1/runs/{id}`: the run's object, as under its job
/// (`/api/v1/jobs/{job}/runs/{id}`); found by id, then read as its job's
/// run with the same checks.
async fn run_by_id(
    State(s): State<Shared>,
    ConnectInfo(p): ConnectInfo<Peer>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match authorize(&s, &p, &h, Scope::Read) {
        Ok(caller) => caller,
        Err(r) => return r,
    };
    let globals = s.globals.clone();
    let wanted = id.clone();
    let found = tokio::task::spawn_blocking(move || job_of_run(&globals, &wanted)).await;
    let (job, full) = match found {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return json_error(StatusCode::NOT_FOUND, &format!("no run with id {id}")),
        Ok(Err(answer)) => return answer,
        Err(_) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request's reader panicked",
            );
        }
    };
    // A run of a job the token's filter hides is as absent as one that
    // does not exist (the same 404 and body).
    if crate::visible::gate(&s, &caller, Scope::Read, &job)
        .await
        .is_err()
    {
        return json_error(StatusCode::NOT_FOUND, &format!("no run with id {id}"));
    }
    let (exit, body) = logs_doc(&s, job, full).await;
    if exit != Exit::Success && exit != Exit::Partial {
        return json_response(exit, body, false);
    }
    let run = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|mut d| d.get_mut("run").map(Value::take));
    match run {
        Some(run) => json_response(exit, serde_json::to_vec(&run).unwrap_or_default(), false),
        None => json_error(StatusCode::INTERNAL_SERVER_ERROR, "no run in logs' report"),
    }
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranged {
    /// No range, or one this server does not serve (several ranges, another
    /// unit, bad syntax: RFC 9110 lets a server ignore it): the whole body.
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A range that starts past the end (or asks for no bytes).
    Unsatisfiable,
}

/// One `bytes=` range of a body of `len` bytes: `A-B`, `A-` or `-N` (the
/// last N bytes).
pub fn ranged(header: Option<&str>, len: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranged::Whole;
    };
    let spec = spec.trim();
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ranged::Whole;
    };
    let number = |t: &str| -> Option<u64> {
        let t = t.trim();
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // -N: the last N bytes.
        (true, false) => match number(last) {
            Some(0) => Ranged::Unsatisfiable,
            Some(_) if len == 0 => Ranged::Unsatisfiable,
            Some(n) => Ranged::Part {
                start: len - n.min(len),
                end: len - 1,
            },
            None => Ranged::Whole,
        },
        // A-: from A to the end.
        (false, true) => match number(first) {
            Some(a) if a >= len => Ranged::Unsatisfiable,
            Some(a) => Ranged::Part {
                start: a,
                end: len - 1,
            },
            None => Ranged::Whole,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= len {
                    Ranged::Unsatisfiable
                } else {
                    Ranged::Part {
                        start: a,
                        end: b.min(len - 1),
                    }
                }
            }
            _ => Ranged::Whole,
        },
        (true, true) => Ranged::Whole,
    }
}

/// `…/output/text`'s query: `raw=true` for the bytes as the job wrote them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TextQuery {
    raw: Option<bool>,
}

/// The text of a `logs --json` document's output (both streams as read,
/// unmarked) and the bytes left out of its middle. Control characters are
/// made visible as `jobctl logs` shows them on a terminal (`\x1b`; newlines
/// and tabs kept): a job's user must not drive the terminal of whoever
/// fetches it with curl. `raw` keeps them, as `jobctl logs --raw` does.
fn output_text_of(doc: &Value, raw: bool) -> (String, u64) {
    let mut text = String::new();
    let mut omitted = 0u64;
    for seg in doc["output"].as_array().into_iter().flatten() {
        if let Some(t) = seg.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        omitted += seg
            .get("omitted_bytes")
            .and_then(Value::as_u64)
            .unwrap_or(0);
    }
    if !raw {
        text = jobctl::output::escape(&text, jobctl::output::Lines::Keep).into_owned();
    }
    (text, omitted)
}

/// `GET /api/v1/jobs/{job}/runs/{id}/output/text`: the captured output as
/// `jobctl logs` prints it (both streams as read, unmarked, control
/// characters made visible; `?raw=true`: as `jobctl logs --raw`), decoded
/// as the JSON's `text` is (invalid UTF-8 replaced); `Range: bytes=…` of it
/// is answered with 206 and `Content-Range`, 416 when it starts past the
/// end. A middle left out of the capture is not in the text: its size is in
/// `Jobctl-Omitted-Bytes`.
async fn output_text(
    State(s): State<Shared>,
    ConnectInfo(p): ConnectInfo<Peer>,
    h: HeaderMap,
    Path((job, id)): Path<(String, String)>,
    Query(q): Query<TextQuery>,
) -> Response {
    if let Err(r) = authorize_job(&s, &p, &h, Scope::Read, &job).await {
        return r;
    }
    let (exit, body) = logs_doc(&s, job, id).await;
    if exit != Exit::Success && exit != Exit::Partial {
        return json_response(exit, body, false);
    }
    let doc = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let (text, omitted) = output_text_of(&doc, q.raw.unwrap_or(false));
    let bytes = text.into_bytes();
    let len = bytes.len() as u64;
    let range = h.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, body, content_range) = match ranged(range, len) {
        Ranged::Whole => (StatusCode::OK, bytes, None),
        Ranged::Part { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            bytes[start as usize..=end as usize].to_vec(),
            Some(format!("bytes {start}-{end}/{len}")),
        ),
        Ranged::Unsatisfiable => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            Vec::new(),
            Some(format!("bytes */{len}")),
        ),
    };
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(cr) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::CONTENT_RANGE, cr);
    }
    if omitted > 0 {
        headers.insert("jobctl-omitted-bytes", HeaderValue::from(omitted));
    }
    headers.insert(
        "jobctl-exit-status",
        HeaderValue::from(u16::from(exit.code())),
    );
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_text_shows_control_characters_unless_raw() {
        let doc = serde_json::json!({"output": [
            {"stream": "stdout", "text": "ok\t1\n\u{1b}]0;pwned\u{7}"},
            {"omitted_bytes": 10},
            {"stream": "stderr", "text": "\u{1b}[2Jend\n"},
        ]});
        assert_eq!(
            super::output_text_of(&doc, false),
            ("ok\t1\n\\x1b]0;pwned\\x07\\x1b[2Jend\n".to_string(), 10)
        );
        assert_eq!(
            super::output_text_of(&doc, true),
            ("ok\t1\n\u{1b}]0;pwned\u{7}\u{1b}[2Jend\n".to_string(), 10)
        );
    }

    use super::{Ranged, ranged};

    #[test]
    fn one_byte_range_is_served_and_others_give_the_whole() {
        let part = |start, end| Ranged::Part { start, end };
        assert_eq!(ranged(Some("bytes=0-4"), 18), part(0, 4));
        assert_eq!(ranged(Some("bytes=6-"), 18), part(6, 17));
        assert_eq!(ranged(Some("bytes=-6"), 18), part(12, 17));
        // Past the end: cut to the end; a suffix longer than the body: all.
        assert_eq!(ranged(Some("bytes=10-99"), 18), part(10, 17));
        assert_eq!(ranged(Some("bytes=-99"), 18), part(0, 17));
        assert_eq!(ranged(Some("bytes=17-17"), 18), part(17, 17));
        // Unsatisfiable: starting at or past the end, no bytes, an empty body.
        for h in ["bytes=18-", "bytes=18-20", "bytes=-0"] {
            assert_eq!(ranged(Some(h), 18), Ranged::Unsatisfiable, "{h}");
        }
        assert_eq!(ranged(Some("bytes=-5"), 0), Ranged::Unsatisfiable);
        assert_eq!(ranged(Some("bytes=0-"), 0), Ranged::Unsatisfiable);
        // Ignored (the whole body): none, several, another unit, nonsense.
        for h in [
            "bytes=0-1,4-5",
            "items=0-4",
            "bytes=4-2",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=99999999999999999999-",
            "bytes 0-4",
        ] {
            assert_eq!(ranged(Some(h), 18), Ranged::Whole, "{h}");
        }
        assert_eq!(ranged(None, 18), Ranged::Whole);
    }
}
