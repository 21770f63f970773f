//! Notifications: the channels of the configuration's `[notify]` table, the
//! job keys that choose them (`notify`, `notify_after`, `grace`,
//! `warn_after`), and the delivery policy (retries with backoff for
//! `retry_for`, at most `max_per_minute` attempts per channel).
//!
//! ```toml
//! [notify]
//! retry_for = "24h"          # then a delivery is given up
//! max_per_minute = 20        # attempts per channel
//! repeat = "4h"              # reminders of an open incident (default: none)
//!
//! [notify.channels.ops]
//! webhook_file = "/etc/jobctl/secrets/ops.url"
//! format = "slack"
//! [notify.channels.mail-ops]
//! mail = ["ops@example.com"]
//! [notify.channels.pager]
//! command = ["/usr/local/bin/page", "--team", "db"]
//!
//! [defaults]
//! notify = ["ops"]
//! ```
//!
//! Which events a job's incidents raise is [`crate::watch`]'s; what is sent
//! is the binary's (it maps events to the `jobctl-notify` crate). The
//! reference is docs/notifications.md.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;
use toml::de::DeTable;

use crate::context::{Mode, PathInspector};
use crate::diag::{Diagnostics, Severity};
use crate::duration::Timespan;
use crate::walk::{Sp, TableReader};

/// The keys of `[notify]`.
pub const NOTIFY_KEYS: &[&str] = &["retry_for", "max_per_minute", "repeat", "channels"];

/// The keys of a channel.
pub const CHANNEL_KEYS: &[&str] = &[
    "webhook",
    "webhook_file",
    "mail",
    "command",
    "format",
    "timeout",
    "sendmail",
    "from",
    "repeat",
];

/// The job keys of notifications (also allowed in `[defaults]`).
pub const JOB_KEYS: &[&str] = &[
    "notify",
    "notify_after",
    "grace",
    "warn_after",
    "succeed_within",
];

/// The longest a channel may take to deliver one notification: a watch pass
/// waits for it.
pub const MAX_CHANNEL_TIMEOUT: Timespan = Timespan::from_secs(300);
/// The default channel timeout.
pub const DEFAULT_CHANNEL_TIMEOUT: Timespan = Timespan::from_secs(10);
/// How long a delivery is retried by default.
pub const DEFAULT_RETRY_FOR: Timespan = Timespan::from_secs(24 * 3600);
/// Attempts per channel per minute, by default.
pub const DEFAULT_MAX_PER_MINUTE: u32 = 20;
/// The shortest reminder interval.
pub const MIN_REPEAT: Timespan = Timespan::from_secs(60);
/// The most failures in a row `notify_after` may ask for.
pub const MAX_NOTIFY_AFTER: u32 = 1000;
/// The longest channel name.
pub const MAX_CHANNEL_NAME_LEN: usize = 64;
/// The default `sendmail`.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

/// A value that must not be shown: a webhook URL carries its credentials in
/// its path or query. `Debug` prints a placeholder; it is not `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for the one place that uses it (the transport).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The payload format of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Generic,
    Slack,
    Teams,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Generic => "generic",
            Format::Slack => "slack",
            Format::Teams => "teams",
        }
    }
}

/// Where a channel sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An HTTP(S) POST to this URL.
    Webhook(Secret),
    /// An HTTP(S) POST to the URL read from this file when sending (root's,
    /// not writable by others, in system mode).
    WebhookFile(String),
    /// A mail to these addresses, through sendmail(8).
    Mail(Vec<String>),
    /// This program, with the event as JSON on stdin.
    Command(Vec<String>),
}

impl Target {
    /// `webhook`, `mail` or `command` (what `notifications` shows).
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Webhook(_) | Target::WebhookFile(_) => "webhook",
            Target::Mail(_) => "mail",
            Target::Command(_) => "command",
        }
    }
}

/// One channel of `[notify.channels]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    pub name: String,
    pub target: Target,
    pub format: Format,
    pub timeout: Timespan,
    pub sendmail: String,
    pub from: Option<String>,
    /// Reminders of an open incident every this long (`None`: none).
    pub repeat: Option<Timespan>,
}

/// The `[notify]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub retry_for: Timespan,
    pub max_per_minute: u32,
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Channels the configuration defines with errors (reported there):
    /// naming one is not also "unknown".
    pub invalid: std::collections::BTreeSet<String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            retry_for: DEFAULT_RETRY_FOR,
            max_per_minute: DEFAULT_MAX_PER_MINUTE,
            channels: BTreeMap::new(),
            invalid: Default::default(),
        }
    }
}

/// A job's notification settings, resolved against the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobNotify {
    /// The channels (empty: none).
    pub channels: Vec<String>,
    /// Failures in a row before the first alert.
    pub after: u32,
    /// How late a scheduled run may start before it is overdue (`None`:
    /// derived from the schedule, see [`crate::watch`]).
    pub grace: Option<Timespan>,
    /// Warn when a run is still running this long after it started
    /// (`None`: only a minute past its timeout).
    pub warn_after: Option<Timespan>,
    /// The job must succeed at least this often: the threshold `jobctl
    /// metrics` exports for Prometheus' `JobctlJobNotSucceededSince`.
    pub succeed_within: Option<Timespan>,
}

/// The notification keys of a job file or of `[defaults]`, as written.
#[derive(Debug, Clone, Default)]
pub struct NotifySpec {
    pub notify: Option<Sp<Vec<Sp<String>>>>,
    pub after: Option<Sp<u32>>,
    pub grace: Option<Sp<Timespan>>,
    pub warn_after: Option<Sp<Timespan>>,
    pub succeed_within: Option<Sp<Timespan>>,
}

