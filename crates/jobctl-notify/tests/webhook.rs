//! The webhook transport against real receivers on 127.0.0.1: fakehook's
//! receiver (crates/fakehook/hook.rs) on a thread, plain and behind TLS.
//! Every URL carries a secret in its path and query; no attempt may show it.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "../../fakehook/hook.rs"]
mod hook;
#[path = "support/tls.rs"]
mod tls;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use hook::{Hook, Reply};
use jobctl_notify::{Attempt, Channel, Format, deliver, payload_at};
use serde_json::Value;

const SECRET_PATH: &str = "/services/T000/B000/SECRETTOKEN";
const SECRET_QUERY: &str = "sig=SECRETSIG";

fn webhook(url: String, format: Format, timeout: Duration) -> Channel {
    Channel::Webhook {
        url,
        format,
        timeout,
    }
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}{SECRET_PATH}?{SECRET_QUERY}")
}

fn no_secret(a: &Attempt) {
    assert!(!a.detail.contains("SECRET"), "{a:?}");
    assert!(!a.detail.contains("T000"), "{a:?}");
}

fn receiver(dir: &Path, replies: &[&str]) -> (std::sync::Arc<Hook>, u16) {
    let hook = Hook::new(
        dir,
        replies.iter().map(|r| Reply::parse(r).unwrap()).collect(),
    )
    .unwrap();
    let port = hook.spawn().unwrap();
    (hook, port)
}

#[test]
fn a_post_delivers_the_json_body_and_reports_success() {
    let dir = tempfile::tempdir().unwrap();
    let (_hook, port) = receiver(dir.path(), &["200"]);
    let n = fixture::failure();
    let a = deliver(
        &webhook(url(port), Format::Generic, Duration::from_secs(10)),
        &n,
    );
    assert!(a.ok && !a.retryable, "{a:?}");
    assert_eq!(a.http_status, Some(200));
    assert_eq!(a.detail, format!("HTTP 200 from http://127.0.0.1:{port}"));
    no_secret(&a);
    let reqs = hook::requests(dir.path());
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, format!("{SECRET_PATH}?{SECRET_QUERY}"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("idempotency-key"), Some("9f2c4e1a"));
    assert!(r.header("user-agent").unwrap().starts_with("jobctl/"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    let mut body: Value = serde_json::from_slice(&r.body).unwrap();
    let sent_at = body["sent_at"].as_str().unwrap().to_string();
    assert_eq!(sent_at.len(), 20, "{sent_at}");
    body["sent_at"] = Value::from("x");
    assert_eq!(body, payload_at(Format::Generic, &n, "x"));
}

#[test]
fn slack_and_teams_bodies_are_what_payload_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (_hook, port) = receiver(dir.path(), &["200"]);
    let n = fixture::failure();
    for format in [Format::Slack, Format::Teams] {
        let a = deliver(&webhook(url(port), format, Duration::from_secs(10)), &n);
        assert!(a.ok, "{a:?}");
    }
    let reqs = hook::requests(dir.path());
    assert_eq!(reqs.len(), 2);
    let slack: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    let teams: Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(slack, payload_at(Format::Slack, &n, ""));
    assert_eq!(teams, payload_at(Format::Teams, &n, ""));
}

#[test]
fn statuses_are_classified_retryable_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let (_hook, port) = receiver(
        dir.path(),
        &["500", "503", "429", "408", "404", "400", "401", "204"],
    );
    let ch = webhook(url(port), Format::Generic, Duration::from_secs(10));
    let n = fixture::failure();
    let want = [
        (500, false, true),
        (503, false, true),
        (429, false, true),
        (408, false, true),
        (404, false, false),
        (400, false, false),
        (401, false, false),
        (204, true, false),
    ];
    for (status, ok, retryable) in want {
        let a = deliver(&ch, &n);
        assert_eq!(a.http_status, Some(status), "{a:?}");
        assert_eq!((a.ok, a.retryable), (ok, retryable), "{a:?}");
        if !ok {
            // What the receiver said is kept, briefly.
            assert!(
                a.detail.contains(&format!(
                    "HTTP {status} from http://127.0.0.1:{port}: fakehook {status}"
                )),
                "{a:?}"
            );
        }
        no_secret(&a);
    }
    assert_eq!(hook::requests(dir.path()).len(), want.len());
}

