//! The mail message, parsed back by a reader written here from RFC 5322
//! (header fields and folding), RFC 2047 (encoded-words) and RFC 2045
//! (quoted-printable): exact for a fixed notification, and safe for hostile
//! job names and output.

#[path = "support/fixture.rs"]
mod fixture;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use jobctl_notify::{Notification, mail_message, mail_message_at};

/// 2026-12-01T03:01:06Z
fn date() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_094_066)
}

struct Parsed {
    headers: Vec<(String, String)>,
    body: String,
}

impl Parsed {
    fn get(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn one(&self, name: &str) -> &str {
        let v = self.get(name);
        assert_eq!(v.len(), 1, "{name}: {v:?}");
        v[0]
    }
}

/// Splits, checks every header line, unfolds and decodes.
fn parse(raw: &[u8]) -> Parsed {
    let text = std::str::from_utf8(raw).expect("the message is UTF-8");
    let (head, body) = text
        .split_once("\n\n")
        .expect("a blank line ends the header");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        assert!(line.len() <= 998, "a header line over 998 octets: {line}");
        assert!(
            line.bytes().all(|b| (b' '..=b'~').contains(&b)),
            "a header line that is not printable ASCII: {line:?}"
        );
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = headers.last_mut().expect("a continuation line first");
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').expect("name: value");
            assert!(
                !name.is_empty() && !name.contains(' '),
                "header name {name:?}"
            );
            headers.push((name.to_string(), value.to_string()));
        }
    }
    let headers = headers
        .into_iter()
        .map(|(n, v)| (n, decode_2047(v.trim())))
        .collect::<Vec<_>>();
    let cte = headers
        .iter()
        .find(|(n, _)| n == "Content-Transfer-Encoding")
        .map(|(_, v)| v.clone())
        .expect("Content-Transfer-Encoding");
    let body = match cte.as_str() {
        "7bit" => {
            assert!(body.is_ascii());
            body.to_string()
        }
        "quoted-printable" => {
            for line in body.split('\n') {
                assert!(line.len() <= 76, "a quoted-printable line over 76: {line}");
                assert!(
                    line.bytes()
                        .all(|b| (b' '..=b'~').contains(&b) || b == b'\t')
                );
            }
            decode_qp(body)
        }
        other => panic!("unexpected transfer encoding {other}"),
    };
    Parsed { headers, body }
}

/// RFC 2047: `=?charset?B?…?=` words; whitespace between two encoded words
/// is dropped.
fn decode_2047(v: &str) -> String {
    let mut out = String::new();
    let mut prev_encoded = false;
    let mut pending_space = String::new();
    for (i, word) in v.split([' ', '\t']).enumerate() {
        if word.is_empty() {
            pending_space.push(' ');
            continue;
        }
        let encoded = word
            .strip_prefix("=?UTF-8?B?")
            .and_then(|w| w.strip_suffix("?="));
        if i > 0 && !(prev_encoded && encoded.is_some()) {
            out.push(' ');
        }
        pending_space.clear();
        match encoded {
            Some(b64) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .expect("base64 in an encoded word");
                out.push_str(std::str::from_utf8(&bytes).expect("each word is whole UTF-8"));
                prev_encoded = true;
            }
            None => {
                assert!(!word.contains("=?"), "a malformed encoded word: {word}");
                out.push_str(word);
                prev_encoded = false;
            }
        }
    }
    out
}

fn decode_qp(s: &str) -> String {
    let joined = s.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("=XX"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("the body is UTF-8")
}

const HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "X-Jobctl-Event",
    "X-Jobctl-Job",
    "X-Jobctl-Host",
    "X-Jobctl-Event-Id",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

#[test]
fn the_message_of_a_failure_is_exactly_this() {
    let to = vec![
        "ops@example.com".to_string(),
        "Ops Team <team@example.com>".to_string(),
    ];
    let got = mail_message_at(&to, "jobctl@db1.example.com", &fixture::failure(), date());
    let want = "\
From: jobctl@db1.example.com
To: ops@example.com, \"Ops Team\" <team@example.com>
Subject: [jobctl] backup FAILED on db1 (exit 3)
Date: Tue, 01 Dec 2026 03:01:06 +0000
Message-ID: <jobctl.9f2c4e1a.1796094066@db1>
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
X-Jobctl-Event: failure
X-Jobctl-Job: backup
X-Jobctl-Host: db1
X-Jobctl-Event-Id: 9f2c4e1a
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

backup FAILED on db1 (exit 3)

Status:            failed (exit 3)
Job:               backup
Host:              db1
Event:             failure
Started:           2026-12-01T03:00:00Z
Ended:             2026-12-01T03:01:05Z
Duration:          1 min 5 s
Failures in a row: 2
Schedule:          daily
Run:               r-0001
Invocation:        0123456789abcdef0123456789abcdef

To see more:
  journalctl _SYSTEMD_INVOCATION_ID=0123456789abcdef0123456789abcdef

Output (last lines):
  dumping db
  error: disk full

-- 
Sent by jobctl on db1 (event 9f2c4e1a).
";
    assert_eq!(String::from_utf8(got.clone()).unwrap(), want);
    let parsed = parse(&got);
    let names: Vec<&str> = parsed.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, HEADERS);
}