impl NotifySpec {
    /// Decodes the keys present in `reader`'s table.
    pub fn decode(reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) -> NotifySpec {
        let mut spec = NotifySpec::default();
        if let Some(list) = reader.string_array("notify", "[\"ops\"]", diags) {
            let mut names = Vec::new();
            for (index, name) in list.value.into_iter().enumerate() {
                match check_channel_name(&name.value) {
                    Ok(()) => names.push(name),
                    Err(message) => diags.error(
                        name.span,
                        &reader.path(&format!("notify[{index}]")),
                        message,
                        None,
                    ),
                }
            }
            spec.notify = Some(Sp::new(names, list.span));
        }
        if let Some(n) = reader.integer("notify_after", "3", diags) {
            match u32::try_from(n.value) {
                Ok(v) if (1..=MAX_NOTIFY_AFTER).contains(&v) => {
                    spec.after = Some(Sp::new(v, n.span))
                }
                _ => diags.error(
                    n.span,
                    &reader.path("notify_after"),
                    format!("notify_after must be 1 to {MAX_NOTIFY_AFTER}"),
                    Some("it counts failed runs in a row before the first alert".into()),
                ),
            }
        }
        for key in ["grace", "warn_after", "succeed_within"] {
            let Some(d) = reader.duration(key, "\"5min\"", diags) else {
                continue;
            };
            if d.value.is_infinite() || d.value == Timespan::ZERO {
                diags.error(
                    d.span,
                    &reader.path(key),
                    "must be a finite duration above zero",
                    Some(format!("e.g. {key} = \"10min\"")),
                );
            } else if key == "grace" {
                spec.grace = Some(d);
            } else if key == "warn_after" {
                spec.warn_after = Some(d);
            } else {
                spec.succeed_within = Some(d);
            }
        }
        spec
    }

    /// Checks that each channel the job names is configured (the job's own
    /// list; the defaults' list is checked with the configuration).
    pub fn check_channels(&self, config: &NotifyConfig, diags: &mut Diagnostics<'_>) {
        let Some(list) = &self.notify else {
            return;
        };
        for (index, name) in list.value.iter().enumerate() {
            if let Some(message) = unknown_channel(&name.value, config) {
                diags.error(
                    name.span.clone(),
                    &format!("notify[{index}]"),
                    message.0,
                    Some(message.1),
                );
            }
        }
    }

    /// The job's settings: its own keys over the defaults'.
    pub fn resolve(&self, defaults: &NotifySpec) -> JobNotify {
        let notify = self.notify.as_ref().or(defaults.notify.as_ref());
        JobNotify {
            channels: notify
                .map(|n| n.value.iter().map(|c| c.value.clone()).collect())
                .unwrap_or_default(),
            after: self
                .after
                .as_ref()
                .or(defaults.after.as_ref())
                .map_or(1, |a| a.value),
            grace: self
                .grace
                .as_ref()
                .or(defaults.grace.as_ref())
                .map(|g| g.value),
            warn_after: self
                .warn_after
                .as_ref()
                .or(defaults.warn_after.as_ref())
                .map(|w| w.value),
            succeed_within: self
                .succeed_within
                .as_ref()
                .or(defaults.succeed_within.as_ref())
                .map(|w| w.value),
        }
    }

    /// A warning when `warn_after` is at or past the job's timeout: systemd
    /// stops the run there, so only the check a minute past it can fire.
    pub fn check_warn_after(&self, timeout: Timespan, diags: &mut Diagnostics<'_>) {
        if let Some(w) = &self.warn_after
            && !timeout.is_infinite()
            && w.value >= timeout
        {
            diags.warning(
                w.span.clone(),
                "warn_after",
                format!("warn_after ({}) is not shorter than the job's timeout ({timeout}): systemd stops the run at its timeout, so the warning comes only when a run is still there a minute past it", w.value),
                Some("make warn_after shorter than `timeout`, or remove it".into()),
            );
        }
    }
}

/// Why `name` is not a configured channel, and a hint (with a suggestion).
fn unknown_channel(name: &str, config: &NotifyConfig) -> Option<(String, String)> {
    if config.channels.contains_key(name) {
        return None;
    }
    if config.invalid.contains(name) {
        return Some((
            format!("the notification channel \"{name}\" is not valid"),
            "fix its errors in the configuration (`jobctl validate` lists them)".into(),
        ));
    }
    let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
    let hint = match crate::walk::suggest(name, &known) {
        Some(s) => format!("did you mean `{s}`?"),
        None if known.is_empty() => {
            "no channel is configured: add [notify.channels.NAME] to the configuration (docs/notifications.md)".into()
        }
        None => match check_channel_name(name) {
            // A name that can be a channel: how to define it (a `.` in it
            // needs quotes in the table's name).
            Ok(()) => {
                let table = if name.contains('.') {
                    format!("notify.channels.\"{name}\"")
                } else {
                    format!("notify.channels.{name}")
                };
                format!(
                    "the configured channels are: {}; to add this one, define [{table}] \
                     in the configuration (docs/notifications.md)",
                    known.join(", ")
                )
            }
            Err(_) => format!("the configured channels are: {}", known.join(", ")),
        },
    };
    Some((format!("unknown notification channel \"{name}\""), hint))
}

/// A channel name: letters, digits, `_`, `.`, `-`, not starting with `.` or
/// `-`, at most [`MAX_CHANNEL_NAME_LEN`] characters (names are shown in
/// output and stored in the history).
pub fn check_channel_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the channel name is empty".into());
    }
    if name.len() > MAX_CHANNEL_NAME_LEN {
        return Err(format!(
            "the channel name is longer than {MAX_CHANNEL_NAME_LEN} characters"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "the channel name \"{}\" contains {}; use letters, digits, '_', '.' and '-'",
            name.escape_debug(),
            crate::naming::describe_char(bad)
        ));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(format!(
            "the channel name \"{name}\" must start with a letter, digit or '_'"
        ));
    }
    Ok(())
}

