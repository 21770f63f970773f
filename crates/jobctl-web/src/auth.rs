//! Who is asking: the peer's credentials on the unix socket (`SO_PEERCRED`,
//! `SO_PEERGROUPS`), a bearer token on TCP, or a trusted reverse proxy's user
//! header (`[web.trusted_proxy]`); and CSRF tokens for actions that come with
//! ambient credentials. What they may do is decided by
//! `jobctl_core::web::allow` (and `allow_job` for a token's job filter).

use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::readings::{Actions, Readings};
use anyhow::{Context, Result};
use axum::extract::connect_info::Connected;
use axum::http::HeaderMap;
use axum::serve::IncomingStream;
use jobctl::cli::Cli;
use jobctl_core::config::Config;
use jobctl_core::web::proxy::{Origin, ProxyRefusal, proxy_caller};
use jobctl_core::web::tokens;
use jobctl_core::web::{Caller, Groups, Refusal, Scope, WebConfig, allow};
use std::sync::Arc;

/// The connection a request came on.
#[derive(Debug, Clone)]
pub enum Peer {
    /// The unix socket: the peer's uid and groups when it connected, or
    /// `None` when the kernel did not say (refused).
    Unix(Option<(u32, Vec<u32>)>),
    /// TCP: the peer's address.
    Tcp(std::net::SocketAddr),
}

impl Peer {
    /// The peer, for the server's log: `uid 1000`, `127.0.0.1:40312`.
    pub fn describe(&self) -> String {
        match self {
            Peer::Unix(Some((uid, _))) => format!("uid {uid} on the unix socket"),
            Peer::Unix(None) => "an unknown peer on the unix socket".into(),
            Peer::Tcp(addr) => addr.to_string(),
        }
    }
}

impl Connected<IncomingStream<'_, tokio::net::UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        let io = stream.io();
        let Ok(cred) = io.peer_cred() else {
            return Peer::Unix(None);
        };
        let mut gids = peer_groups(io.as_raw_fd()).unwrap_or_default();
        gids.push(cred.gid());
        Peer::Unix(Some((cred.uid(), gids)))
    }
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer::Tcp(*stream.remote_addr())
    }
}

