//! The RFC 5322 message for a notification, and handing it to sendmail(8).
//!
//! Every header value goes through [`one_line`] (no CR, LF or other control
//! character can start a header of its own) and, when not plain ASCII,
//! through RFC 2047 encoded-words. The body is UTF-8 text, declared as such,
//! in 7bit when it is short-lined ASCII and quoted-printable otherwise, with
//! the output's control characters made visible. Lines end in LF, the local
//! convention sendmail(8) reads; the mail system sends CRLF on the wire.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;

use crate::text::{self, facts, one_line, output, summary};
use crate::{Notification, Outcome, process};

/// The message for `n`, dated now (the only input besides the arguments;
/// see [`mail_message_at`]).
pub fn mail_message(to: &[String], from: &str, n: &Notification) -> Vec<u8> {
    mail_message_at(to, from, n, SystemTime::now())
}

/// The message for `n`, dated `date`; pure. Addresses that are not a plain
/// `local@domain` or `Name <local@domain>` are left out (the mail channel
/// refuses them before sending); an empty or invalid `from` leaves the
/// `From:` header to sendmail.
pub fn mail_message_at(to: &[String], from: &str, n: &Notification, date: SystemTime) -> Vec<u8> {
    let ts = jiff::Timestamp::try_from(date).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mut m = String::new();
    if let Some(from) = mailbox(from) {
        header(&mut m, "From", &from);
    }
    let to: Vec<String> = to.iter().filter_map(|a| mailbox(a)).collect();
    if !to.is_empty() {
        header(&mut m, "To", &to.join(", "));
    }
    unstructured(&mut m, "Subject", &format!("[jobctl] {}", summary(n)));
    header(
        &mut m,
        "Date",
        &ts.to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%a, %d %b %Y %H:%M:%S +0000")
            .to_string(),
    );
    header(&mut m, "Message-ID", &message_id(n, ts.as_second()));
    header(&mut m, "Auto-Submitted", "auto-generated");
    // Exchange's equivalent of Auto-Submitted: no out-of-office replies.
    header(&mut m, "X-Auto-Response-Suppress", "All");
    unstructured(&mut m, "X-Jobctl-Event", &n.event);
    unstructured(&mut m, "X-Jobctl-Job", &n.job);
    unstructured(&mut m, "X-Jobctl-Host", &n.host);
    unstructured(&mut m, "X-Jobctl-Event-Id", &n.event_id);
    header(&mut m, "MIME-Version", "1.0");
    header(&mut m, "Content-Type", "text/plain; charset=utf-8");
    let body = body(n);
    let seven_bit = body.is_ascii() && body.lines().all(|l| l.len() <= 76);
    if seven_bit {
        header(&mut m, "Content-Transfer-Encoding", "7bit");
        m.push('\n');
        m.push_str(&body);
    } else {
        header(&mut m, "Content-Transfer-Encoding", "quoted-printable");
        m.push('\n');
        m.push_str(&quoted_printable(&body));
    }
    m.into_bytes()
}

/// The text a reader sees: the summary, the facts, how to see more, the
/// output.
fn body(n: &Notification) -> String {
    let mut b = String::new();
    b.push_str(&summary(n));
    b.push_str("\n\n");
    let facts = facts(n);
    let width = facts
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    for (label, value) in &facts {
        let label = format!("{label}:");
        b.push_str(&format!("{label:<width$} {value}\n"));
    }
    if let Some(hint) = n
        .journal_hint
        .as_deref()
        .map(one_line)
        .filter(|h| !h.is_empty())
    {
        b.push_str("\nTo see more:\n  ");
        b.push_str(&hint);
        b.push('\n');
    }
    if let Some(tail) = output(n) {
        b.push_str("\nOutput (last lines):\n");
        for line in tail.lines() {
            b.push_str("  ");
            b.push_str(line);
            b.push('\n');
        }
    }
    b.push_str("\n-- \n");
    b.push_str(&format!(
        "Sent by jobctl on {} (event {}).\n",
        one_line(&n.host),
        one_line(&n.event_id)
    ));
    b
}

/// `Name: value` for a value known to be header-safe ASCII.
fn header(m: &mut String, name: &str, value: &str) {
    m.push_str(name);
    m.push_str(": ");
    m.push_str(value);
    m.push('\n');
}

/// An unstructured header (RFC 5322 3.2.5): one line of the value; plain
/// when printable ASCII (folded at spaces past 76 columns), RFC 2047
/// encoded-words otherwise. A `[jobctl] ` prefix stays readable.
fn unstructured(m: &mut String, name: &str, value: &str) {
    // Far below the 998-octet line limit, whatever the words.
    let value = text::truncate_chars(&one_line(value), 400);
    if value.is_empty() {
        return;
    }
    m.push_str(name);
    m.push(':');
    let mut col = name.len() + 1;
    let (plain, rest) = match value.strip_prefix("[jobctl] ") {
        Some(rest) if !rest.is_ascii() => ("[jobctl]", rest),
        _ if value.is_ascii() => (value.as_str(), ""),
        _ => ("", value.as_str()),
    };
    for word in plain.split(' ') {
        if col + 1 + word.len() > 76 && col > name.len() + 1 {
            m.push('\n');
            col = 0;
        }
        m.push(' ');
        m.push_str(word);
        col += 1 + word.len();
    }
    for word in encoded_words(rest) {
        if col + 1 + word.len() > 76 && col > name.len() + 1 {
            m.push('\n');
            col = 0;
        }
        m.push(' ');
        m.push_str(&word);
        col += 1 + word.len();
    }
    m.push('\n');
}