/// Decodes `[notify]`. `defaults` is the `[defaults]` table's notification
/// keys, whose channel names are checked here (with the configuration's
/// positions). `root_files`, in system mode as root, checks every
/// `webhook_file` with the ownership rule.
pub fn decode_config(
    table: &DeTable<'_>,
    mode: Mode,
    root_files: Option<&dyn PathInspector>,
    diags: &mut Diagnostics<'_>,
) -> NotifyConfig {
    let mut config = NotifyConfig::default();
    let reader = TableReader::new("notify", table, NOTIFY_KEYS, &[], diags);
    if let Some(d) = reader.duration("retry_for", "\"24h\"", diags) {
        if d.value.is_infinite() {
            diags.error(
                d.span,
                "notify.retry_for",
                "must be finite: a delivery is given up after it",
                Some("e.g. retry_for = \"24h\"".into()),
            );
        } else {
            config.retry_for = d.value;
        }
    }
    if let Some(n) = reader.integer("max_per_minute", "20", diags) {
        match u32::try_from(n.value) {
            Ok(v) if (1..=10_000).contains(&v) => config.max_per_minute = v,
            _ => diags.error(
                n.span,
                "notify.max_per_minute",
                "must be 1 to 10000",
                Some("it caps delivery attempts per channel per minute".into()),
            ),
        }
    }
    let default_repeat = decode_repeat(&reader, "notify.repeat", diags);
    let Some(channels) = reader.table("channels", "{ ops = { webhook = \"https://…\" } }", diags)
    else {
        return config;
    };
    for (name, value) in channels.value.iter() {
        let name_text: &str = name.get_ref();
        let key = format!("notify.channels.{name_text}");
        // Until it decodes: a job naming it is told it is invalid, not unknown.
        config.invalid.insert(name_text.to_string());
        if let Err(message) = check_channel_name(name_text) {
            diags.error(name.span(), &key, message, None);
            continue;
        }
        let toml::de::DeValue::Table(table) = value.get_ref() else {
            diags.error(
                value.span(),
                &key,
                format!(
                    "expected a table, found {}",
                    crate::walk::type_name(value.get_ref())
                ),
                Some(format!(
                    "write it as [notify.channels.{name_text}] with webhook, mail or command"
                )),
            );
            continue;
        };
        let span = name.span();
        if let Some(channel) = decode_channel(
            name_text,
            span,
            table,
            mode,
            root_files,
            default_repeat,
            diags,
        ) {
            config.invalid.remove(name_text);
            config.channels.insert(name_text.to_string(), channel);
        }
    }
    config
}