#[test]
fn hostile_names_and_output_cannot_add_headers_or_reach_a_terminal() {
    let n = fixture::hostile();
    let raw = mail_message_at(&["ops@example.com".to_string()], "", &n, date());
    assert!(!raw.contains(&b'\r'), "a CR in the message");
    assert!(!raw.contains(&0x1b), "an ESC in the message");
    let parsed = parse(&raw);
    // No From (left to sendmail), and nothing injected.
    let names: Vec<&str> = parsed.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, &HEADERS[1..]);
    assert_eq!(
        parsed.one("Subject"),
        "[jobctl] évil <!channel> FAILED Bcc: victim@example.com X-Injected: yes"
    );
    assert_eq!(parsed.one("X-Jobctl-Job"), "evil Bcc: victim@example.com");
    assert_eq!(parsed.one("X-Jobctl-Host"), "db1 [31m");
    assert_eq!(parsed.one("Content-Transfer-Encoding"), "quoted-printable");
    let body = &parsed.body;
    assert!(body.contains("Status:"), "{body}");
    assert!(
        body.contains("failed X-Status: injected (exit 3)"),
        "{body}"
    );
    // The output: escapes made visible, every line indented (a lone "."
    // or "From " can never start a line), non-ASCII intact.
    assert!(
        body.contains("  \\x1b[2J\\x1b]0;pwned\\x07\n  .\n  RCPT TO:<victim@example.com>\n"),
        "{body}"
    );
    assert!(
        body.contains("  line 398 ünïcödé & <tag> ``` \n  line 399 ünïcödé & <tag> ```\n"),
        "{body}"
    );
    assert!(!body.lines().any(|l| l == "."), "{body}");
    assert!(
        !body
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    );
}

#[test]
fn a_long_non_ascii_subject_is_folded_into_whole_encoded_words() {
    let n = Notification {
        summary: "sauvegarde ÉCHOUÉE sur la machine de production numéro un — ".repeat(4),
        ..fixture::failure()
    };
    let raw = mail_message_at(&["ops@example.com".into()], "", &n, date());
    let text = String::from_utf8(raw.clone()).unwrap();
    let subject_lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Subject:"))
        .take_while(|l| l.starts_with("Subject:") || l.starts_with(' '))
        .collect();
    assert!(subject_lines.len() > 2, "{subject_lines:?}");
    for l in &subject_lines {
        assert!(l.len() <= 78, "{l}");
    }
    assert!(
        subject_lines
            .concat()
            .starts_with("Subject: [jobctl] =?UTF-8?B?"),
        "{subject_lines:?}"
    );
    let parsed = parse(&raw);
    assert_eq!(
        parsed.one("Subject"),
        format!("[jobctl] {}", n.summary.trim_end())
    );
}

#[test]
fn invalid_addresses_are_left_out_and_the_clock_dates_the_message() {
    let to = vec![
        "ops@example.com".to_string(),
        "a@b, evil@example.com".to_string(),
        "x@y\nBcc: evil@example.com".to_string(),
    ];
    let raw = mail_message(&to, "not an address", &fixture::failure());
    let parsed = parse(&raw);
    assert_eq!(parsed.one("To"), "ops@example.com");
    assert!(parsed.get("From").is_empty());
    assert!(parsed.get("Bcc").is_empty());
    // RFC 5322 date-time, in UTC: "Tue, 01 Dec 2026 03:01:06 +0000".
    let date = parsed.one("Date");
    let parts: Vec<&str> = date.split(' ').collect();
    assert_eq!(parts.len(), 6, "{date}");
    assert!(parts[0].ends_with(',') && parts[5] == "+0000", "{date}");
    let id = parsed.one("Message-ID");
    assert!(
        id.starts_with("<jobctl.9f2c4e1a.") && id.ends_with("@db1>"),
        "{id}"
    );
}
