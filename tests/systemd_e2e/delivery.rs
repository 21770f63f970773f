//! Notification delivery (crate jobctl-notify) on real parts inside a
//! throwaway systemd sandbox, whose overlay takes every change to /etc and
//! /var with it: Debian's exim4 delivering a jobctl mail to a local mailbox,
//! and HTTPS verified against the host's CA store after
//! `update-ca-certificates` installed a throwaway CA. Plus, on the host, the
//! fakehook receiver binary (crates/fakehook) that the event tests use.
//!
//! The delivering code runs inside the sandbox as this very test binary,
//! started again with `JOBCTL_NOTIFY_E2E_CHILD` set (`main` hands over to
//! [`child`] before anything else): it calls `jobctl_notify::deliver` with
//! the sandbox's /etc and /usr/sbin/sendmail and prints the attempt as JSON.
//! (Until issue 12's leftover was folded in, this was a test binary of its
//! own, `tests/notify_e2e.rs`, with a sandbox of its own.)

use std::process::{Command, Stdio};

use jobctl_notify::{Channel, Format, Notification, deliver};

use super::*;
use crate::{fixture, hook, tls};

pub const CHILD: &str = "JOBCTL_NOTIFY_E2E_CHILD";
const FAKEHOOK: &str = env!("CARGO_BIN_EXE_fakehook");

impl Env {
    /// Runs this binary inside the sandbox in child `mode` with `vars`;
    /// returns the attempts it printed, one JSON object a line.
    fn child(&self, mode: &str, vars: &[(&str, &str)]) -> Result<Vec<Value>, Failed> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let out = self
            .sb
            .command(&exe)
            .env(CHILD, mode)
            .envs(vars.iter().copied())
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "child {mode} failed ({}): {stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).map_err(|e| Failed::from(format!("{e}: {l}"))))
            .collect()
    }
}

/// Inside the sandbox: deliver and print the attempts.
pub fn child(mode: &str) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"));
    let attempts = match mode {
        "mail" => {
            let channel = Channel::Mail {
                to: vec![var("TO")],
                from: None,
                sendmail: PathBuf::from("/usr/sbin/sendmail"),
                timeout: Duration::from_secs(60),
            };
            vec![deliver(&channel, &mail_notification())]
        }
        "https" => {
            let pki = tls::Pki {
                ca_cert: PathBuf::from(var("PKI")).join("ca.crt"),
                server_cert: PathBuf::from(var("PKI")).join("server.crt"),
                server_key: PathBuf::from(var("PKI")).join("server.key"),
            };
            let hook =
                hook::Hook::new(Path::new(&var("HOOK")), vec![hook::Reply::Status(200)]).unwrap();
            let port = tls::spawn_tls(&hook, &pki);
            ["localhost", "127.0.0.1"]
                .iter()
                .map(|host| {
                    let channel = Channel::Webhook {
                        url: format!("https://{host}:{port}/services/SECRET?token=SECRET"),
                        format: Format::Slack,
                        timeout: Duration::from_secs(20),
                    };
                    deliver(&channel, &fixture::failure())
                })
                .collect()
        }
        other => panic!("unknown child mode {other}"),
    };
    for a in attempts {
        println!("{}", serde_json::to_string(&a).unwrap());
    }
}

/// A failure whose job name, summary and output try to add headers and
/// recipients and carry an escape sequence.
fn mail_notification() -> Notification {
    Notification {
        summary: "nightly-backup FAILED on db1 (exit 3) — späť\nBcc: victim@example.com".into(),
        job: "nightly-backup\r\nBcc: victim@example.com".into(),
        output_tail: Some("copying…\n\u{1b}[31merror\u{1b}[0m: disk full\n.\nlast line\n".into()),
        ..fixture::failure()
    }
}