/// The peer's supplementary groups as they were when it connected
/// (`SO_PEERGROUPS`, Linux 4.13).
fn peer_groups(fd: i32) -> Option<Vec<u32>> {
    let mut gids = vec![0 as libc::gid_t; 256];
    let mut len = (gids.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `gids`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            gids.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    gids.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
    Some(gids)
}

/// What every request needs: the configuration, the groups, the token file.
pub struct State {
    /// The global options given to the server, passed to every command.
    pub globals: Vec<String>,
    pub web: WebConfig,
    pub groups: Groups,
    pub own_uid: u32,
    pub token_file: PathBuf,
    /// The configuration file read (`[web]`), named in refusals.
    pub config_file: PathBuf,
    /// Secret of this server's life, for CSRF tokens.
    csrf_secret: [u8; 32],
    /// The uids of the `unix:` peers of `[web.trusted_proxy]`, resolved at start.
    pub proxy_uids: Vec<u32>,
    /// Reads shared by requests with the same arguments (`api::capture`).
    pub reads: Arc<Readings<Vec<String>, Captured>>,
    /// When the server's last action ended: nothing read before is used.
    pub actions: Arc<Actions>,
    /// Jobs pages shared by requests with the same filters (`pages::jobs`).
    pub pages: Arc<Readings<Vec<String>, crate::pages::Rendered>>,
}

/// A command's exit status and `--json` document (`api::capture`).
pub type Captured = (jobctl::exit::Exit, axum::body::Bytes);

impl State {
    /// Reads the configuration as the CLI does (an invalid one stops the
    /// server, naming file, line and key) and resolves the groups.
    pub fn load(globals: &[String], user: bool) -> Result<State> {
        let mut argv = vec!["jobctl".to_string()];
        argv.extend(globals.iter().cloned());
        argv.push("list".into());
        let cli = <Cli as clap::Parser>::try_parse_from(&argv).context("the global options")?;
        let paths = jobctl::paths::Paths::resolve(&cli.global)?;
        let zones = jobctl::zones::HostZones::new();
        let (config, diagnostics): (Config, _) = jobctl::load::load_config(&paths, &zones)?;
        let errors: Vec<String> = diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            anyhow::bail!(
                "the configuration is invalid; not serving:\n{}",
                errors.join("\n")
            );
        }
        let web = config.web;
        let max_age = web.max_age();
        let actions = Arc::new(Actions::default());
        let groups = Groups {
            read: web
                .read_group
                .as_deref()
                .map(|g| gid_of(g, "read_group", &paths.config))
                .transpose()?,
            action: web
                .action_group
                .as_deref()
                .map(|g| gid_of(g, "action_group", &paths.config))
                .transpose()?,
        };
        let proxy_uids = match &web.trusted_proxy {
            Some(proxy) => proxy
                .unix_users()
                .map(uid_of)
                .collect::<Result<Vec<u32>>>()?,
            None => Vec::new(),
        };
        let mut csrf_secret = [0u8; 32];
        getrandom::fill(&mut csrf_secret).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
        let _ = user;
        Ok(State {
            globals: globals.to_vec(),
            web,
            groups,
            own_uid: nix_uid(),
            token_file: jobctl::commands::token::file(&paths),
            config_file: paths.config.clone(),
            csrf_secret,
            proxy_uids,
            reads: Arc::new(Readings::new(max_age, actions.clone())),
            pages: Arc::new(Readings::new(max_age, actions.clone())),
            actions,
        })
    }

    /// Who is asking, from the connection and the headers, and whether the
    /// credentials are ambient (sent by a browser on its own: the unix
    /// socket, which may sit behind a proxy, and the token cookie), so that
    /// an action needs its CSRF token too.
    pub fn caller_with_cookie(
        &self,
        peer: &Peer,
        headers: &HeaderMap,
    ) -> Result<(Caller, bool), Refusal> {
        // A trusted proxy's user header comes first: from a listed peer it
        // is the caller (ambient: the browser's session with the proxy); from
        // anyone else it is refused, whatever else the request carries.
        if let Some(caller) = self.proxy_caller(peer, headers)? {
            return Ok((caller, true));
        }
        match peer {
            Peer::Unix(None) => Err(Refusal::Unauthenticated),
            Peer::Unix(Some((uid, gids))) => Ok((
                Caller::Unix {
                    uid: *uid,
                    gids: gids.clone(),
                },
                true,
            )),
            Peer::Tcp(_) => {
                if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
                    let presented = value
                        .to_str()
                        .ok()
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .ok_or(Refusal::Unauthenticated)?;
                    return Ok((self.token_caller(presented.trim())?, false));
                }
                if let Some(token) = cookie(headers, "jobctl_token") {
                    return Ok((self.token_caller(&token)?, true));
                }
                Ok((Caller::Anonymous, true))
            }
        }
    }

    fn token_caller(&self, presented: &str) -> Result<Caller, Refusal> {
        // Read per request: a revoked token stops working at once.
        let stored = jobctl::commands::token::read(&self.token_file)
            .map_err(|_| Refusal::Unauthenticated)?;
        let token = tokens::find(&stored, presented).ok_or(Refusal::Unauthenticated)?;
        Ok(Caller::Token {
            name: token.name.clone(),
            scopes: token.scopes.clone(),
            filter: token.filter.clone(),
        })
    }

    /// The user a trusted proxy names (`[web.trusted_proxy]`), `None`
    /// without the header (or without a configured proxy). A header from a
    /// peer not in `from`, sent twice, or not a user name is refused and
    /// logged.
    fn proxy_caller(&self, peer: &Peer, headers: &HeaderMap) -> Result<Option<Caller>, Refusal> {
        let Some(proxy) = &self.web.trusted_proxy else {
            return Ok(None);
        };
        let values: Vec<&[u8]> = headers
            .get_all(proxy.header.as_str())
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        if values.is_empty() {
            return Ok(None);
        }
        let trusted = match peer {
            Peer::Unix(Some((uid, _))) => proxy.trusts(Origin::Unix(*uid), &self.proxy_uids),
            Peer::Unix(None) => false,
            Peer::Tcp(addr) => proxy.trusts(Origin::Ip(addr.ip()), &self.proxy_uids),
        };
        proxy_caller(proxy, trusted, &values).map_err(|refusal| {
            let (why, refusal) = match refusal {
                ProxyRefusal::Untrusted => (
                    format!(
                        "a {} header from a peer not in [web.trusted_proxy] from",
                        proxy.header
                    ),
                    Refusal::UntrustedProxy,
                ),
                ProxyRefusal::Invalid(why) => (why, Refusal::BadProxyHeader),
            };
            // In the server's journal: who sent it, never the value itself.
            jobctl::output::warn(&format!(
                "refused a request from {}: {why}",
                peer.describe()
            ));
            refusal
        })
    }

    /// The caller a token would be, if it is accepted (the sign-in form).
    pub fn token_caller_of(&self, presented: &str) -> Option<Caller> {
        self.token_caller(presented).ok()
    }

    pub fn allow(&self, caller: &Caller, scope: Scope) -> Result<(), Refusal> {
        allow(caller, scope, &self.web, &self.groups, self.own_uid)
    }

    /// The CSRF token of a caller: a keyed hash of who it is, with a secret
    /// of this server's life.
    pub fn csrf_token(&self, caller: &Caller) -> String {
        let mut input = self.csrf_secret.to_vec();
        input.extend_from_slice(caller.describe().as_bytes());
        tokens::hash(&String::from_utf8_lossy(&input))
    }

    /// Whether `given` is this caller's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, caller: &Caller, given: &str) -> bool {
        let expected = self.csrf_token(caller);
        given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0
    }

    /// Whether an action with ambient credentials carries this caller's CSRF
    /// token in `X-Jobctl-Csrf`.
    pub fn csrf_ok(&self, caller: &Caller, headers: &HeaderMap) -> bool {
        headers
            .get("x-jobctl-csrf")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|g| self.csrf_matches(caller, g))
    }
}

/// A cookie's value from the `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn nix_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// A user's uid, from `getent passwd` (the `unix:` peers of
/// `[web.trusted_proxy]`), like [`gid_of`].
fn uid_of(name: &str) -> Result<u32> {
    let out = std::process::Command::new("getent")
        .args(["passwd", "--", name])
        .output()
        .context("running getent passwd")?;
    let line = String::from_utf8_lossy(&out.stdout);
    line.split(':')
        .nth(2)
        .and_then(|u| u.trim().parse().ok())
        .with_context(|| {
            format!("user {name} (unix:{name} in [web.trusted_proxy] from) does not exist")
        })
}

/// A group's gid, from the name service (`jobctl::groups`, the lookup
/// `jobctl validate` makes too, with the same fix in its error).
fn gid_of(name: &str, key: &str, config: &std::path::Path) -> Result<u32> {
    match jobctl::groups::gid_of(name) {
        Ok(Some(gid)) => Ok(gid),
        Ok(None) => anyhow::bail!(
            "group {name} (`web.{key}` in {}) does not exist: {}, then restart the server",
            config.display(),
            jobctl_core::web::missing_group_fix(name)
        ),
        Err(why) => anyhow::bail!(
            "cannot look up group {name} (`web.{key}` in {}): {why}",
            config.display()
        ),
    }
}
