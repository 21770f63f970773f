//! The global configuration: `/etc/jobctl/config.toml` in system mode,
//! `~/.config/jobctl/config.toml` in per-user mode.
//!
//! ```toml
//! unit_prefix = "jobctl-"          # units are <prefix><job>.service/.timer
//! jobctl_path = "/usr/bin/jobctl"  # the binary every ExecStart= runs
//!
//! [defaults]                       # any job may override these
//! timeout = "2h"
//! output_limit = "8M"
//! environment = { TZ = "UTC" }
//!
//! [history]
//! keep_runs = 1000                 # per job
//! keep_age = "90d"
//! max_output = "1G"                # captured output kept, all runs together
//! ```
//!
//! A missing file is the same as an empty one.

use serde::Serialize;

use crate::context::{Mode, ZoneLookup};
use crate::diag::{Diagnostic, Diagnostics};
use crate::duration::Timespan;
use crate::job::{self, JobSpec};
use crate::naming::{self, DEFAULT_UNIT_PREFIX};
use crate::size::ByteSize;
use crate::walk::{self, TableReader};

/// The top-level keys of the configuration.
pub const CONFIG_KEYS: &[&str] = &[
    "unit_prefix",
    "jobctl_path",
    "defaults",
    "history",
    "notify",
    "web",
    "metrics",
];
/// The keys of its `[history]` table.
pub const HISTORY_KEYS: &[&str] = &["db", "keep_runs", "keep_age", "max_output"];

/// The keys of its `[metrics]` table.
pub const METRICS_KEYS: &[&str] = &["textfile"];

/// `jobctl metrics` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricsConfig {
    /// Where `jobctl watch` writes the metrics after every pass, for
    /// node_exporter's textfile collector: an absolute path ending in
    /// `.prom`.
    pub textfile: Option<String>,
}

/// History settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HistoryConfig {
    /// The history database, overriding the mode's default location.
    pub db: Option<String>,
    /// Runs kept per job.
    pub keep_runs: Option<u32>,
    /// Runs older than this are deleted.
    pub keep_age: Option<Timespan>,
    /// Captured output kept across all runs, in bytes.
    pub max_output: Option<ByteSize>,
}

/// The global configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub unit_prefix: String,
    /// The absolute path of the jobctl binary written into `ExecStart=`;
    /// `None` means "the binary that is running".
    pub jobctl_path: Option<String>,
    pub defaults: JobSpec,
    pub history: HistoryConfig,
    /// Notification channels and delivery limits ([`crate::notify`]).
    pub notify: crate::notify::NotifyConfig,
    /// The dashboard and HTTP API (`jobctl-web`; [`crate::web`]).
    pub web: crate::web::WebConfig,
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            unit_prefix: DEFAULT_UNIT_PREFIX.to_string(),
            jobctl_path: None,
            defaults: JobSpec::default(),
            history: HistoryConfig::default(),
            notify: crate::notify::NotifyConfig::default(),
            web: crate::web::WebConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

/// Loads the configuration from its text. Returns the configuration (the
/// defaults where a key is invalid) and every diagnostic.
pub fn load_config(
    path: &str,
    text: &str,
    mode: Mode,
    zones: &dyn ZoneLookup,
) -> (Config, Vec<Diagnostic>) {
    load_config_with(path, text, mode, zones, None, None)
}