pub fn mail_through_exim_reaches_the_local_mailbox(env: &Env) -> R {
    let user = "jobctlmail";
    env.sh(&format!(
        "id {user} >/dev/null 2>&1 || useradd --create-home {user}; rm -f /var/mail/{user}"
    ))?;
    let attempts = env.child("mail", &[("TO", &format!("{user}@localhost"))])?;
    let a = &attempts[0];
    if a["ok"] != true || a["exit_status"] != 0 {
        return Err(format!("sendmail refused the message: {a}").into());
    }
    let mut mbox = String::new();
    env.wait_for(
        &format!("the mail in /var/mail/{user}"),
        Duration::from_secs(60),
        || {
            mbox = env.sh(&format!("cat /var/mail/{user} 2>/dev/null || true"))?;
            Ok(mbox.contains("\n\n") && mbox.contains("Sent by jobctl"))
        },
    )
    .map_err(|e| {
        format!(
            "{}; exim's log:\n{}",
            e.message().unwrap_or(""),
            env.sh("cat /var/log/exim4/mainlog 2>&1 || true")
                .unwrap_or_default()
        )
    })?;
    // One message, the mbox "From " line first.
    if !mbox.starts_with("From ") || mbox.matches("\nFrom ").count() != 0 {
        return Err(format!("not one message:\n{mbox}").into());
    }
    let (head, body) = mbox.split_once("\n\n").unwrap();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines().skip(1) {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = headers.last_mut() {
                last.1.push_str(line);
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.to_string(), v.trim().to_string()));
        }
    }
    let get = |name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let check = |ok: bool, what: &str| -> R {
        if ok {
            Ok(())
        } else {
            Err(format!("{what}:\n{mbox}").into())
        }
    };
    check(get("To") == [format!("{user}@localhost")], "To")?;
    check(
        get("Bcc").is_empty() && !mbox.contains("\nBcc:"),
        "an injected Bcc",
    )?;
    check(
        get("Auto-Submitted") == ["auto-generated"],
        "Auto-Submitted",
    )?;
    check(
        get("Content-Type") == ["text/plain; charset=utf-8"],
        "Content-Type",
    )?;
    check(
        get("Content-Transfer-Encoding") == ["quoted-printable"],
        "Content-Transfer-Encoding",
    )?;
    check(
        get("Date").len() == 1 && get("Message-ID").len() == 1,
        "Date and Message-ID",
    )?;
    // exim added what a mail system adds: it read the message as headers.
    check(
        get("Received").len() == 1 && get("Envelope-to") == [format!("{user}@localhost")],
        "exim's headers",
    )?;
    // The subject: "[jobctl] " then encoded-words of the UTF-8 summary.
    let subject = get("Subject").concat();
    let decoded = decode_subject(&subject);
    check(
        decoded == "[jobctl] nightly-backup FAILED on db1 (exit 3) — späť Bcc: victim@example.com",
        &format!("Subject {subject:?} decoded as {decoded:?}"),
    )?;
    let text = decode_qp(body.trim_end_matches('\n'));
    for want in [
        "Status:            failed (exit 3)",
        "Job:               nightly-backup Bcc: victim@example.com",
        "To see more:\n  journalctl _SYSTEMD_INVOCATION_ID=0123456789abcdef0123456789abcdef",
        "Output (last lines):\n  copying…\n  \\x1b[31merror\\x1b[0m: disk full\n  .\n  last line\n",
    ] {
        check(
            text.contains(want),
            &format!("body without {want:?}: {text}"),
        )?;
    }
    check(!mbox.contains('\u{1b}'), "a raw ESC")?;
    // Exactly one recipient: nothing went to the injected address.
    let log = env.sh("cat /var/log/exim4/mainlog")?;
    if log.contains("victim") || log.matches(" => ").count() != 1 {
        return Err(format!("exim's log shows other deliveries:\n{log}").into());
    }
    Ok(())
}

fn decode_subject(s: &str) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    let mut last_encoded = false;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        match word
            .strip_prefix("=?UTF-8?B?")
            .and_then(|w| w.strip_suffix("?="))
        {
            Some(b64) => {
                if !out.is_empty() && !last_encoded {
                    out.push(' ');
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap_or_default();
                out.push_str(&String::from_utf8_lossy(&bytes));
                last_encoded = true;
            }
            None => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(word);
                last_encoded = false;
            }
        }
    }
    out
}