fn decode_repeat(
    reader: &TableReader<'_, '_>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<Timespan> {
    let d = reader.duration("repeat", "\"4h\"", diags)?;
    if d.value.is_infinite() || d.value < MIN_REPEAT {
        diags.error(
            d.span,
            key,
            format!("reminders can come at most every {MIN_REPEAT}, and not infinitely apart"),
            Some("e.g. repeat = \"4h\"; leave it out for no reminders".into()),
        );
        return None;
    }
    Some(d.value)
}

#[allow(clippy::too_many_arguments)]
fn decode_channel(
    name: &str,
    name_span: Range<usize>,
    table: &DeTable<'_>,
    mode: Mode,
    root_files: Option<&dyn PathInspector>,
    default_repeat: Option<Timespan>,
    diags: &mut Diagnostics<'_>,
) -> Option<ChannelConfig> {
    let prefix = format!("notify.channels.{name}");
    let reader = TableReader::new(&prefix, table, CHANNEL_KEYS, &[], diags);
    let key = |k: &str| format!("{prefix}.{k}");
    let mut targets: Vec<(&str, Target)> = Vec::new();
    let mut present: Vec<&str> = Vec::new();

    if let Some(url) = reader.string(
        "webhook",
        "\"https://hooks.example.com/T000/B000/XXXX\"",
        diags,
    ) {
        present.push("webhook");
        // The URL itself is never quoted back: it is a secret.
        match check_url(&url.value) {
            Ok(()) => targets.push(("webhook", Target::Webhook(Secret::new(url.value)))),
            Err(message) => diags.error(
                url.span,
                &key("webhook"),
                message,
                Some("write the whole URL, e.g. \"https://hooks.example.com/…\"; or keep it in a file: webhook_file = \"/etc/jobctl/secrets/NAME.url\"".into()),
            ),
        }
    }
    if let Some(file) = reader.string("webhook_file", "\"/etc/jobctl/secrets/ops.url\"", diags) {
        present.push("webhook_file");
        if !file.value.starts_with('/') || file.value.chars().any(char::is_control) {
            diags.error(
                file.span,
                &key("webhook_file"),
                "not an absolute path",
                Some("e.g. webhook_file = \"/etc/jobctl/secrets/ops.url\"".into()),
            );
        } else {
            if let (Mode::System, Some(inspector)) = (mode, root_files) {
                check_secret_file(inspector, &file, &key("webhook_file"), diags);
            }
            targets.push(("webhook_file", Target::WebhookFile(file.value)));
        }
    }
    if let Some(to) = reader
        .raw("mail")
        .map(|_| reader.string_list("mail", "[\"ops@example.com\"]", diags))
    {
        present.push("mail");
        let span = reader.raw("mail").map(|v| v.span()).unwrap_or_default();
        let mut ok = !to.is_empty();
        if to.is_empty() {
            diags.error(
                span,
                &key("mail"),
                "no address",
                Some("e.g. mail = [\"ops@example.com\"]".into()),
            );
        }
        for (index, address) in to.iter().enumerate() {
            if let Err(message) = check_address(&address.value) {
                diags.error(
                    address.span.clone(),
                    &format!("{}[{index}]", key("mail")),
                    message,
                    Some(
                        "one plain address per item, without a name: \
                         mail = [\"ops@example.com\", \"dba@example.com\"]"
                            .into(),
                    ),
                );
                ok = false;
            }
        }
        if ok {
            targets.push((
                "mail",
                Target::Mail(to.into_iter().map(|a| a.value).collect()),
            ));
        }
    }
    if let Some(argv) = reader.string_array(
        "command",
        "[\"/usr/local/bin/page\", \"--team\", \"db\"]",
        diags,
    ) {
        present.push("command");
        let mut ok = true;
        match argv.value.first() {
            None => {
                diags.error(argv.span.clone(), &key("command"), "the command is empty", Some("name the program and its arguments: command = [\"/usr/local/bin/page\", \"--team\", \"db\"]".into()));
                ok = false;
            }
            Some(program) if !program.value.starts_with('/') => {
                diags.error(
                    program.span.clone(),
                    &format!("{}[0]", key("command")),
                    format!("\"{}\" is not an absolute path", program.value.escape_debug()),
                    Some("the watch runs the command as root with systemd's PATH: name the program by its absolute path".into()),
                );
                ok = false;
            }
            Some(_) => {}
        }
        for (index, arg) in argv.value.iter().enumerate() {
            if arg.value.contains('\0') {
                diags.error(
                    arg.span.clone(),
                    &format!("{}[{index}]", key("command")),
                    "the argument contains a NUL byte",
                    None,
                );
                ok = false;
            }
        }
        if ok {
            targets.push((
                "command",
                Target::Command(argv.value.into_iter().map(|a| a.value).collect()),
            ));
        }
    }

    let format = match reader.string("format", "\"slack\"", diags) {
        None => Format::Generic,
        Some(f) => {
            if !present.iter().any(|p| p.starts_with("webhook")) {
                diags.error(
                    f.span.clone(),
                    &key("format"),
                    "`format` applies to webhooks only",
                    Some("remove it, or use webhook = \"…\"".into()),
                );
            }
            match f.value.as_str() {
                "generic" => Format::Generic,
                "slack" => Format::Slack,
                "teams" => Format::Teams,
                other => {
                    diags.error(
                        f.span,
                        &key("format"),
                        format!("unknown format \"{}\"", other.escape_debug()),
                        Some("use \"generic\" (jobctl's JSON), \"slack\" or \"teams\"".into()),
                    );
                    Format::Generic
                }
            }
        }
    };
    let mut timeout = DEFAULT_CHANNEL_TIMEOUT;
    if let Some(t) = reader.duration("timeout", "\"10s\"", diags) {
        if t.value == Timespan::ZERO || t.value > MAX_CHANNEL_TIMEOUT {
            diags.error(
                t.span,
                &key("timeout"),
                format!("must be above zero and at most {MAX_CHANNEL_TIMEOUT}"),
                Some("a watch pass waits for each delivery; e.g. timeout = \"10s\"".into()),
            );
        } else {
            timeout = t.value;
        }
    }
    let mut sendmail = DEFAULT_SENDMAIL.to_string();
    if let Some(s) = reader.string("sendmail", "\"/usr/sbin/sendmail\"", diags) {
        if !present.contains(&"mail") {
            diags.error(
                s.span.clone(),
                &key("sendmail"),
                "`sendmail` applies to mail channels only",
                None,
            );
        }
        if crate::config::check_jobctl_path(&s.value).is_err() {
            diags.error(
                s.span,
                &key("sendmail"),
                "not an absolute path made of letters, digits and / . _ - +",
                Some("e.g. sendmail = \"/usr/sbin/sendmail\"".into()),
            );
        } else {
            sendmail = s.value;
        }
    }
    let mut from = None;
    if let Some(f) = reader.string("from", "\"jobctl@db1.example.com\"", diags) {
        if !present.contains(&"mail") {
            diags.error(
                f.span.clone(),
                &key("from"),
                "`from` applies to mail channels only",
                None,
            );
        }
        match check_address(&f.value) {
            Ok(()) => from = Some(f.value),
            Err(message) => diags.error(
                f.span,
                &key("from"),
                message,
                Some("one plain address, without a name: from = \"jobctl@example.com\"".into()),
            ),
        }
    }
    let repeat = decode_repeat(&reader, &key("repeat"), diags).or(default_repeat);

    match present.len() {
        0 => {
            diags.error(
                name_span,
                &prefix,
                "the channel says nowhere to send",
                Some("give exactly one of webhook = \"https://…\", webhook_file = \"/path\", mail = [\"addr\"] or command = [\"/path\", …]".into()),
            );
            None
        }
        1 => targets.pop().map(|(_, target)| ChannelConfig {
            name: name.to_string(),
            target,
            format,
            timeout,
            sendmail,
            from,
            repeat,
        }),
        _ => {
            diags.error(
                name_span,
                &prefix,
                format!(
                    "the channel has {} (one channel sends one way)",
                    present.join(" and ")
                ),
                Some("keep one; define another channel for the other".into()),
            );
            None
        }
    }
}

/// A webhook URL: `https://` or `http://`, a host, no spaces or controls.
/// The message never quotes the URL.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("the URL must start with https:// (or http://)")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("the URL has no host".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL contains spaces or control characters".into());
    }
    Ok(())
}

/// A mail address as jobctl writes it into a header: one address, no
/// display name, nothing that could end the header or add another.
pub(crate) fn check_address(address: &str) -> Result<(), String> {
    let bad = address.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, ',' | ';' | '<' | '>' | '"' | '(' | ')')
    });
    match (address.split_once('@'), bad) {
        (_, Some(c)) => Err(format!(
            "\"{}\" is not a plain mail address: it contains {}",
            address.escape_debug(),
            crate::naming::describe_char(c)
        )),
        (Some((local, domain)), None) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => Err(format!(
            "\"{}\" is not a mail address (user@domain)",
            address.escape_debug()
        )),
    }
}

