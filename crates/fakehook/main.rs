//! fakehook: a webhook receiver for jobctl's tests and benchmarks. Not
//! shipped. Std only.
//!
//! ```text
//! fakehook --dir DIR [--listen ADDR] [REPLY...]
//! ```
//!
//! Listens on ADDR (default 127.0.0.1:0, a free port), writes the port to
//! `DIR/port` once listening, records every request whole to
//! `DIR/requests/NNNN.http` (request line, headers, body, exactly as
//! received; renamed into place once complete), and answers request N with
//! REPLY N (the last one repeats; default 200):
//!
//! ```text
//! 200, 404, 429, 500 …     that status, with a short body
//! 307=URL                  a redirect (any 3xx) to URL
//! hang                     no answer until the client closes the connection
//! close                    close the connection without an answer
//! ```
//!
//! Runs until killed.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

mod hook;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut listen = "127.0.0.1:0".to_string();
    let mut replies = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            "--listen" => listen = args.next().unwrap_or_default(),
            other => match hook::Reply::parse(other) {
                Ok(r) => replies.push(r),
                Err(e) => {
                    eprintln!("fakehook: {e}");
                    return ExitCode::from(2);
                }
            },
        }
    }
    let Some(dir) = dir else {
        eprintln!("fakehook: --dir DIR is required");
        return ExitCode::from(2);
    };
    let run = || -> std::io::Result<()> {
        let hook = hook::Hook::new(&dir, replies)?;
        let listener = TcpListener::bind(&listen)?;
        hook::write_port(&dir, listener.local_addr()?.port())?;
        hook.serve(listener);
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fakehook: {e}");
            ExitCode::FAILURE
        }
    }
}
