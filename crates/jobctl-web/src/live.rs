//! The live tail of a running run: server-sent events of the lines its
//! service writes to the journal, found by the service and the run's
//! invocation id, fields journald sets itself (as `jobctl logs --journal`
//! finds them: the shim's capture reaches the history only when the run
//! ends), then an `end` event with the run's record. And
//! the pages' one script (`/page.js`), which shows the events on the run page.
//!
//! Each stream is one `journalctl --follow` of the invocation, read here and
//! passed to the client through a bounded channel: a client that does not
//! take an event within [`STALL`] is dropped (its follower killed), so a
//! client that never reads holds at most [`QUEUE`] events of server memory.
//! A client that goes ends its follower at once.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jobctl::exit::Exit;
use jobctl::output::{Lines, escape};
use jobctl_core::context::Mode;
use jobctl_core::journal::RunMatch;
use jobctl_core::web::Scope;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::mpsc;

use crate::api::{Shared, authorize_job, json_error, json_response, logs_doc};
use crate::auth::Peer;
use crate::extract::Path;

/// Events waiting for a client.
const QUEUE: usize = 64;
/// How long an event may wait for a client that does not read.
const STALL: Duration = Duration::from_secs(10);
/// How often the history is asked whether the run has ended.
const POLL: Duration = Duration::from_secs(1);
/// Streams served at once (each is a journalctl process); more are 503.
const MAX_STREAMS: usize = 32;
/// Lines of the journal sent first: the run's last ones so far.
const BACKLOG: usize = 1000;

static STREAMS: AtomicUsize = AtomicUsize::new(0);

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v1/jobs/{job}/runs/{id}/output/events", get(events))
        .route("/page.js", get(script))
}

const SCRIPT: &str = include_str!("page.js");

async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        SCRIPT,
    )
        .into_response()
}

/// One of the [`MAX_STREAMS`] places, given back when dropped.
struct Place;

impl Place {
    fn take() -> Option<Place> {
        STREAMS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_STREAMS).then_some(n + 1)
            })
            .ok()
            .map(|_| Place)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `GET /api/v1/jobs/{job}/runs/{id}/output/events`: allowed exactly when
