//! `jobctl-web`: jobctl's dashboard and HTTP API (docs/dashboard.md).
//!
//! A binary of its own so that the run shim (`jobctl`) links no HTTP server
//! (docs/design.md, "The web server: a second binary"). It answers every
//! request by running the same code as the CLI's `--json` (the `jobctl`
//! library's commands, their document captured instead of printed), so the
//! API's objects are the CLI's. Who may see and do what is decided by
//! `jobctl_core::web::allow` from the peer's credentials (unix socket) or a
//! bearer token (TCP).

// The request helpers return the finished answer (an axum `Response`, 128
// bytes) as their error, which the handlers return at once: boxing it would
// only add an allocation to every refusal.
#![allow(clippy::result_large_err)]

mod api;
mod auth;
mod extract;
mod jobpage;
mod listen;
mod live;
mod origin;
mod pages;
mod readings;
mod runs;
mod visible;
mod when;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

/// Serve jobctl's dashboard and JSON API (/api/v1/…).
///
/// Listens on the sockets systemd passes (jobctl-web.socket), else on a unix
/// socket (/run/jobctl/web.sock; with --user $XDG_RUNTIME_DIR/jobctl/web.sock),
/// and on TCP when --listen is given. Access: docs/dashboard.md.
#[derive(Debug, Parser)]
#[command(name = "jobctl-web", version)]
struct Args {
    /// Serve the calling user's own jobs (their systemd manager, ~/.config/jobctl).
    #[arg(long)]
    user: bool,
    /// Folder of job files (as jobctl's --jobs-dir).
    #[arg(long, value_name = "DIR")]
    jobs_dir: Option<PathBuf>,
    /// Unit folder (as jobctl's --unit-dir).
    #[arg(long, value_name = "DIR")]
    unit_dir: Option<PathBuf>,
    /// Configuration file (as jobctl's --config).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The unix socket to bind when systemd passes none.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Also listen on this TCP address (a request needs a token, unless [web] anonymous_read allows reading).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

fn main() -> std::process::ExitCode {
    // Before any thread exists: the environment is changed here.
    let activated = listen::activated();
    let args = Args::parse();
    // Keep the job files' and unit files' readings between requests while
    // the files are unchanged (never older than a request: jobctl::cache).
    jobctl::cache::enable();
    // The units run `jobctl`, the binary beside this one in the package
    // (both in /usr/bin), not `jobctl-web`: without `jobctl_path` in the
    // configuration, the commands this server runs compare the installed
    // units with that.
    if let Ok(exe) = std::env::current_exe() {
        let exe = exe.canonicalize().unwrap_or(exe);
        jobctl::rendering::set_running_jobctl(exe.with_file_name("jobctl"));
    }
    match serve(args, activated) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let causes: Vec<String> = e.chain().map(ToString::to_string).collect();
            jobctl::output::error(&causes.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(args: Args, activated: Result<Vec<listen::Socket>>) -> Result<()> {
    let mut sockets = activated?;
    let globals = globals(&args);
    let state = Arc::new(auth::State::load(&globals, args.user)?);
    if sockets.is_empty() {
        let path = match &args.socket {
            Some(p) => p.clone(),
            None => default_socket(args.user)?,
        };
        sockets.push(listen::bind_unix(&path, args.user)?);
    }
    if let Some(addr) = &args.listen {
        sockets.push(listen::bind_tcp(addr)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for socket in sockets {
            let app = api::router(state.clone());
            match socket {
                listen::Socket::Unix(l) => {
                    l.set_nonblocking(true)?;
                    let l = tokio::net::UnixListener::from_std(l)?;
                    let svc = app.into_make_service_with_connect_info::<auth::Peer>();
                    tasks.spawn(async move { axum::serve(l, svc).await });
                }
                listen::Socket::Tcp(l) => {
                    l.set_nonblocking(true)?;
                    let l = tokio::net::TcpListener::from_std(l)?;
                    let svc = app.into_make_service_with_connect_info::<auth::Peer>();
                    tasks.spawn(async move { axum::serve(l, svc).await });
                }
            }
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => Ok(()),
            _ = tokio::signal::ctrl_c() => Ok(()),
            Some(done) = tasks.join_next() => {
                done.context("a listener stopped")?.context("serving")
            }
        }
    })
}

/// The global options every captured command gets, as given to the server.
fn globals(args: &Args) -> Vec<String> {
    let mut g = Vec::new();
    if args.user {
        g.push("--user".to_string());
    }
    let mut path = |flag: &str, p: &Option<PathBuf>| {
        if let Some(p) = p {
            g.push(format!("--{flag}={}", p.display()));
        }
    };
    path("jobs-dir", &args.jobs_dir);
    path("unit-dir", &args.unit_dir);
    path("config", &args.config);
    g
}

fn default_socket(user: bool) -> Result<PathBuf> {
    if user {
        let dir = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .context("$XDG_RUNTIME_DIR is not set; give --socket")?;
        Ok(PathBuf::from(dir).join("jobctl/web.sock"))
    } else {
        Ok(PathBuf::from("/run/jobctl/web.sock"))
    }
}
