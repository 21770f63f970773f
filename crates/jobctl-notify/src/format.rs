//! The JSON bodies: the generic object, Slack's blocks, a Teams Adaptive Card.

use serde_json::{Value, json};

use crate::text::{self, facts, one_line, output, summary, tail_chars, truncate_chars};
use crate::{Format, Notification, PAYLOAD_VERSION};

/// The body posted for `n` in `format`, with `sent_at` the current time
/// (the only input besides `n`; see [`payload_at`]).
pub fn payload(format: Format, n: &Notification) -> Value {
    payload_at(format, n, &now_rfc3339())
}

/// The body posted for `n` in `format`; pure. `sent_at` (RFC 3339) appears
/// only in the generic format.
pub fn payload_at(format: Format, n: &Notification, sent_at: &str) -> Value {
    match format {
        Format::Generic => generic(n, sent_at),
        Format::Slack => slack(n),
        Format::Teams => teams(n),
    }
}

pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Every field, as recorded (JSON escapes what needs escaping).
fn generic(n: &Notification, sent_at: &str) -> Value {
    json!({
        "version": PAYLOAD_VERSION,
        "event_id": n.event_id,
        "event": n.event,
        "job": n.job,
        "host": n.host,
        "status": n.status,
        "exit_code": n.exit_code,
        "signal": n.signal,
        "signal_name": n.signal.map(text::signal_name),
        "run_id": n.run_id,
        "invocation_id": n.invocation_id,
        "started": n.started,
        "ended": n.ended,
        "duration_ms": n.duration_ms,
        "output_tail": n.output_tail,
        "failure_streak": n.failure_streak,
        "summary": n.summary,
        "details": n.details.iter()
            .map(|(label, value)| json!({"label": label, "value": value}))
            .collect::<Vec<_>>(),
        "journal_hint": n.journal_hint,
        "sent_at": sent_at,
    })
}

/// A mark for the kind of event, first on the title line.
fn icon(event: &str) -> &'static str {
    match event {
        "failure" | "lost" => "🔴",
        "recovery" => "✅",
        "overdue" | "overrun" => "⚠️",
        _ => "ℹ️",
    }
}

// Slack's documented limits (Block Kit reference): a header's plain_text
// 150 characters, a section's text 3,000, each of at most 10 fields 2,000,
// a context at most 10 elements; 50 blocks a message. The top-level `text`
// is the notification preview and the fallback.
const SLACK_HEADER_MAX: usize = 150;
const SLACK_SECTION_MAX: usize = 3000;
const SLACK_FIELD_MAX: usize = 2000;
const SLACK_FIELDS_MAX: usize = 10;

/// mrkdwn treats `&`, `<`, `>` as markup (`<!channel>` pings everyone,
/// `<url|text>` links): they are escaped as Slack documents.
fn mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text for a ``` block: escaped, and no run of three backticks that would
/// close the block early (a zero-width space goes between backticks).
fn code(s: &str) -> String {
    mrkdwn(s).replace("``", "`\u{200b}`")
}

fn slack(n: &Notification) -> Value {
    let summary = summary(n);
    let title = truncate_chars(&format!("{} {summary}", icon(&n.event)), SLACK_HEADER_MAX);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": title, "emoji": true},
    })];
    let fields: Vec<Value> = facts(n)
        .iter()
        .take(SLACK_FIELDS_MAX)
        .map(|(label, value)| {
            let text = truncate_chars(
                &format!("*{}*\n{}", mrkdwn(label), mrkdwn(value)),
                SLACK_FIELD_MAX,
            );
            json!({"type": "mrkdwn", "text": text})
        })
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    // Facts past the tenth field go in a section of their own, one a line.
    let rest: Vec<String> = facts(n)
        .iter()
        .skip(SLACK_FIELDS_MAX)
        .map(|(label, value)| format!("*{}:* {}", mrkdwn(label), mrkdwn(value)))
        .collect();
    if !rest.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate_chars(&rest.join("\n"), SLACK_SECTION_MAX)},
        }));
    }
    if let Some(tail) = output(n) {
        let head = "*Output (last lines)*\n```\n";
        let foot = "\n```";
        let room = SLACK_SECTION_MAX - head.chars().count() - foot.chars().count();
        // Escape first, then bound: escaping lengthens the text.
        let body = tail_chars(&code(&tail), room);
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("{head}{body}{foot}")},
        }));
    }
    if let Some(hint) = n
        .journal_hint
        .as_deref()
        .map(one_line)
        .filter(|h| !h.is_empty())
    {
        let text = truncate_chars(
            &format!("More: `{}`", code(&hint).replace('`', "'")),
            SLACK_FIELD_MAX,
        );
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": text}],
        }));
    }
    json!({
        "text": truncate_chars(&mrkdwn(&summary), SLACK_SECTION_MAX),
        "blocks": blocks,
    })
}

/// The Adaptive Card schema version used: 1.4 is rendered by Teams on
/// desktop, web and mobile, and accepted by both the legacy connectors and
/// Workflows.
const CARD_VERSION: &str = "1.4";
const TEAMS_TEXT_MAX: usize = 4000;
const TEAMS_FACTS_MAX: usize = 20;

fn teams(n: &Notification) -> Value {
    let summary = summary(n);
    let color = match n.event.as_str() {
        "failure" | "lost" => "Attention",
        "recovery" => "Good",
        "overdue" | "overrun" => "Warning",
        _ => "Default",
    };
    // The title and the output are TextRuns: unlike a TextBlock, a TextRun
    // is never read as Markdown, so recorded text shows as it is.
    let mut body = vec![json!({
        "type": "RichTextBlock",
        "inlines": [{
            "type": "TextRun",
            "text": truncate_chars(&format!("{} {summary}", icon(&n.event)), 300),
            "weight": "Bolder",
            "size": "Medium",
            "color": color,
        }],
    })];
    // Bounded so that the card stays far below Teams' 28 KB per message.
    let facts: Vec<Value> = facts(n)
        .iter()
        .take(TEAMS_FACTS_MAX)
        .map(|(title, value)| {
            json!({"title": truncate_chars(title, 100), "value": truncate_chars(value, 500)})
        })
        .collect();
    if !facts.is_empty() {
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    if let Some(tail) = output(n) {
        body.push(json!({
            "type": "TextBlock",
            "text": "Output (last lines)",
            "weight": "Bolder",
            "wrap": true,
            "spacing": "Medium",
        }));
        body.push(json!({
            "type": "RichTextBlock",
            "inlines": [{
                "type": "TextRun",
                "text": tail_chars(&tail, TEAMS_TEXT_MAX),
                "fontType": "Monospace",
                "size": "Small",
            }],
        }));
    }
    if let Some(hint) = n
        .journal_hint
        .as_deref()
        .map(one_line)
        .filter(|h| !h.is_empty())
    {
        body.push(json!({
            "type": "RichTextBlock",
            "inlines": [
                {"type": "TextRun", "text": "More: ", "isSubtle": true},
                {"type": "TextRun", "text": truncate_chars(&hint, 1000), "fontType": "Monospace", "isSubtle": true},
            ],
        }));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": CARD_VERSION,
                "fallbackText": summary,
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}