/// [`load_config`], checking the files root reads from the configuration
/// (`webhook_file`) with the ownership rule when `root_files` is given (system
/// mode, as root), and that the groups `[web]` names exist when `groups` is
/// given (`jobctl validate`).
pub fn load_config_with(
    path: &str,
    text: &str,
    mode: Mode,
    zones: &dyn ZoneLookup,
    root_files: Option<&dyn crate::context::PathInspector>,
    groups: Option<&dyn crate::context::GroupLookup>,
) -> (Config, Vec<Diagnostic>) {
    let mut diags = Diagnostics::new(path, text);
    let mut config = Config::default();
    if let Some(document) = walk::parse_document(text, &mut diags) {
        let reader = TableReader::new("", document.get_ref(), CONFIG_KEYS, &[], &mut diags);
        if let Some(prefix) = reader.string("unit_prefix", "\"jobctl-\"", &mut diags) {
            match naming::check_unit_prefix(&prefix.value) {
                Ok(()) => config.unit_prefix = prefix.value,
                Err(message) => diags.error(prefix.span, "unit_prefix", message, None),
            }
        }
        if let Some(exe) = reader.string("jobctl_path", "\"/usr/bin/jobctl\"", &mut diags) {
            match check_jobctl_path(&exe.value) {
                Ok(()) => config.jobctl_path = Some(exe.value),
                Err(message) => diags.error(
                    exe.span,
                    "jobctl_path",
                    message,
                    Some("give the absolute path of the jobctl binary".into()),
                ),
            }
        }
        if let Some(defaults) = reader.table("defaults", "{ timeout = \"2h\" }", &mut diags) {
            config.defaults = job::decode_defaults(defaults.value, mode, zones, &mut diags);
        }
        if let Some(history) = reader.table("history", "{ keep_runs = 1000 }", &mut diags) {
            let inner = TableReader::new("history", history.value, HISTORY_KEYS, &[], &mut diags);
            config.history.db = inner
                .string("db", "\"/var/lib/jobctl/history.db\"", &mut diags)
                .and_then(|db| {
                    if db.value.starts_with('/') {
                        Some(db.value)
                    } else {
                        diags.error(db.span, "history.db", "not an absolute path", None);
                        None
                    }
                });
            config.history.keep_runs =
                inner
                    .integer("keep_runs", "1000", &mut diags)
                    .and_then(|n| match u32::try_from(n.value) {
                        Ok(v) if v >= 1 => Some(v),
                        _ => {
                            diags.error(
                                n.span,
                                "history.keep_runs",
                                "must be at least 1",
                                Some("keep_runs counts runs kept per job".into()),
                            );
                            None
                        }
                    });
            config.history.keep_age = inner
                .duration("keep_age", "\"90d\"", &mut diags)
                .map(|d| d.value);
            config.history.max_output = inner
                .size("max_output", "\"1G\"", &mut diags)
                .map(|s| s.value);
        }
        if let Some(notify) = reader.table("notify", "{ retry_for = \"24h\" }", &mut diags) {
            config.notify =
                crate::notify::decode_config(notify.value, mode, root_files, &mut diags);
        }
        if let Some(web) = reader.table("web", "{ read_group = \"jobctl-readers\" }", &mut diags) {
            config.web = crate::web::decode_config(web.value, groups, &mut diags);
        }
        if let Some(metrics) = reader.table(
            "metrics",
            "{ textfile = \"/var/lib/prometheus/node-exporter/jobctl.prom\" }",
            &mut diags,
        ) {
            let inner = TableReader::new("metrics", metrics.value, METRICS_KEYS, &[], &mut diags);
            config.metrics.textfile = inner
                .string(
                    "textfile",
                    "\"/var/lib/prometheus/node-exporter/jobctl.prom\"",
                    &mut diags,
                )
                .and_then(|path| match check_textfile(&path.value) {
                    Ok(()) => Some(path.value),
                    Err(message) => {
                        diags.error(
                            path.span,
                            "metrics.textfile",
                            message,
                            Some(
                                "e.g. textfile = \"/var/lib/prometheus/node-exporter/jobctl.prom\" \
                                 (node_exporter's textfile collector reads *.prom files)"
                                    .into(),
                            ),
                        );
                        None
                    }
                });
        }
        crate::notify::check_default_channels(&config.defaults.notify, &config.notify, &mut diags);
    }
    (config, diags.into_vec())
}