/// RFC 2047 "B" encoded-words of at most 75 characters each, split at
/// character boundaries (each word decodes to whole UTF-8 characters).
fn encoded_words(s: &str) -> Vec<String> {
    const MAX_BYTES: usize = 45; // 60 base64 characters + 12 = 72
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > MAX_BYTES {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect()
}

/// `<jobctl.EVENT.SECONDS@HOST>`: unique per message sent (the reminders of
/// one event each get their own), made only of safe characters.
fn message_id(n: &Notification, seconds: i64) -> String {
    let id: String = n
        .event_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    let host: String = n
        .host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(253)
        .collect();
    let host = host.trim_matches('.');
    let host = if host.is_empty() { "localhost" } else { host };
    let id = if id.is_empty() { "0" } else { &id };
    format!("<jobctl.{id}.{seconds}@{host}>")
}

/// `addr` as a header-safe mailbox: `local@domain` or `Name <local@domain>`
/// in printable ASCII, with none of the characters that would make it two
/// addresses or a group; `None` otherwise.
pub(crate) fn mailbox(addr: &str) -> Option<String> {
    let addr = addr.trim();
    if addr.is_empty() || !addr.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return None;
    }
    fn addr_spec(s: &str) -> bool {
        let Some((local, domain)) = s.rsplit_once('@') else {
            return false;
        };
        let ok = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
        };
        ok(local) && ok(domain) && !domain.starts_with('.') && !domain.ends_with('.')
    }
    if addr_spec(addr) {
        return Some(addr.to_string());
    }
    let (name, rest) = addr.split_once('<')?;
    let spec = rest.strip_suffix('>')?;
    let name = name.trim();
    let name_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" !#$%&'*+-/=?^_`{|}~.".contains(&b));
    (addr_spec(spec) && name_ok).then(|| {
        if name.is_empty() {
            format!("<{spec}>")
        } else {
            format!("\"{name}\" <{spec}>")
        }
    })
}

/// Quoted-printable (RFC 2045 6.7) of LF-separated text: lines of at most 76
/// characters (soft breaks), `=`, non-ASCII and trailing blanks encoded.
fn quoted_printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 11 / 10);
    let lines: Vec<&str> = s.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let bytes = line.as_bytes();
        let mut col = 0;
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let enc = match b {
                b'=' => format!("={b:02X}"),
                b' ' | b'\t' if last => format!("={b:02X}"),
                b' ' | b'\t' | 33..=126 => (b as char).to_string(),
                _ => format!("={b:02X}"),
            };
            // Leave room for the "=" of a soft break.
            if col + enc.len() > 75 {
                out.push_str("=\n");
                col = 0;
            }
            out.push_str(&enc);
            col += enc.len();
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
    out
}

/// Pipes the message to `sendmail -t -oi`: recipients from the headers, a
/// lone "." line is text.
pub(crate) fn send(
    to: &[String],
    from: Option<&str>,
    sendmail: &Path,
    timeout: Duration,
    n: &Notification,
    start: Instant,
) -> Outcome {
    if to.is_empty() {
        return Outcome::failed(false, "no recipient: set at least one address in `mail`");
    }
    for (i, addr) in to.iter().enumerate() {
        if mailbox(addr).is_none() {
            return Outcome::failed(
                false,
                format!(
                    "recipient {} is not a plain mail address (`name@domain` or `Name <name@domain>`)",
                    i + 1
                ),
            );
        }
    }
    let from = match from {
        Some(f) if mailbox(f).is_none() => {
            return Outcome::failed(
                false,
                "`from` is not a plain mail address (`name@domain` or `Name <name@domain>`)",
            );
        }
        Some(f) => f,
        None => "",
    };
    let message = mail_message(to, from, n);
    let argv = [sendmail.as_os_str().to_owned(), "-t".into(), "-oi".into()];
    process::run(&argv, &message, &[], timeout, start, "sendmail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_are_one_address_each() {
        assert_eq!(
            mailbox("ops@example.com").as_deref(),
            Some("ops@example.com")
        );
        assert_eq!(
            mailbox("Ops Team <ops@example.com>").as_deref(),
            Some("\"Ops Team\" <ops@example.com>")
        );
        for bad in [
            "",
            "ops",
            "a@b, evil@x",
            "a@b\nBcc: evil@x",
            "\"x\" <a@b>",
            "a@b; c@d",
            "x <a@b> y",
            "grp: a@b;",
            "über@example.com",
            "a@.b",
        ] {
            assert_eq!(mailbox(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn encoded_words_stay_short_and_whole() {
        let words = encoded_words(&"é".repeat(100));
        assert!(words.len() > 1);
        for w in &words {
            assert!(w.len() <= 75, "{w}");
        }
    }

    #[test]
    fn quoted_printable_lines_are_short() {
        let qp = quoted_printable(&format!("{} \nnext=", "x".repeat(200)));
        for line in qp.split('\n') {
            assert!(line.len() <= 76, "{line}");
        }
        assert!(qp.ends_with("next=3D"), "{qp}");
        assert!(qp.contains("=20\n"), "{qp}");
    }
}
