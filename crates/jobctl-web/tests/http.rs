//! jobctl-web without systemd: the binary, on a unix socket and TCP of its
//! own, in per-user mode in a scratch home. What needs a real systemd (the
//! jobs, socket activation, "run now", other users) is in
//! tests/systemd_e2e/web.rs.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WEB: &str = env!("CARGO_BIN_EXE_jobctl-web");

struct Server {
    child: Child,
    socket: PathBuf,
    tcp: String,
    home: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// A token in jobctl's form, made of `pair` repeated (one per token in a
/// test, so that each is told apart).
fn token_of(pair: &str) -> String {
    format!("jobctl_{}", pair.repeat(32))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(name: &str, config: &str, tokens: &[(&str, &str, &str)]) -> Server {
    let home = std::env::temp_dir().join(format!("jobctl-web-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let config_dir = home.join(".config/jobctl");
    std::fs::create_dir_all(config_dir.join("jobs.d")).unwrap();
    std::fs::write(config_dir.join("config.toml"), config).unwrap();
    if !tokens.is_empty() {
        let stored: Vec<_> = tokens
            .iter()
            .map(
                |(name, scopes, token)| jobctl_core::web::tokens::StoredToken {
                    name: name.to_string(),
                    scopes: jobctl_core::web::tokens::parse_scopes(scopes).unwrap(),
                    filter: Default::default(),
                    hash: jobctl_core::web::tokens::hash(token),
                },
            )
            .collect();
        let path = config_dir.join("web-tokens");
        std::fs::write(&path, jobctl_core::web::tokens::format_file(&stored)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // A folder the server makes, as $XDG_RUNTIME_DIR/jobctl would be.
    let socket = home.join("run/jobctl/web.sock");
    let tcp = format!("127.0.0.1:{}", free_port());
    let child = Command::new(WEB)
        .args(["--user", "--socket"])
        .arg(&socket)
        .args(["--listen", &tcp])
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        // No user manager, whatever the machine running the tests has.
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(socket.exists() && std::net::TcpStream::connect(&tcp).is_ok()) {
        assert!(
            Instant::now() < deadline,
            "jobctl-web did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        child,
        socket,
        tcp,
        home,
    }
}

/// Run by hand in per-user mode, the server makes its socket as the shipped
/// user unit does: 0600 in a folder of 0700, nobody else's to reach.
#[test]
fn a_per_user_socket_bound_by_hand_is_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let s = start("own-socket", "", &[]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.socket), 0o600, "the socket's mode");
    assert_eq!(mode(s.socket.parent().unwrap()), 0o700, "its folder's mode");
}

/// One HTTP/1.1 exchange: status, headers (lowercase names), body.
fn exchange(stream: &mut dyn ReadWrite, request: &str) -> (u16, String, String) {
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn request(method: &str, path: &str, headers: &[&str]) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("Content-Length: 0\r\n\r\n");
    r
}

fn unix(s: &Server, method: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
    let mut stream = std::os::unix::net::UnixStream::connect(&s.socket).unwrap();
    exchange(&mut stream, &request(method, path, headers))
}

fn tcp(s: &Server, method: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
    let mut stream = std::net::TcpStream::connect(&s.tcp).unwrap();
    exchange(&mut stream, &request(method, path, headers))
}

#[test]
fn tcp_needs_a_token_of_the_right_scope() {
    let token = token_of("ab");
    let s = start(
        "tcp",
        "[web]\nactions = true\n",
        &[("reader", "read", &token)],
    );
    let bearer = format!("Authorization: Bearer {token}");

    let (status, head, _) = tcp(&s, "GET", "/api/v1/runs", &[]);
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    let (status, _, _) = tcp(
        &s,
        "GET",
        "/api/v1/runs",
        &["Authorization: Bearer jobctl_wrong"],
    );
    assert_eq!(status, 401);

    let (status, head, body) = tcp(&s, "GET", "/api/v1/runs", &[&bearer]);
    assert_eq!(status, 200, "{body}");
    assert_no_runs(&body);
    assert!(
        head.contains("content-security-policy: default-src 'none';"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");

    // A read token may not act.
    let (status, _, body) = tcp(&s, "POST", "/api/v1/jobs/nightly/run", &[&bearer]);
    assert_eq!(status, 403, "{body}");
}

#[test]
fn the_owner_reads_on_the_unix_socket_and_actions_need_csrf() {
    let s = start("unix", "[web]\nactions = true\n", &[]);
    let (status, _, body) = unix(&s, "GET", "/api/v1/runs?limit=5", &[]);
    assert_eq!(status, 200, "{body}");
    assert_no_runs(&body);

    let (status, _, body) = unix(&s, "POST", "/api/v1/jobs/nightly/run", &[]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");

    // A value that looks like an option stays a value.
    let (status, _, body) = unix(&s, "GET", "/api/v1/runs?since=--db%3D/etc/shadow", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid --since"), "{body}");

    // /metrics is `jobctl metrics` (its success is checked on real systemd,
    // tests/systemd_e2e/web.rs); with no user manager to ask, the command's
    // own error document comes back, as a server error.
    let (status, _, body) = unix(&s, "GET", "/metrics", &[]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("no user session bus"), "{body}");
}

#[test]
fn actions_are_off_unless_configured() {
    let s = start("off", "", &[]);
    let (status, _, body) = unix(&s, "GET", "/api/v1/csrf", &[]);
    assert_eq!(status, 200, "{body}");
    let csrf: serde_json::Value = serde_json::from_str(&body).unwrap();
    let header = format!("X-Jobctl-Csrf: {}", csrf["csrf"].as_str().unwrap());
    let (status, _, body) = unix(&s, "POST", "/api/v1/jobs/nightly/run", &[&header]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("actions are off"), "{body}");
}

#[test]
fn an_invalid_web_section_stops_the_server_naming_file_line_and_key() {
    let home = std::env::temp_dir().join(format!("jobctl-web-test-{}-bad", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(home.join(".config/jobctl")).unwrap();
    std::fs::write(
        home.join(".config/jobctl/config.toml"),
        "[web]\nread_grup = \"x\"\n",
    )
    .unwrap();
    let out = Command::new(WEB)
        .args(["--user", "--socket"])
        .arg(home.join("s.sock"))
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&home);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("config.toml:2:1")
            && err.contains("web.read_grup")
            && err.contains("read_group"),
        "{err}"
    );
}

/// The answer of `/api/v1/runs` on an empty history: the CLI's
/// `jobctl.history/v1` document (docs/json.md), with no run.
fn assert_no_runs(body: &str) {
    let doc: serde_json::Value = serde_json::from_str(body).expect(body);
    assert_eq!(doc["schema"], "jobctl.history/v1", "{body}");
    assert_eq!(doc["runs"], serde_json::json!([]), "{body}");
    assert!(doc.get("host").is_some(), "{body}");
}

/// `[web.trusted_proxy]`: the header is the caller only from a listed peer,
/// with the scopes written for it; from anyone else (here the owner on the
/// unix socket, who could otherwise read) it is refused, whatever else the
/// request carries.
#[test]
fn a_trusted_proxys_user_header_is_believed_only_from_its_peers() {
    let token = token_of("cd");
    let s = start(
        "proxy",
        "[web]\nactions = true\n[web.trusted_proxy]\nheader = \"X-Remote-User\"\nfrom = [\"127.0.0.1\"]\nusers = { alice = [\"read\"] }\n",
        &[("reader", "read", &token)],
    );
    let (status, _, body) = tcp(&s, "GET", "/api/v1/runs", &["X-Remote-User: alice"]);
    assert_eq!(status, 200, "{body}");
    assert_no_runs(&body);
    // No scope unless written.
    let (status, _, body) = tcp(&s, "GET", "/api/v1/runs", &["X-Remote-User: mallory"]);
    assert_eq!(status, 403, "{body}");
    // alice may read, not run.
    let (status, _, body) = tcp(
        &s,
        "POST",
        "/api/v1/jobs/nightly/run",
        &["X-Remote-User: alice"],
    );
    assert_eq!(status, 403, "{body}");
    for bad in [
        "X-Remote-User: al ice",
        "X-Remote-User: alice\u{7f}",
        "X-Remote-User: ",
    ] {
        let (status, _, body) = tcp(&s, "GET", "/api/v1/runs", &[bad]);
        assert_eq!(status, 400, "{bad:?}: {body}");
    }
    let (status, _, body) = tcp(
        &s,
        "GET",
        "/api/v1/runs",
        &["X-Remote-User: alice", "X-Remote-User: bob"],
    );
    assert_eq!(status, 400, "twice: {body}");
    let long = format!("X-Remote-User: {}", "a".repeat(129));
    let (status, _, body) = tcp(&s, "GET", "/api/v1/runs", &[&long]);
    assert_eq!(status, 400, "too long: {body}");
    // The unix socket is not a listed peer: its header is refused, even for
    // the owner, and with a valid token on TCP the header still decides.
    let (status, _, body) = unix(&s, "GET", "/api/v1/runs", &[]);
    assert_eq!(status, 200, "the owner without the header: {body}");
    let (status, _, body) = unix(&s, "GET", "/api/v1/runs", &["X-Remote-User: alice"]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("trusted proxy"), "{body}");
    let (status, _, body) = tcp(
        &s,
        "GET",
        "/api/v1/runs",
        &[
            "X-Remote-User: mallory",
            &format!("Authorization: Bearer {token}"),
        ],
    );
    assert_eq!(status, 403, "{body}");
}

#[test]
fn a_proxy_not_listed_is_refused_and_its_actions_need_csrf() {
    let s = start(
        "proxy-other",
        "[web]\nactions = true\n[web.trusted_proxy]\nheader = \"X-Remote-User\"\nfrom = [\"10.0.0.0/8\"]\nscopes = [\"read\", \"run\"]\n",
        &[],
    );
    let (status, _, body) = tcp(&s, "GET", "/api/v1/runs", &["x-remote-user: alice"]);
    assert_eq!(status, 403, "127.0.0.1 is not in 10.0.0.0/8: {body}");
    let s = start(
        "proxy-csrf",
        "[web]\nactions = true\n[web.trusted_proxy]\nheader = \"X-Remote-User\"\nfrom = [\"127.0.0.0/8\"]\nscopes = [\"read\", \"run\"]\n",
        &[],
    );
    // A browser's session with the proxy is ambient: an action needs the
    // CSRF token of this user (not another's).
    let (status, _, body) = tcp(
        &s,
        "POST",
        "/api/v1/jobs/nightly/run",
        &["X-Remote-User: alice"],
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    let (_, _, body) = tcp(&s, "GET", "/api/v1/csrf", &["X-Remote-User: bob"]);
    let bobs: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (status, _, body) = tcp(
        &s,
        "POST",
        "/api/v1/jobs/nightly/run",
        &[
            "X-Remote-User: alice",
            &format!("X-Jobctl-Csrf: {}", bobs["csrf"].as_str().unwrap()),
        ],
    );
    assert_eq!(status, 403, "another user's CSRF token: {body}");
    assert!(body.contains("CSRF"), "{body}");
}

#[test]
fn an_invalid_trusted_proxy_stops_the_server_naming_file_line_and_key() {
    let home =
        std::env::temp_dir().join(format!("jobctl-web-test-{}-badproxy", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(home.join(".config/jobctl")).unwrap();
    std::fs::write(
        home.join(".config/jobctl/config.toml"),
        "[web.trusted_proxy]\nheader = \"X-Remote-User\"\nfrom = [\"127.0.0.1/33\"]\n",
    )
    .unwrap();
    let out = Command::new(WEB)
        .args(["--user", "--socket"])
        .arg(home.join("s.sock"))
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&home);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("config.toml:3:9") && err.contains("web.trusted_proxy.from[0]"),
        "{err}"
    );
}

/// Found by trying the API as a newcomer (trial2): bad input in the query
/// string or the path is answered like every other invalid input, as the
/// JSON error document (400) naming what was wrong, and a refused value of
/// the CLI's says which values it takes. axum's own answer was a
/// `text/plain` line; clap's list of values was cut off.
#[test]
fn bad_query_and_path_values_are_json_errors_that_say_what_to_send() {
    let s = start("badinput", "", &[]);
    let json_400 = |path: &str| {
        let (status, head, body) = unix(&s, "GET", path, &[]);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            head.contains("content-type: application/json"),
            "{path}: {head}"
        );
        let doc: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"));
        doc
    };
    for (path, names) in [
        ("/api/v1/runs?limit=abc", "limit"),
        ("/api/v1/runs?limit=1.5", "limit"),
        ("/api/v1/runs?failed=maybe", "failed"),
        ("/api/v1/runs?colour=red", "colour"),
        ("/api/v1/jobs?status=failed", "status"),
        ("/api/v1/notifications?limit=-1", "limit"),
        ("/api/v1/jobs/x/runs/0123/output?tail=x", "tail"),
    ] {
        let doc = json_400(path);
        let error = doc["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("invalid query string: ") && error.contains(names),
            "{path}: {doc}"
        );
    }
    let doc = json_400("/api/v1/runs/%FF");
    assert!(
        doc["error"].as_str().unwrap().starts_with("invalid path"),
        "{doc}"
    );
    // A page's path: the error page, not a line of text/plain.
    let (status, head, body) = unix(&s, "GET", "/jobs/%FF", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(head.contains("content-type: text/html"), "{head}");

    // The CLI's refusal keeps its list of values, as a hint.
    let doc = json_400("/api/v1/runs?status=bogus");
    assert_eq!(doc["schema"], "jobctl.error/v1", "{doc}");
    assert!(
        !doc["error"].as_str().unwrap().starts_with("error: "),
        "{doc}"
    );
    let hints = doc["hints"].to_string();
    assert!(
        hints.contains("possible values: running, success, failed"),
        "{doc}"
    );

    // A cursor that is not one says where cursors come from.
    let doc = json_400("/api/v1/runs?cursor=zzz");
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("Jobctl-Next-Cursor"),
        "{doc}"
    );
}

/// Found by trying the API as a newcomer (trial2): every refusal said only
/// "not allowed for this caller" or "authentication required", also for a
/// token that was sent but is unknown. Each now says what is missing and
/// how to get it.
#[test]
fn refusals_say_what_the_caller_lacks_and_how_to_get_it() {
    let token = token_of("cd");
    let s = start(
        "refusals",
        "[web]\nactions = true\n",
        &[("grafana", "read", &token)],
    );
    let bearer = format!("Authorization: Bearer {token}");

    let (status, head, body) = tcp(&s, "POST", "/api/v1/jobs/nightly/run", &[&bearer]);
    assert_eq!(status, 403, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        body.contains("token grafana does not have the `run` scope")
            && body.contains("jobctl token create --scope read,run"),
        "{body}"
    );

    // A token that is not (or no longer) in the file: 401, saying so.
    let (status, head, body) = tcp(
        &s,
        "GET",
        "/api/v1/jobs",
        &[&format!("Authorization: Bearer jobctl_{}", "00".repeat(32))],
    );
    assert_eq!(status, 401, "{body}");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert!(head.contains("invalid_token"), "{head}");
    assert!(
        body.contains("not known") && body.contains("jobctl token list"),
        "{body}"
    );
    // Another scheme than Bearer.
    let (status, _, body) = tcp(&s, "GET", "/api/v1/jobs", &["Authorization: Basic YTpi"]);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Bearer TOKEN"), "{body}");
    // No credentials at all: as before.
    let (status, _, body) = tcp(&s, "GET", "/api/v1/jobs", &[]);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("authentication required"), "{body}");
}

/// Found by trying `--user` mode (trial2): "set actions = true in [web] of
/// the configuration" did not say which file (the user's own).
#[test]
fn actions_off_names_the_configuration_file() {
    let s = start("offfile", "", &[]);
    let (_, _, body) = unix(&s, "GET", "/api/v1/csrf", &[]);
    let csrf: serde_json::Value = serde_json::from_str(&body).unwrap();
    let header = format!("X-Jobctl-Csrf: {}", csrf["csrf"].as_str().unwrap());
    let (status, _, body) = unix(&s, "POST", "/api/v1/jobs/nightly/run", &[&header]);
    assert_eq!(status, 403, "{body}");
    let file = s.home.join(".config/jobctl/config.toml");
    assert!(
        body.contains(&format!("actions = true in [web] of {}", file.display())),
        "{body}"
    );
}

/// The pages' refusals said only "Not allowed for this caller." (trial2):
/// they now say what is missing, as the API's do.
#[test]
fn page_refusals_say_what_the_caller_lacks() {
    let runner = token_of("ef");
    let reader = token_of("12");
    let s = start(
        "pagerefusals",
        "[web]\nactions = true\n",
        &[("runner", "run", &runner), ("reader", "read", &reader)],
    );
    let (status, head, body) = tcp(
        &s,
        "GET",
        "/",
        &[&format!("Authorization: Bearer {runner}")],
    );
    assert_eq!(status, 403, "{body}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        body.contains("token runner does not have the `read` scope"),
        "{body}"
    );

    // The "Run now" form, posted with a read token.
    let form = "csrf=x";
    let request = format!(
        "POST /jobs/nightly/run HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Bearer {reader}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let mut stream = std::net::TcpStream::connect(&s.tcp).unwrap();
    let (status, _, body) = exchange(&mut stream, &request);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("token reader does not have the `run` scope"),
        "{body}"
    );
}

/// A refused sign-in showed the empty form again, with nothing to say why
/// (trial2): the page now says the token is not known.
#[test]
fn a_refused_sign_in_says_why() {
    let s = start("signin", "", &[]);
    let form = "token=jobctl_mistyped";
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let mut stream = std::net::TcpStream::connect(&s.tcp).unwrap();
    let (status, head, body) = exchange(&mut stream, &request);
    assert_eq!(status, 401, "{body}");
    assert!(!head.contains("set-cookie"), "{head}");
    assert!(body.contains("This token is not known here"), "{body}");
}

/// The jobs page's status filter took any word and showed "0 jobs" for a
/// status no job can have (trial2): it now says which statuses there are,
/// escaped.
#[test]
fn the_jobs_page_refuses_a_status_that_does_not_exist() {
    let reader = token_of("34");
    let s = start("statusfilter", "[web]\n", &[("reader", "read", &reader)]);
    let auth = format!("Authorization: Bearer {reader}");
    let (status, head, body) = tcp(&s, "GET", "/?status=%3Cb%3Ebogus", &[&auth]);
    assert_eq!(status, 400, "{body}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        body.contains(
            "There is no status &quot;&lt;b&gt;bogus&quot;: a run's status (running, \
             success, failed, error, timeout, killed, lost, expired) or a job's state \
             (active, inactive,"
        ),
        "{body}"
    );
    assert!(!body.contains("<b>bogus"), "{body}");
}

/// A POST with a body, as `request` sends none.
fn post_body(
    s: &Server,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut r = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = content_type {
        r.push_str(&format!("Content-Type: {t}\r\n"));
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut stream = std::os::unix::net::UnixStream::connect(&s.socket).unwrap();
    exchange(&mut stream, &r)
}

/// Found by trying the dashboard as a newcomer (trial3): the "Run now" and
/// sign-in forms posted without their field, or without a form at all,
/// were answered by axum's own text/plain lines (422 "Failed to deserialize
/// form body: missing field `csrf`", 415 "Form requests must have
/// `Content-Type: …`"), statuses docs/dashboard.md does not list. A form
/// without its CSRF token is now the documented 403, and a body that is not
/// a form the error page (400).
#[test]
fn a_form_without_its_fields_gets_the_documented_answers() {
    let s = start("forms", "[web]\nactions = true\n", &[]);
    let form = Some("application/x-www-form-urlencoded");
    for (content_type, body) in [(form, "foo=bar"), (form, "")] {
        let (status, head, page) = post_body(&s, "/jobs/nightly/run", content_type, body);
        assert_eq!(status, 403, "{body:?}: {page}");
        assert!(head.contains("content-type: text/html"), "{head}");
        assert!(page.contains("Missing or wrong CSRF token"), "{page}");
    }
    for (path, content_type, body) in [
        ("/jobs/nightly/run", None, ""),
        ("/jobs/nightly/run", Some("application/json"), "{}"),
        ("/login", None, ""),
        ("/login", form, "foo=bar"),
    ] {
        let (status, head, page) = post_body(&s, path, content_type, body);
        assert_eq!(status, 400, "{path} {content_type:?} {body:?}: {page}");
        assert!(head.contains("content-type: text/html"), "{head}");
        assert!(page.contains("invalid form"), "{page}");
    }
}

/// A method a route does not take was a 405 with an empty body (trial3):
/// it now says so, as JSON on the API and the error page elsewhere, and
/// keeps the `Allow` header.
#[test]
fn a_wrong_method_says_which_methods_the_route_takes() {
    let s = start("methods", "", &[]);
    let (status, head, body) = unix(&s, "DELETE", "/api/v1/jobs/nightly", &[]);
    assert_eq!(status, 405, "{body}");
    assert!(head.contains("allow: get,head"), "{head}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["error"], "method DELETE is not allowed here; this route takes GET,HEAD",
        "{doc}"
    );
    let (status, head, body) = unix(&s, "GET", "/api/v1/jobs/nightly/run", &[]);
    assert_eq!(status, 405, "{body}");
    assert!(head.contains("allow: post"), "{head}");
    assert!(body.contains("this route takes POST"), "{body}");
    let (status, head, body) = unix(&s, "POST", "/health", &[]);
    assert_eq!(status, 405, "{body}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(body.contains("this page takes GET,HEAD"), "{body}");
}

/// A `[web]` group that does not exist stopped the server with "group x
/// (from [web] in the configuration) does not exist", after `jobctl
/// validate` had said the file was clean (trial3): the error now names the
/// key and the file and says how to fix it.
#[test]
fn a_group_that_does_not_exist_names_its_key_file_and_fix() {
    let home = std::env::temp_dir().join(format!("jobctl-web-test-{}-group", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(home.join(".config/jobctl")).unwrap();
    let config = home.join(".config/jobctl/config.toml");
    std::fs::write(&config, "[web]\naction_group = \"no-such-group-jobctl\"\n").unwrap();
    let out = Command::new(WEB)
        .args(["--user", "--socket"])
        .arg(home.join("s.sock"))
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&home);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "group no-such-group-jobctl (`web.action_group` in {}) does not exist",
            config.display()
        )) && err.contains("groupadd no-such-group-jobctl"),
        "{err}"
    );
}

/// A token of scope `run` refused a read was told "create one that has:
/// jobctl token create --scope read", a token that could no longer run
/// (trial3). The hint now keeps the token's own scopes.
#[test]
fn a_refusal_hint_keeps_the_tokens_own_scopes() {
    let runner = token_of("ab");
    let s = start(
        "hintscopes",
        "[web]\nactions = true\n",
        &[("runner", "run,manage", &runner)],
    );
    let (status, _, body) = tcp(
        &s,
        "GET",
        "/api/v1/jobs",
        &[&format!("Authorization: Bearer {runner}")],
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(
            "token runner does not have the `read` scope (it has run,manage); \
             create one that has: jobctl token create --scope read,run,manage"
        ),
        "{body}"
    );
}

/// A POST of the sign-in form over TCP.
fn sign_in_with(s: &Server, token: &str) -> (u16, String, String) {
    let form = format!("token={token}");
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let mut stream = std::net::TcpStream::connect(&s.tcp).unwrap();
    exchange(&mut stream, &request)
}

/// A token with only the `run` scope signed in at /login without a word,
/// then every page and /api/v1/csrf answered 403 (polish): it could never
/// be used in a browser. /login now refuses it, saying the pages need
/// `read` and how to create a token that has it; a read token still signs
/// in.
#[test]
fn a_token_without_read_is_refused_at_sign_in_with_how_to_get_one() {
    let runner = token_of("56");
    let reader = token_of("78");
    let s = start(
        "signinscope",
        "[web]\nactions = true\n",
        &[("runner", "run", &runner), ("reader", "read,run", &reader)],
    );
    let (status, head, body) = sign_in_with(&s, &runner);
    assert_eq!(status, 403, "{body}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(!head.contains("set-cookie"), "{head}");
    assert!(
        body.contains("token runner does not have the `read` scope (it has run)")
            && body.contains("Not signed in: every page needs the `read` scope")
            && body.contains("jobctl token create --scope read,run --name NAME"),
        "{body}"
    );
    let (status, head, body) = sign_in_with(&s, &reader);
    assert_eq!(status, 303, "{body}");
    assert!(head.contains("set-cookie: jobctl_token="), "{head}");
}

/// `?limit=-1` said "invalid digit found in string" (polish): a number in
/// the query string that is not one says which parameter, what was given
/// and the numbers it takes.
#[test]
fn a_number_that_is_not_one_names_the_parameter_the_value_and_the_range() {
    let s = start("numbers", "", &[]);
    for (path, want) in [
        (
            "/api/v1/runs?limit=-1",
            "invalid query string: limit: \"-1\" is not a whole number; send 1 to 1000 \
             (0 is taken as 1, more than 1000 as 1000)",
        ),
        (
            "/api/v1/notifications?limit=ten",
            "invalid query string: limit: \"ten\" is not a whole number; send 1 to 1000 \
             (0 is taken as 1, more than 1000 as 1000)",
        ),
        (
            "/api/v1/jobs/x/runs/0123/output?tail=-5",
            "invalid query string: tail: \"-5\" is not a whole number; send 0 or more",
        ),
    ] {
        let (status, head, body) = unix(&s, "GET", path, &[]);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            head.contains("content-type: application/json"),
            "{path}: {head}"
        );
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["error"], want, "{path}");
    }
    // Out of range is still taken, as documented.
    for path in ["/api/v1/runs?limit=0", "/api/v1/runs?limit=5000"] {
        let (status, _, body) = unix(&s, "GET", path, &[]);
        assert_eq!(status, 200, "{path}: {body}");
    }
}

/// The API refused an unknown query parameter, the pages ignored it
/// (`/?team=x&zzz=1` was 200; polish): a page now refuses it too, naming
/// it and the parameters the page takes.
#[test]
fn pages_refuse_a_parameter_they_do_not_take() {
    let s = start("pageparams", "", &[]);
    for (path, want) in [
        (
            "/?team=x&zzz=1",
            "unknown field `zzz`, expected one of `owner`, `team`, `tag`, `status`",
        ),
        (
            "/health?zzz=1",
            "unknown parameter `zzz`: this page takes none",
        ),
        (
            "/jobs/nightly?zzz=1",
            "unknown parameter `zzz`: this page takes none",
        ),
        (
            "/jobs/nightly/runs/0123?zzz=1",
            "unknown parameter `zzz`: this page takes none",
        ),
        (
            "/login?zzz=1",
            "unknown parameter `zzz`: this page takes none",
        ),
    ] {
        let (status, head, body) = unix(&s, "GET", path, &[]);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(head.contains("content-type: text/html"), "{path}: {head}");
        assert!(
            body.contains("invalid query string: ") && body.contains(want),
            "{path}: {body}"
        );
    }
    // What the jobs page's own form sends is taken.
    for path in ["/?team=x&owner=&tag=&status=", "/login"] {
        let (_, _, body) = unix(&s, "GET", path, &[]);
        assert!(!body.contains("invalid query string"), "{path}: {body}");
    }
}