/// The metrics textfile must be an absolute path, of a file whose name
/// ends in `.prom` (the only files node_exporter's textfile collector
/// reads), without control characters.
pub fn check_textfile(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("not an absolute path".into());
    }
    if path.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    if name.len() <= ".prom".len() || !name.ends_with(".prom") {
        return Err("the file name must end in .prom (node_exporter reads no other)".into());
    }
    Ok(())
}

/// The jobctl binary's path must be absolute and made of ordinary path
/// characters: it is the first word of every `ExecStart=`.
pub fn check_jobctl_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "\"{}\" is not an absolute path",
            path.escape_debug()
        ));
    }
    if let Some(c) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+')))
    {
        return Err(format!(
            "the path contains {}; use a path made of letters, digits and / . _ - +",
            naming::describe_char(c)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::UtcOnly;

    #[test]
    fn empty_config_is_default() {
        let (config, diags) = load_config("c.toml", "", Mode::System, &UtcOnly);
        assert!(diags.is_empty());
        assert_eq!(config.unit_prefix, "jobctl-");
        assert_eq!(config.jobctl_path, None);
    }

    #[test]
    fn reads_every_section() {
        let text = r#"
unit_prefix = "acme-"
jobctl_path = "/opt/jobctl/bin/jobctl"
[defaults]
timeout = "2h"
environment = { TZ = "UTC" }
[history]
keep_runs = 50
keep_age = "30d"
max_output = "512M"
"#;
        let (config, diags) = load_config("c.toml", text, Mode::System, &UtcOnly);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(config.unit_prefix, "acme-");
        assert_eq!(
            config.jobctl_path.as_deref(),
            Some("/opt/jobctl/bin/jobctl")
        );
        assert_eq!(config.history.keep_runs, Some(50));
        assert_eq!(
            config.history.max_output,
            Some(ByteSize::from_bytes(512 << 20))
        );
    }

    #[test]
    fn reports_every_problem_with_its_key() {
        let text = "unit_prefix = \"a b\"\njobctl_path = \"bin/jobctl\"\n[defaults]\ntimeout = \"soon\"\ncommand = [\"/bin/true\"]\n[history]\nkeep_runs = 0\n";
        let (_, diags) = load_config("c.toml", text, Mode::System, &UtcOnly);
        let keys: Vec<_> = diags
            .iter()
            .map(|d| d.key.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [
                "unit_prefix",
                "jobctl_path",
                "defaults.timeout",
                "defaults.command",
                "history.keep_runs"
            ]
        );
    }

    #[test]
    fn the_metrics_textfile_is_an_absolute_prom_file() {
        let ok = "[metrics]\ntextfile = \"/var/lib/prometheus/node-exporter/jobctl.prom\"\n";
        let (config, diags) = load_config("c.toml", ok, Mode::System, &UtcOnly);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            config.metrics.textfile.as_deref(),
            Some("/var/lib/prometheus/node-exporter/jobctl.prom")
        );
        for (value, why) in [
            ("jobctl.prom", "absolute"),
            ("/var/lib/x/jobctl.txt", ".prom"),
            ("/var/lib/x/.prom", ".prom"),
            ("/var/lib/x/a\\u001bb.prom", "control"),
        ] {
            let text = format!("[metrics]\ntextfile = \"{value}\"\n");
            let (config, diags) = load_config("c.toml", &text, Mode::System, &UtcOnly);
            assert_eq!(config.metrics.textfile, None, "{value}");
            assert_eq!(diags.len(), 1, "{value}: {diags:?}");
            assert_eq!(diags[0].key.as_deref(), Some("metrics.textfile"));
            assert!(
                diags[0].message.contains(why),
                "{value}: {}",
                diags[0].message
            );
            assert_eq!((diags[0].line, diags[0].file.as_str()), (2, "c.toml"));
        }
        let (_, diags) = load_config(
            "c.toml",
            "[metrics]\ntextfil = \"/a.prom\"\n",
            Mode::System,
            &UtcOnly,
        );
        assert_eq!(
            diags[0].key.as_deref(),
            Some("metrics.textfil"),
            "{diags:?}"
        );
    }
}