/// the run's output is (the read scope, then `logs` finds the run with the
/// readers' own checks).
async fn events(
    State(s): State<Shared>,
    ConnectInfo(p): ConnectInfo<Peer>,
    h: HeaderMap,
    Path((job, id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = authorize_job(&s, &p, &h, Scope::Read, &job).await {
        return r;
    }
    let (exit, body) = logs_doc(&s, job.clone(), id.clone()).await;
    if exit != Exit::Success && exit != Exit::Partial {
        return json_response(exit, body, false);
    }
    let Some(mut doc) = serde_json::from_slice::<Value>(&body).ok() else {
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "no run in logs' report");
    };
    let Some(run) = doc.get_mut("run").map(Value::take) else {
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "no run in logs' report");
    };
    // The run's lines are its service's (`logs` names it), as the server's
    // user reads them.
    let mode = if s.globals.iter().any(|g| g == "--user") {
        Mode::User
    } else {
        Mode::System
    };
    let lines_of = run["invocation_id"]
        .as_str()
        .filter(|i| jobctl_history::is_invocation_id(i))
        .zip(doc["service"].as_str())
        .map(|(invocation, service)| RunMatch::new(mode, s.own_uid, service, invocation));
    let Some(place) = Place::take() else {
        let mut res = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live streams at once; reload the page later",
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return res;
    };
    // A reconnecting EventSource names the last event it got: go on after it.
    let resume = h
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|c| is_cursor(c))
        .map(str::to_string);
    let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
    tokio::spawn(async move {
        let _place = place;
        tail(&s, job, id, run, resume, lines_of, tx).await;
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|e| e.map(Ok::<Event, std::convert::Infallible>))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A journal cursor as journalctl prints it (`s=…;i=…;…`): printable ASCII
/// without spaces, short; anything else is ignored.
fn is_cursor(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 512
        && text.bytes().all(|b| b.is_ascii_graphic())
        && text.starts_with("s=")
}

/// Sends `event` unless the client has not taken the queue's events for
/// [`STALL`] or has gone: then false, and the stream is dropped.
async fn deliver(tx: &mpsc::Sender<Event>, event: Event) -> bool {
    matches!(
        tokio::time::timeout(STALL, tx.send(event)).await,
        Ok(Ok(()))
    )
}

/// `journalctl` for the lines the run's service wrote (`_TRANSPORT=stdout`:
/// not systemd's or the shim's own entries), selected by journald's trusted
/// fields alone ([`RunMatch`], the run's own lines: its service and
/// invocation; per user, the server's uid over every journal file it may
/// read): a line that merely claims the invocation is not the run's.
fn journalctl(run: &RunMatch) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("journalctl");
    cmd.arg("--output=json")
        .args(run.own_args())
        .arg("_TRANSPORT=stdout")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// A journal entry (`journalctl --output=json`) as a `line` event: its
/// cursor as the event's id, the text as written (`text`, invalid UTF-8
/// replaced) and as the pages show it (`shown`: control characters made
/// visible). journald keeps a line with control characters as bytes.
fn line_event(entry: &Value) -> Option<(String, Event)> {
    let (cursor, data) = line_data(entry)?;
    let event = Event::default()
        .event("line")
        .id(cursor.clone())
        .data(data.to_string());
    Some((cursor, event))
}

fn line_data(entry: &Value) -> Option<(String, Value)> {
    let cursor = entry.get("__CURSOR")?.as_str()?.to_string();
    let bytes: Vec<u8> = match entry.get("MESSAGE")? {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Array(bytes) => bytes
            .iter()
            .filter_map(Value::as_u64)
            .map(|b| b as u8)
            .collect(),
        _ => return None,
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let shown = escape(&bytes, Lines::Escape).into_owned();
    Some((cursor, json!({ "text": text, "shown": shown })))
}

/// Follows the run until it ends or the client goes.
async fn tail(
    s: &Shared,
    job: String,
    id: String,
    mut run: Value,
    resume: Option<String>,
    lines_of: Option<RunMatch>,
    tx: mpsc::Sender<Event>,
) {
    let mut cursor = resume;
    let mut follower = None;
    // A client that came after the end reads the captured output instead.
    let followed = run["status"] == "running";
    if followed && let Some(lines_of) = &lines_of {
        let mut cmd = journalctl(lines_of);
        cmd.arg("--follow");
        match &cursor {
            Some(c) => cmd.arg(format!("--after-cursor={c}")),
            None => cmd.arg(format!("--lines={BACKLOG}")),
        };
        follower = cmd.spawn().ok();
    }
    let mut lines = follower
        .as_mut()
        .and_then(|c| c.stdout.take())
        .map(|out| BufReader::new(out).lines());
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while run["status"] == "running" {
        tokio::select! {
            () = tx.closed() => return,
            line = async { lines.as_mut()?.next_line().await.ok().flatten() }, if lines.is_some() => {
                let Some(line) = line else {
                    // journalctl stopped: the history still says when the run ends.
                    lines = None;
                    continue;
                };
                let Some((c, event)) = serde_json::from_str(&line).ok().as_ref().and_then(line_event) else {
                    continue;
                };
                cursor = Some(c);
                if !deliver(&tx, event).await {
                    return;
                }
            }
            _ = poll.tick() => {
                let (exit, body) = logs_doc(s, job.clone(), id.clone()).await;
                if exit != Exit::Success && exit != Exit::Partial {
                    // The run can no longer be read: say so and stop.
                    let error = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
                    let _ = deliver(&tx, Event::default().event("unavailable").data(error.to_string())).await;
                    return;
                }
                if let Some(now) = serde_json::from_slice::<Value>(&body).ok().and_then(|mut d| d.get_mut("run").map(Value::take)) {
                    run = now;
                }
            }
        }
    }
    // The run has ended: what its service wrote is in the journal once
    // journald has read it (`--sync`, as `jobctl run --follow` does); the
    // lines after the last one sent, then the end.
    drop(lines);
    drop(follower);
    if let Some(lines_of) = &lines_of
        && followed
    {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::process::Command::new("journalctl")
                .arg("--sync")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status(),
        )
        .await;
        // Read as it comes (not all at once): a slow client holds the
        // journalctl, not the server's memory.
        let mut cmd = journalctl(lines_of);
        match &cursor {
            Some(c) => cmd.arg(format!("--after-cursor={c}")),
            None => cmd.arg(format!("--lines={BACKLOG}")),
        };
        if let Some(mut rest) = cmd.spawn().ok()
            && let Some(out) = rest.stdout.take()
        {
            let mut lines = BufReader::new(out).lines();
            loop {
                let line = tokio::select! {
                    () = tx.closed() => return,
                    line = tokio::time::timeout(Duration::from_secs(10), lines.next_line()) => line,
                };
                let Ok(Ok(Some(line))) = line else {
                    break;
                };
                let Some((_, event)) = serde_json::from_str(&line)
                    .ok()
                    .as_ref()
                    .and_then(line_event)
                else {
                    continue;
                };
                if !deliver(&tx, event).await {
                    return;
                }
            }
        }
    }
    let end = json!({ "status": run["status"], "run": run });
    let _ = deliver(&tx, Event::default().event("end").data(end.to_string())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_line_is_json_text_with_its_control_characters_shown() {
        // journald stores a line with an escape character as bytes.
        let line = "<script>x</script> \u{1b}[31mred";
        let entry = json!({
            "__CURSOR": "s=1;i=2",
            "MESSAGE": line.as_bytes(),
        });
        let (cursor, data) = line_data(&entry).unwrap();
        assert_eq!(cursor, "s=1;i=2");
        assert_eq!(
            data,
            json!({ "text": line, "shown": "<script>x</script> \\x1b[31mred" })
        );
        // As sent: one line of JSON, the escape character escaped.
        let sent = data.to_string();
        assert!(!sent.contains('\u{1b}') && !sent.contains('\n'), "{sent}");
        assert!(sent.contains("\\u001b[31mred"), "{sent}");
        let entry = json!({ "__CURSOR": "s=1", "MESSAGE": "plain" });
        assert_eq!(line_data(&entry).unwrap().1["text"], "plain");
        assert!(line_event(&json!({ "MESSAGE": "no cursor" })).is_none());
    }

    #[test]
    fn only_cursors_resume_a_stream() {
        assert!(is_cursor("s=0123;i=1;b=ab;m=1;t=2;x=3"));
        for bad in ["", "--since=yesterday", "s=1 2", "s=\n", "i=1"] {
            assert!(!is_cursor(bad), "{bad:?}");
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_client_that_never_reads_is_dropped() {
        let (tx, _rx) = mpsc::channel::<Event>(QUEUE);
        for _ in 0..QUEUE {
            assert!(deliver(&tx, Event::default().data("x")).await);
        }
        // The queue is full and nobody reads: the next event gives up.
        assert!(!deliver(&tx, Event::default().data("x")).await);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_client_that_went_is_dropped_at_once() {
        let (tx, rx) = mpsc::channel::<Event>(QUEUE);
        drop(rx);
        assert!(!deliver(&tx, Event::default().data("x")).await);
    }
}
