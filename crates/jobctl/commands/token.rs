//! `jobctl token create|list|revoke`: the bearer tokens of jobctl-web's TCP
//! listener, kept hashed in a file only its owner can read
//! ([`jobctl_core::web::tokens`]).

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use jobctl_core::web::filter::{self, JobFilter};
use jobctl_core::web::tokens::{self, StoredToken};

use crate::error::{CliError, CliResult};
use crate::output;
use crate::paths::Paths;

/// Manage the bearer tokens of the web API's TCP listener (jobctl-web).
///
/// A token is shown once, when it is created (the token alone on stdout);
/// only its SHA-256 is stored, in web-tokens beside the configuration
/// (/etc/jobctl/web-tokens, mode 0600). Scopes: read (jobs, runs, output,
/// health), run ("run now"), manage (enable, disable). With --jobs or --tag
/// the token sees and acts on only the jobs whose name matches one of the
/// patterns (* and ? as wildcards) or that carry one of the tags.
///
/// Examples:
///   jobctl token create --scope read --name grafana
///   jobctl token create --scope read,run --name ci
///   jobctl token create --scope read,run --jobs 'etl-*,backup' --tag nightly --name etl
///   jobctl token list
///   jobctl token revoke ci
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it (once).
    Create(CreateArgs),
    /// List the tokens (names and scopes; never the tokens).
    List(ListArgs),
    /// Remove a token.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// What the token may do: read, run, manage (comma-separated).
    #[arg(long, value_name = "SCOPES", default_value = "read")]
    pub scope: String,
    /// Its name (for `list` and `revoke`) [default: token-N].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Only the jobs with these names (comma-separated; * and ? match any
    /// characters and one character).
    #[arg(long, value_name = "PATTERNS")]
    pub jobs: Option<String>,
    /// Only the jobs with one of these tags (comma-separated).
    #[arg(long, value_name = "TAGS")]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token's name.
    pub name: String,
}

/// Where the tokens of this mode are kept.
pub fn file(paths: &Paths) -> PathBuf {
    paths
        .config
        .parent()
        .unwrap_or(Path::new("/etc/jobctl"))
        .join("web-tokens")
}

pub fn run(paths: &Paths, args: TokenArgs) -> CliResult {
    let path = file(paths);
    match args.action {
        TokenAction::Create(a) => {
            let scopes = tokens::parse_scopes(&a.scope)
                .map_err(|e| CliError::usage(anyhow::anyhow!("--scope: {e}")))?;
            let list = |text: &Option<String>, flag: &str, check| {
                text.as_deref()
                    .map(|t| filter::parse_list(t, check))
                    .transpose()
                    .map(Option::unwrap_or_default)
                    .map_err(|e| CliError::usage(anyhow::anyhow!("--{flag}: {e}")))
            };
            let job_filter = JobFilter {
                jobs: list(&a.jobs, "jobs", filter::check_pattern)?,
                tags: list(&a.tag, "tag", filter::check_tag)?,
            };
            let mut stored = read(&path)?;
            let name = match a.name {
                Some(n) => n,
                None => (1..)
                    .map(|n| format!("token-{n}"))
                    .find(|n| stored.iter().all(|t| &t.name != n))
                    .unwrap_or_default(),
            };
            tokens::check_name(&name)
                .map_err(|e| CliError::usage(anyhow::anyhow!("--name: {e}")))?;
            if stored.iter().any(|t| t.name == name) {
                return Err(CliError::usage(anyhow::anyhow!(
                    "a token named {name} exists already"
                ))
                .hint(format!(
                    "revoke it first (`{}`) or choose another --name",
                    crate::paths::jobctl(&format!("token revoke {name}"))
                )));
            }
            let mut random = [0u8; 32];
            getrandom::fill(&mut random)
                .map_err(|e| CliError::failure(anyhow::anyhow!("no random bytes: {e}")))?;
            let token = tokens::token_from(&random);
            stored.push(StoredToken {
                name: name.clone(),
                scopes,
                filter: job_filter,
                hash: tokens::hash(&token),
            });
            write(&path, &stored)?;
            output::print_text(&format!("{token}\n"))?;
            output::note(&format!(
                "created token {name}; it is not shown again (only its hash is kept in {})",
                path.display()
            ));
        }
        TokenAction::List(a) => {
            let stored = read(&path)?;
            if a.json {
                output::print_json("tokens", &serde_json::json!({ "tokens": stored }))?;
            } else {
                let mut text = String::new();
                for t in &stored {
                    let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
                    text.push_str(&format!("{}\t{}", t.name, scopes.join(",")));
                    if !t.filter.jobs.is_empty() {
                        text.push_str(&format!("\tjobs={}", t.filter.jobs.join(",")));
                    }
                    if !t.filter.tags.is_empty() {
                        text.push_str(&format!("\ttags={}", t.filter.tags.join(",")));
                    }
                    text.push('\n');
                }
                output::print_text(&text)?;
            }
        }
        TokenAction::Revoke(a) => {
            let mut stored = read(&path)?;
            let before = stored.len();
            stored.retain(|t| t.name != a.name);
            if stored.len() == before {
                return Err(CliError::usage(anyhow::anyhow!(
                    "no token named {}",
                    output::escape(&a.name, output::Lines::Escape)
                ))
                .hint(format!(
                    "see them with `{}`",
                    crate::paths::jobctl("token list")
                )));
            }
            write(&path, &stored)?;
            output::note(&format!("revoked token {}", a.name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The stored tokens (none when the file does not exist). The file must be
/// this user's and readable by nobody else; anything else is refused.
pub fn read(path: &Path) -> CliResult<Vec<StoredToken>> {
    let text = match read_private(path) {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(CliError::failure(e)),
    };
    tokens::parse_file(&text)
        .map_err(|e| CliError::failure(anyhow::anyhow!("{}: {e}", path.display())))
}

/// A file only this user may read or write, opened without following a
/// link; `None` when it does not exist.
pub fn read_private(path: &Path) -> anyhow::Result<Option<String>> {
    use std::io::Read;
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nofollow())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0
    {
        anyhow::bail!(
            "{} must be a regular file of this user's, mode 0600; not reading it",
            path.display()
        );
    }
    let mut text = String::new();
    (&mut file)
        .take(1 << 20)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(text))
}

fn libc_o_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

fn write(path: &Path, stored: &[StoredToken]) -> CliResult<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {}", dir.display()))
        .map_err(CliError::failure)?;
    let tmp = dir.join(".web-tokens.new");
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(tokens::format_file(stored).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    })();
    written.map_err(CliError::failure)
}