/// A secret file root reads must be root's alone, like job files; a missing
/// one is a warning (it is read when sending), one others can read too.
fn check_secret_file(
    inspector: &dyn PathInspector,
    file: &Sp<String>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) {
    match inspector.trace(&file.value) {
        Ok(steps) => {
            let problems = crate::ownership::root_only_problems(&steps);
            if !problems.is_empty() {
                let fixes: Vec<&str> = problems.iter().map(|p| p.fix.as_str()).collect();
                diags.error(
                    file.span.clone(),
                    key,
                    format!(
                        "refusing the secret file {}: {}; whoever can change it decides where root sends what jobs print",
                        file.value,
                        problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    Some(format!("the file and every folder above it must be root's and writable only by root: {}", fixes.join("; "))),
                );
                return;
            }
            match steps.last() {
                Some(last)
                    if last.path == file.value && last.kind == crate::context::StepKind::File =>
                {
                    if last.mode & 0o044 != 0 {
                        diags.push(
                            Severity::Warning,
                            Some(file.span.clone()),
                            Some(key),
                            format!(
                                "{} can be read by users other than root: it holds a secret",
                                file.value
                            ),
                            Some(format!("chmod 0600 {}", file.value)),
                        );
                    }
                }
                _ => diags.push(
                    Severity::Warning,
                    Some(file.span.clone()),
                    Some(key),
                    format!(
                        "{} does not exist (yet): deliveries over this channel fail until it does",
                        file.value
                    ),
                    Some("write the webhook URL into it, one line, mode 0600".into()),
                ),
            }
        }
        Err(reason) => diags.error(
            file.span.clone(),
            key,
            format!("cannot check the secret file {}: {reason}", file.value),
            None,
        ),
    }
}

/// Checks the `[defaults]` table's `notify` list against the channels.
pub fn check_default_channels(
    defaults: &NotifySpec,
    config: &NotifyConfig,
    diags: &mut Diagnostics<'_>,
) {
    let Some(list) = &defaults.notify else {
        return;
    };
    for (index, name) in list.value.iter().enumerate() {
        if let Some((message, hint)) = unknown_channel(&name.value, config) {
            diags.error(
                name.span.clone(),
                &format!("defaults.notify[{index}]"),
                message,
                Some(hint),
            );
        }
    }
}

// ------------------------------------------------------------ delivery policy

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    /// Not sent yet: due at its next attempt.
    Pending,
    Sent,
    /// Failed for good (a permanent error, or `retry_for` ran out).
    GivenUp,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sent => "sent",
            DeliveryState::GivenUp => "given-up",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Sent,
            DeliveryState::GivenUp,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Timespan = Timespan::from_secs(3600);

/// The wait after the `attempts`-th failed attempt (1 = the first): an
/// eighth of `retry_for` (at least 1 s, at most 30 s) the first time,
/// doubling each time, at most an hour. So the default 24 h gives waits of
/// 30 s, 1 min, 2 min, 4 min … 1 h (about 30 attempts in all), and a short
/// `retry_for` still gets a few quick tries.
pub fn backoff_us(attempts: u32, retry_for: Timespan) -> i64 {
    let first = (retry_for.as_usec() / 8).clamp(1_000_000, 30_000_000);
    let doublings = attempts.saturating_sub(1).min(32);
    let wait = first.saturating_mul(1u64 << doublings);
    i64::try_from(wait.min(MAX_BACKOFF.as_usec())).unwrap_or(i64::MAX)
}

/// What an attempt's outcome makes of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Sent,
    /// Try again at this time.
    Retry {
        next_us: i64,
    },
    /// Give up: the error is permanent, or the next try would come after
    /// `created + retry_for`.
    GiveUp,
}

/// The policy after an attempt: `attempts` counts this one.
pub fn after_attempt(
    ok: bool,
    retryable: bool,
    attempts: u32,
    created_us: i64,
    now_us: i64,
    retry_for: Timespan,
) -> AfterAttempt {
    if ok {
        return AfterAttempt::Sent;
    }
    if !retryable {
        return AfterAttempt::GiveUp;
    }
    let next_us = now_us.saturating_add(backoff_us(attempts, retry_for));
    let last_us = created_us.saturating_add(i64::try_from(retry_for.as_usec()).unwrap_or(i64::MAX));
    if next_us > last_us {
        AfterAttempt::GiveUp
    } else {
        AfterAttempt::Retry { next_us }
    }
}