#[test]
fn a_redirect_to_another_host_is_not_followed() {
    let other = tempfile::tempdir().unwrap();
    let (_other, other_port) = receiver(other.path(), &["200"]);
    let dir = tempfile::tempdir().unwrap();
    // "localhost" is another origin than "127.0.0.1", though the same machine.
    for (to, shown) in [
        (
            format!("http://localhost:{other_port}/stolen"),
            format!("http://localhost:{other_port}"),
        ),
        (
            format!("//localhost:{other_port}/stolen"),
            format!("http://localhost:{other_port}"),
        ),
        (
            format!("http://127.0.0.1:{other_port}/stolen"),
            format!("http://127.0.0.1:{other_port}"),
        ),
    ] {
        let _ = std::fs::remove_dir_all(dir.path().join("requests"));
        let (_hook, port) = receiver(dir.path(), &[&format!("307={to}")]);
        let a = deliver(
            &webhook(url(port), Format::Generic, Duration::from_secs(10)),
            &fixture::failure(),
        );
        assert!(!a.ok && !a.retryable, "{a:?}");
        assert_eq!(a.http_status, Some(307));
        assert!(
            a.detail.contains(&format!(
                "redirect to another origin ({shown}) not followed"
            )),
            "{a:?}"
        );
        no_secret(&a);
        assert_eq!(hook::requests(dir.path()).len(), 1);
    }
    assert_eq!(
        hook::requests(other.path()).len(),
        0,
        "the other host got the body"
    );
}

#[test]
fn same_origin_307_and_308_are_followed_with_the_body_and_302_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (_hook, port) = receiver(dir.path(), &["307=/moved", "308=again", "200"]);
    let n = fixture::failure();
    let a = deliver(
        &webhook(url(port), Format::Generic, Duration::from_secs(10)),
        &n,
    );
    assert!(a.ok, "{a:?}");
    assert_eq!(
        a.detail,
        format!("HTTP 200 from http://127.0.0.1:{port} (after 2 redirects)")
    );
    let reqs = hook::requests(dir.path());
    let targets: Vec<&str> = reqs.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets,
        [&format!("{SECRET_PATH}?{SECRET_QUERY}"), "/moved", "/again"]
    );
    assert!(
        reqs.iter()
            .all(|r| r.method == "POST" && r.body == reqs[0].body)
    );

    let dir = tempfile::tempdir().unwrap();
    let (_hook, port) = receiver(dir.path(), &["302=/moved", "200"]);
    let a = deliver(
        &webhook(url(port), Format::Generic, Duration::from_secs(10)),
        &n,
    );
    assert!(!a.ok && !a.retryable && a.http_status == Some(302), "{a:?}");
    assert!(a.detail.contains("turns the POST into a GET"), "{a:?}");
    assert_eq!(hook::requests(dir.path()).len(), 1);

    // A loop ends.
    let dir = tempfile::tempdir().unwrap();
    let (_hook, port) = receiver(dir.path(), &["307=/loop"]);
    let a = deliver(
        &webhook(url(port), Format::Generic, Duration::from_secs(10)),
        &n,
    );
    assert!(!a.ok && !a.retryable, "{a:?}");
    assert!(a.detail.contains("more than 5 redirects"), "{a:?}");
    assert_eq!(hook::requests(dir.path()).len(), 6);
}