fn decode_qp(s: &str) -> String {
    let joined = s.replace("=\n", "");
    let b = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len() + 1
            && let Some(v) = std::str::from_utf8(&b[i + 1..(i + 3).min(b.len())])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn https_trusts_exactly_the_hosts_ca_store(env: &Env) -> R {
    let dir = env.scratch.join("https");
    let _ = fs::remove_dir_all(&dir);
    // A certificate for the name localhost only: 127.0.0.1 must not match.
    let pki = tls::make_pki(&dir.join("pki"), "DNS:localhost");
    let ca = pki.ca_cert.display().to_string();
    let run = |hook: &str| -> Result<Vec<Value>, Failed> {
        let hook_dir = dir.join(hook);
        fs::create_dir_all(&hook_dir).unwrap();
        let attempts = env.child(
            "https",
            &[
                ("PKI", dir.join("pki").to_str().unwrap()),
                ("HOOK", hook_dir.to_str().unwrap()),
            ],
        )?;
        if attempts.len() != 2 {
            return Err(format!("{attempts:?}").into());
        }
        for a in &attempts {
            if a["detail"].as_str().unwrap_or_default().contains("SECRET") {
                return Err(format!("a secret in the detail: {a}").into());
            }
        }
        Ok(attempts)
    };
    // Before: the host's store does not know the CA.
    let before = run("before")?;
    for a in &before {
        if a["ok"] != false
            || a["retryable"] != true
            || !a["detail"].as_str().unwrap().contains("UnknownIssuer")
        {
            return Err(format!("an unknown CA was not refused: {a}").into());
        }
    }
    if !hook::requests(&dir.join("before")).is_empty() {
        return Err("a request went through an unverified connection".into());
    }
    // Installed the Debian way, in the sandbox's /etc only.
    env.sh(&format!(
        "cp {ca} /usr/local/share/ca-certificates/jobctl-e2e-test.crt && update-ca-certificates >/dev/null"
    ))?;
    let after = run("after");
    // Leave the store as it was for any case that follows.
    env.sh("rm -f /usr/local/share/ca-certificates/jobctl-e2e-test.crt && update-ca-certificates --fresh >/dev/null")?;
    let after = after?;
    let (named, by_ip) = (&after[0], &after[1]);
    if named["ok"] != true || named["http_status"] != 200 {
        return Err(format!("the installed CA was not trusted: {named}").into());
    }
    if by_ip["ok"] != false
        || !by_ip["detail"]
            .as_str()
            .unwrap()
            .contains("certificate not valid for name \"127.0.0.1\"")
    {
        return Err(format!("a certificate for another name was accepted: {by_ip}").into());
    }
    let reqs = hook::requests(&dir.join("after"));
    if reqs.len() != 1 || reqs[0].target != "/services/SECRET?token=SECRET" {
        return Err(format!("the receiver got {reqs:?}").into());
    }
    let body: Value = serde_json::from_slice(&reqs[0].body).map_err(|e| e.to_string())?;
    if body != jobctl_notify::payload_at(Format::Slack, &fixture::failure(), "") {
        return Err(format!("not the Slack body: {body}").into());
    }
    Ok(())
}

/// The receiver binary the event tests start: records each request whole,
/// answers the configured statuses in order.
pub fn fakehook_records_requests_and_answers_as_told() -> R {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut child = Command::new(FAKEHOOK)
        .args(["--dir", dir.path().to_str().unwrap(), "500", "200"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let result = (|| -> R {
        let port_file = dir.path().join("port");
        let deadline = Instant::now() + Duration::from_secs(10);
        let port: u16 = loop {
            if let Ok(p) = fs::read_to_string(&port_file) {
                break p.trim().parse().map_err(|e| format!("{e}"))?;
            }
            if Instant::now() > deadline {
                return Err("fakehook never wrote its port".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let channel = Channel::Webhook {
            url: format!("http://127.0.0.1:{port}/hook?x=1"),
            format: Format::Generic,
            timeout: Duration::from_secs(10),
        };
        let first = deliver(&channel, &fixture::failure());
        let second = deliver(&channel, &fixture::failure());
        if first.http_status != Some(500)
            || !first.retryable
            || second.http_status != Some(200)
            || !second.ok
        {
            return Err(format!("{first:?} {second:?}").into());
        }
        let reqs = hook::requests(dir.path());
        if reqs.len() != 2
            || reqs
                .iter()
                .any(|r| r.method != "POST" || r.target != "/hook?x=1")
        {
            return Err(format!("{reqs:?}").into());
        }
        let body: Value = serde_json::from_slice(&reqs[1].body).map_err(|e| e.to_string())?;
        if body["event_id"] != "9f2c4e1a" || body["version"] != 1 {
            return Err(format!("{body}").into());
        }
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}