/// Whether a pending delivery never tried (or waiting) has run out of time
/// without an attempt (e.g. held back by the rate limit all along).
pub fn expired(created_us: i64, now_us: i64, retry_for: Timespan) -> bool {
    now_us > created_us.saturating_add(i64::try_from(retry_for.as_usec()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{PathStep, StepKind};

    fn load(text: &str) -> (NotifyConfig, Vec<crate::diag::Diagnostic>) {
        let mut diags = Diagnostics::new("c.toml", text);
        let doc = crate::walk::parse_document(text, &mut diags).unwrap();
        let root = doc.get_ref();
        let table = match root.get("notify").map(|v| v.get_ref()) {
            Some(toml::de::DeValue::Table(t)) => t.clone(),
            _ => DeTable::new(),
        };
        let config = decode_config(&table, Mode::System, None, &mut diags);
        (config, diags.into_vec())
    }

    #[test]
    fn every_kind_of_channel() {
        let (config, diags) = load(
            r#"
[notify]
retry_for = "2h"
max_per_minute = 5
repeat = "4h"
[notify.channels.ops]
webhook = "https://hooks.example.com/T000/B000/XXXX"
format = "slack"
[notify.channels.mail-ops]
mail = ["ops@example.com", "db@example.com"]
from = "jobctl@db1.example.com"
sendmail = "/usr/lib/sendmail"
repeat = "1h"
[notify.channels.pager]
command = ["/usr/local/bin/page", "--team", "db"]
timeout = "30s"
[notify.channels.secret]
webhook_file = "/etc/jobctl/secrets/ops.url"
"#,
        );
        assert!(diags.is_empty(), "{diags:#?}");
        assert_eq!(config.retry_for, Timespan::from_secs(7200));
        assert_eq!(config.max_per_minute, 5);
        let ops = &config.channels["ops"];
        assert_eq!(ops.format, Format::Slack);
        assert_eq!(ops.repeat, Some(Timespan::from_secs(4 * 3600)));
        assert_eq!(ops.timeout, DEFAULT_CHANNEL_TIMEOUT);
        assert!(matches!(&ops.target, Target::Webhook(s) if s.expose().starts_with("https://")));
        assert!(
            !format!("{ops:?}").contains("hooks.example.com"),
            "the URL is a secret"
        );
        let mail = &config.channels["mail-ops"];
        assert_eq!(
            mail.target,
            Target::Mail(vec!["ops@example.com".into(), "db@example.com".into()])
        );
        assert_eq!(mail.sendmail, "/usr/lib/sendmail");
        assert_eq!(mail.repeat, Some(Timespan::from_secs(3600)));
        let pager = &config.channels["pager"];
        assert_eq!(pager.timeout, Timespan::from_secs(30));
        assert_eq!(pager.sendmail, DEFAULT_SENDMAIL);
        assert_eq!(pager.target.kind(), "command");
        assert_eq!(
            config.channels["secret"].target,
            Target::WebhookFile("/etc/jobctl/secrets/ops.url".into())
        );
    }

    #[test]
    fn every_mistake_is_reported_with_its_key_and_never_quotes_a_url() {
        let (config, diags) = load(
            r#"
[notify]
retry_for = "infinity"
max_per_minute = 0
[notify.channels.two]
webhook = "https://a.example/x"
command = ["/bin/true"]
[notify.channels.none]
format = "slack"
[notify.channels.badurl]
webhook = "ftp://user:hunter2@example"
[notify.channels.rel]
command = ["page"]
[notify.channels.addr]
mail = ["ops@example.com\nBcc: evil@example.com"]
[notify.channels.fmt]
webhook = "https://a.example/x"
format = "discord"
[notify.channels."bad name"]
command = ["/bin/true"]
[notify.channels.slow]
command = ["/bin/true"]
timeout = "1h"
sendmail = "/usr/sbin/sendmail"
[notify.channels.often]
command = ["/bin/true"]
repeat = "1s"
[notify.channels.typo]
comand = ["/bin/true"]
"#,
        );
        let keys: Vec<String> = diags
            .iter()
            .map(|d| d.key.clone().unwrap_or_default())
            .collect();
        for expected in [
            "notify.retry_for",
            "notify.max_per_minute",
            "notify.channels.two",
            "notify.channels.none",
            "notify.channels.none.format",
            "notify.channels.badurl.webhook",
            "notify.channels.rel.command[0]",
            "notify.channels.addr.mail[0]",
            "notify.channels.fmt.format",
            "notify.channels.bad name",
            "notify.channels.slow.timeout",
            "notify.channels.slow.sendmail",
            "notify.channels.often.repeat",
            "notify.channels.typo.comand",
        ] {
            assert!(
                keys.iter().any(|k| k == expected),
                "no diagnostic for {expected}: {diags:#?}"
            );
        }
        assert!(diags.iter().all(|d| !d.message.contains("hunter2")
            && !d.hint.clone().unwrap_or_default().contains("hunter2")));
        let typo = diags
            .iter()
            .find(|d| d.key.as_deref() == Some("notify.channels.typo.comand"))
            .unwrap();
        assert_eq!(typo.hint.as_deref(), Some("did you mean `command`?"));
        assert!(
            diags.iter().all(|d| d.line > 0),
            "every diagnostic has a position: {diags:#?}"
        );
        // Only the channels without errors of their own survive.
        assert!(
            config.channels.contains_key("often"),
            "a bad repeat falls back to none"
        );
        assert!(!config.channels.contains_key("two") && !config.channels.contains_key("rel"));
    }

    struct Inspector(Vec<PathStep>);
    impl PathInspector for Inspector {
        fn trace(&self, _: &str) -> Result<Vec<PathStep>, String> {
            Ok(self.0.clone())
        }
    }

    fn step(path: &str, kind: StepKind, uid: u32, mode: u32) -> PathStep {
        PathStep {
            path: path.into(),
            kind,
            uid,
            mode,
        }
    }

    #[test]
    fn a_secret_file_others_can_change_is_refused_and_one_they_can_read_warned() {
        let text = "[notify.channels.ops]\nwebhook_file = \"/etc/jobctl/s.url\"\n";
        let run = |steps: Vec<PathStep>| {
            let mut diags = Diagnostics::new("c.toml", text);
            let doc = crate::walk::parse_document(text, &mut diags).unwrap();
            let toml::de::DeValue::Table(t) = doc.get_ref().get("notify").unwrap().get_ref() else {
                unreachable!()
            };
            let inspector = Inspector(steps);
            decode_config(t, Mode::System, Some(&inspector), &mut diags);
            diags.into_vec()
        };
        let base = || {
            vec![
                step("/", StepKind::Folder, 0, 0o755),
                step("/etc/jobctl", StepKind::Folder, 0, 0o755),
            ]
        };
        let mut good = base();
        good.push(step("/etc/jobctl/s.url", StepKind::File, 0, 0o600));
        assert!(run(good).is_empty());
        let mut readable = base();
        readable.push(step("/etc/jobctl/s.url", StepKind::File, 0, 0o644));
        let d = run(readable);
        assert!(
            d.len() == 1
                && !d[0].is_error()
                && d[0].hint.as_deref() == Some("chmod 0600 /etc/jobctl/s.url"),
            "{d:#?}"
        );
        let mut theirs = base();
        theirs.push(step("/etc/jobctl/s.url", StepKind::File, 1000, 0o600));
        let d = run(theirs);
        assert!(d.len() == 1 && d[0].is_error() && d[0].line == 2, "{d:#?}");
        let d = run(base());
        assert!(
            d.len() == 1 && !d[0].is_error() && d[0].message.contains("does not exist"),
            "{d:#?}"
        );
    }

    #[test]
    fn job_keys_resolve_over_the_defaults() {
        let text = "notify = [\"ops\", \"pager\"]\nnotify_after = 3\ngrace = \"10min\"\n";
        let mut diags = Diagnostics::new("j.toml", text);
        let doc = crate::walk::parse_document(text, &mut diags).unwrap();
        let reader = TableReader::new("", doc.get_ref(), JOB_KEYS, &[], &mut diags);
        let spec = NotifySpec::decode(&reader, &mut diags);
        let defaults_text = "notify = [\"mail\"]\nwarn_after = \"1h\"\nnotify_after = 2\nsucceed_within = \"26h\"\n";
        let mut ddiags = Diagnostics::new("c.toml", defaults_text);
        let ddoc = crate::walk::parse_document(defaults_text, &mut ddiags).unwrap();
        let dreader = TableReader::new("defaults", ddoc.get_ref(), JOB_KEYS, &[], &mut ddiags);
        let defaults = NotifySpec::decode(&dreader, &mut ddiags);
        let resolved = spec.resolve(&defaults);
        assert_eq!(resolved.channels, ["ops", "pager"]);
        assert_eq!(resolved.after, 3);
        assert_eq!(resolved.grace, Some(Timespan::from_secs(600)));
        assert_eq!(resolved.warn_after, Some(Timespan::from_secs(3600)));
        assert_eq!(
            resolved.succeed_within,
            Some(Timespan::from_secs(26 * 3600))
        );
        // Only the defaults: their channels.
        assert_eq!(NotifySpec::default().resolve(&defaults).channels, ["mail"]);
        assert_eq!(
            NotifySpec::default().resolve(&NotifySpec::default()).after,
            1
        );
        // `notify = []` turns the defaults off.
        let off_text = "notify = []\n";
        let mut odiags = Diagnostics::new("j.toml", off_text);
        let odoc = crate::walk::parse_document(off_text, &mut odiags).unwrap();
        let oreader = TableReader::new("", odoc.get_ref(), JOB_KEYS, &[], &mut odiags);
        let off = NotifySpec::decode(&oreader, &mut odiags);
        assert!(off.resolve(&defaults).channels.is_empty());
        assert!(diags.into_vec().is_empty());
    }

    #[test]
    fn unknown_channels_get_a_suggestion() {
        let config = NotifyConfig {
            channels: [(
                "ops".to_string(),
                ChannelConfig {
                    name: "ops".into(),
                    target: Target::Command(vec!["/bin/true".into()]),
                    format: Format::Generic,
                    timeout: DEFAULT_CHANNEL_TIMEOUT,
                    sendmail: DEFAULT_SENDMAIL.into(),
                    from: None,
                    repeat: None,
                },
            )]
            .into(),
            ..NotifyConfig::default()
        };
        assert_eq!(unknown_channel("ops", &config), None);
        let (message, hint) = unknown_channel("opps", &config).unwrap();
        assert_eq!(message, "unknown notification channel \"opps\"");
        assert_eq!(hint, "did you mean `ops`?");
        // No close name: the channels there are, and how to add this one.
        let (_, hint) = unknown_channel("mailto-ops-example-com", &config).unwrap();
        assert_eq!(
            hint,
            "the configured channels are: ops; to add this one, define \
             [notify.channels.mailto-ops-example-com] in the configuration (docs/notifications.md)"
        );
        let mut broken = NotifyConfig::default();
        broken.invalid.insert("x".into());
        assert!(
            unknown_channel("x", &broken)
                .unwrap()
                .0
                .contains("is not valid")
        );
        assert!(
            unknown_channel("x", &NotifyConfig::default())
                .unwrap()
                .1
                .contains("no channel is configured")
        );
    }

    #[test]
    fn bad_job_keys() {
        let text = "notify = \"ops\"\nnotify_after = 0\ngrace = \"0\"\nwarn_after = \"infinity\"\n";
        let mut diags = Diagnostics::new("j.toml", text);
        let doc = crate::walk::parse_document(text, &mut diags).unwrap();
        let reader = TableReader::new("", doc.get_ref(), JOB_KEYS, &[], &mut diags);
        let spec = NotifySpec::decode(&reader, &mut diags);
        let keys: Vec<String> = diags
            .into_vec()
            .into_iter()
            .map(|d| d.key.unwrap())
            .collect();
        assert_eq!(keys, ["notify", "notify_after", "grace", "warn_after"]);
        assert!(spec.notify.is_none() && spec.after.is_none());
    }

    #[test]
    fn backoff_doubles_from_an_eighth_of_retry_for_up_to_an_hour() {
        let day = DEFAULT_RETRY_FOR;
        let waits: Vec<i64> = (1..=9).map(|n| backoff_us(n, day) / 1_000_000).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff_us(1, Timespan::from_secs(16)), 2_000_000);
        assert_eq!(backoff_us(1, Timespan::ZERO), 1_000_000);
        assert_eq!(backoff_us(u32::MAX, day), 3_600_000_000);
    }

    #[test]
    fn attempts_are_retried_until_retry_for_then_given_up() {
        let s = 1_000_000i64;
        let retry_for = Timespan::from_secs(16); // waits 2 s, 4 s, 8 s …
        assert_eq!(
            after_attempt(true, false, 1, 0, 0, retry_for),
            AfterAttempt::Sent
        );
        assert_eq!(
            after_attempt(false, false, 1, 0, 0, retry_for),
            AfterAttempt::GiveUp
        );
        assert_eq!(
            after_attempt(false, true, 1, 0, 0, retry_for),
            AfterAttempt::Retry { next_us: 2 * s }
        );
        assert_eq!(
            after_attempt(false, true, 2, 0, 2 * s, retry_for),
            AfterAttempt::Retry { next_us: 6 * s }
        );
        assert_eq!(
            after_attempt(false, true, 3, 0, 6 * s, retry_for),
            AfterAttempt::Retry { next_us: 14 * s }
        );
        // The fourth wait (16 s) would end past created + 16 s.
        assert_eq!(
            after_attempt(false, true, 4, 0, 14 * s, retry_for),
            AfterAttempt::GiveUp
        );
        // retry_for = 0: one attempt only.
        assert_eq!(
            after_attempt(false, true, 1, 0, 0, Timespan::ZERO),
            AfterAttempt::GiveUp
        );
        assert!(!expired(0, 16 * s, retry_for) && expired(0, 16 * s + 1, retry_for));
    }

    #[test]
    fn addresses_and_urls() {
        assert!(check_address("ops@example.com").is_ok());
        for bad in [
            "ops",
            "@x",
            "a@",
            "a b@c",
            "a@b,c@d",
            "Ops <ops@x>",
            "a@b\r\nBcc: c@d",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
        assert!(check_url("https://hooks.example.com/x").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        for bad in [
            "hooks.example.com",
            "https://",
            "https:///x",
            "https://a b",
            "file:///etc/passwd",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod job_file_tests {
    use crate::config::load_config;
    use crate::context::{Mode, UtcOnly};
    use crate::job::{JobSource, LoadContext, load_job};

    const CONFIG: &str = "[notify.channels.ops]\ncommand = [\"/bin/true\"]\n[notify.channels.pager]\ncommand = [\"/bin/true\"]\n[defaults]\nnotify = [\"ops\"]\n";

    fn load(config: &str, job: &str) -> crate::job::LoadedJob {
        let (config, diags) = load_config("c.toml", config, Mode::System, &UtcOnly);
        assert!(diags.is_empty(), "{diags:#?}");
        let ctx = LoadContext {
            mode: Mode::System,
            config: &config,
            zones: &UtcOnly,
            root_files: None,
            now: None,
            systemd: None,
        };
        load_job(
            JobSource {
                path: "jobs.d/backup.toml",
                stem: "backup",
                text: job,
            },
            &ctx,
        )
    }

    #[test]
    fn a_job_takes_the_default_channels_or_its_own() {
        let job = load(CONFIG, "command = [\"/bin/true\"]\ndaily = \"03:00\"\n")
            .job
            .unwrap();
        assert_eq!(job.notify.channels, ["ops"]);
        let job = load(CONFIG, "command = [\"/bin/true\"]\ndaily = \"03:00\"\nnotify = [\"pager\"]\nnotify_after = 3\n").job.unwrap();
        assert_eq!(job.notify.channels, ["pager"]);
        assert_eq!(job.notify.after, 3);
        let job = load(
            CONFIG,
            "command = [\"/bin/true\"]\ndaily = \"03:00\"\nnotify = []\n",
        )
        .job
        .unwrap();
        assert!(job.notify.channels.is_empty());
    }

    #[test]
    fn an_unknown_channel_is_an_error_at_its_position_with_a_suggestion() {
        let loaded = load(
            CONFIG,
            "command = [\"/bin/true\"]\ndaily = \"03:00\"\nnotify = [\"ops\", \"pagr\"]\n",
        );
        assert!(loaded.job.is_none());
        let d = &loaded.diagnostics[0];
        assert_eq!(
            (d.line, d.column, d.key.as_deref()),
            (3, 18, Some("notify[1]")),
            "{d:#?}"
        );
        assert_eq!(d.hint.as_deref(), Some("did you mean `pager`?"));
    }

    #[test]
    fn an_unknown_default_channel_is_the_configurations_error() {
        let (_, diags) = load_config(
            "c.toml",
            "[defaults]\nnotify = [\"opps\"]\n[notify.channels.ops]\ncommand = [\"/bin/true\"]\n",
            Mode::System,
            &UtcOnly,
        );
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert_eq!(
            (
                diags[0].file.as_str(),
                diags[0].line,
                diags[0].key.as_deref()
            ),
            ("c.toml", 2, Some("defaults.notify[0]"))
        );
        assert_eq!(diags[0].hint.as_deref(), Some("did you mean `ops`?"));
    }

    #[test]
    fn warn_after_past_the_timeout_is_a_warning() {
        let loaded = load(
            CONFIG,
            "command = [\"/bin/true\"]\ndaily = \"03:00\"\ntimeout = \"10min\"\nwarn_after = \"1h\"\n",
        );
        assert!(loaded.job.is_some());
        assert_eq!(loaded.diagnostics.len(), 1);
        assert!(
            !loaded.diagnostics[0].is_error()
                && loaded.diagnostics[0].key.as_deref() == Some("warn_after")
        );
    }

    #[test]
    fn only_jobs_with_channels_get_the_shims_notify_flag() {
        let words = |job: &str| {
            let job = load(CONFIG, job).job.unwrap();
            let rendered = crate::render::render(
                &job,
                &crate::render::RenderOptions {
                    mode: Mode::System,
                    unit_prefix: "jobctl-",
                    jobctl_path: "/usr/bin/jobctl",
                    local_zone: &jiff::tz::TimeZone::UTC,
                    zones: &UtcOnly,
                    history: &Default::default(),
                    systemd_version: Some(252),
                    user_state_dir: None,
                },
            )
            .unwrap();
            let line = rendered
                .service
                .contents
                .lines()
                .find_map(|l| l.strip_prefix("ExecStart="))
                .unwrap()
                .to_string();
            crate::escape::read_exec_words(&line).unwrap()
        };
        let with = words("command = [\"/bin/true\"]\ndaily = \"03:00\"\n");
        let separator = with.iter().position(|w| w == "--").unwrap();
        assert!(
            with[..separator].contains(&"--notify".to_string()),
            "{with:?}"
        );
        let without = words("command = [\"/bin/true\"]\ndaily = \"03:00\"\nnotify = []\n");
        assert!(!without.contains(&"--notify".to_string()), "{without:?}");
    }
}