#[test]
fn a_receiver_that_never_answers_times_out_retryably() {
    let dir = tempfile::tempdir().unwrap();
    let (_hook, port) = receiver(dir.path(), &["hang"]);
    let timeout = Duration::from_millis(700);
    let start = Instant::now();
    let a = deliver(
        &webhook(url(port), Format::Generic, timeout),
        &fixture::failure(),
    );
    let took = start.elapsed();
    assert!(!a.ok && a.retryable && a.http_status.is_none(), "{a:?}");
    assert!(a.detail.contains("within the timeout (700 ms)"), "{a:?}");
    no_secret(&a);
    // The request was made and waited for, up to the timeout.
    assert_eq!(hook::requests(dir.path()).len(), 1);
    assert!(a.duration_ms >= 700, "{a:?}");
    // Liveness, not speed: it returned (a bound far above the timeout).
    assert!(took < timeout + Duration::from_secs(5), "{took:?}");
}

#[test]
fn refused_and_dropped_connections_are_retryable() {
    // A port nothing listens on: bind, note, close.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let a = deliver(
        &webhook(url(port), Format::Generic, Duration::from_secs(5)),
        &fixture::failure(),
    );
    assert!(!a.ok && a.retryable, "{a:?}");
    assert_eq!(
        a.detail,
        format!("http://127.0.0.1:{port}: connection refused")
    );

    let dir = tempfile::tempdir().unwrap();
    let (_hook, port) = receiver(dir.path(), &["close"]);
    let a = deliver(
        &webhook(url(port), Format::Generic, Duration::from_secs(5)),
        &fixture::failure(),
    );
    assert!(!a.ok && a.retryable, "{a:?}");
    no_secret(&a);

    let a = deliver(
        &webhook(
            format!("http://no-such-host.invalid{SECRET_PATH}"),
            Format::Generic,
            Duration::from_secs(5),
        ),
        &fixture::failure(),
    );
    assert!(!a.ok && a.retryable, "{a:?}");
    no_secret(&a);
}

#[test]
fn bad_urls_are_not_retryable_and_never_shown() {
    for bad in [
        format!("ftp://127.0.0.1{SECRET_PATH}"),
        format!("127.0.0.1{SECRET_PATH}"),
        format!("https://user:SECRETPW@127.0.0.1{SECRET_PATH}"),
        format!("http://127.0.0.1{SECRET_PATH} with spaces"),
        String::new(),
    ] {
        let a = deliver(
            &webhook(bad.clone(), Format::Generic, Duration::from_secs(1)),
            &fixture::failure(),
        );
        assert!(!a.ok && !a.retryable, "{bad}: {a:?}");
        assert!(a.detail.contains("not shown"), "{a:?}");
        no_secret(&a);
    }
}

#[test]
fn https_to_a_certificate_of_an_unknown_ca_is_refused_before_any_request() {
    // The host's own store does not know this throwaway CA (the sandbox test
    // in tests/systemd_e2e/delivery.rs installs it and sees the same POST succeed), nor
    // does any store SSL_CERT_FILE/SSL_CERT_DIR may name: it was made just now.
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = tls::make_pki(pki_dir.path(), "DNS:localhost,IP:127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::new(dir.path(), vec![Reply::Status(200)]).unwrap();
    let port = tls::spawn_tls(&hook, &pki);
    let a = deliver(
        &webhook(
            format!("https://localhost:{port}{SECRET_PATH}?{SECRET_QUERY}"),
            Format::Slack,
            Duration::from_secs(10),
        ),
        &fixture::failure(),
    );
    assert!(!a.ok, "{a:?}");
    // Retryable: the request never reached the receiver, and every cause (a
    // CA not installed yet, a certificate being renewed, a clock off) is
    // fixed outside jobctl; the next attempt after the fix delivers.
    assert!(a.retryable, "{a:?}");
    assert!(
        a.detail
            .starts_with(&format!("TLS with https://localhost:{port} failed:")),
        "{a:?}"
    );
    assert!(a.detail.contains("UnknownIssuer"), "{a:?}");
    no_secret(&a);
    assert_eq!(
        hook::requests(dir.path()).len(),
        0,
        "a request went through"
    );
}
