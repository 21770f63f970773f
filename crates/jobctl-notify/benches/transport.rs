//! Benchmark of one delivery attempt to a local receiver: a webhook POST
//! over HTTP and over HTTPS (a throwaway CA appended to a copy of the
//! host's CA bundle, so each attempt parses a realistic store and does a
//! full handshake, as every attempt does), and a command channel running
//! /bin/true. The receiver is fakehook's (crates/fakehook/hook.rs) on a
//! thread: it records each request to a file before answering, as in the
//! tests. Run with `scripts/bench-notify`; docs/benchmarks.md records the
//! figures.
//!
//! The HTTPS part needs the throwaway CA in the store the crate reads, so
//! the bench starts itself again with SSL_CERT_FILE naming the combined
//! bundle (the variable OpenSSL and rustls-native-certs honour).

#[path = "../tests/support/fixture.rs"]
mod fixture;
#[path = "../../fakehook/hook.rs"]
mod hook;
#[path = "../tests/support/tls.rs"]
mod tls;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jobctl_notify::{Channel, Format, deliver};

const SAMPLES: usize = 300;
const WARMUP: usize = 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // cargo test --benches asks for a list
    }
    match std::env::var("BENCH_NOTIFY_PKI") {
        Ok(pki) => measure(Path::new(&pki)),
        Err(_) => parent(),
    }
}

fn parent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = tls::make_pki(dir.path(), "DNS:localhost");
    let host_bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    let mut bundle = host_bundle.clone();
    bundle.extend_from_slice(&std::fs::read(&pki.ca_cert).expect("ca"));
    let bundle_path = dir.path().join("bundle.pem");
    std::fs::write(&bundle_path, bundle).expect("bundle");
    let count = String::from_utf8_lossy(&host_bundle)
        .matches("BEGIN CERTIFICATE")
        .count();
    println!("CA store: the host's bundle ({count} certificates) + the throwaway CA");
    let status = Command::new(std::env::current_exe().expect("exe"))
        .env("BENCH_NOTIFY_PKI", dir.path())
        .env("SSL_CERT_FILE", &bundle_path)
        .env_remove("SSL_CERT_DIR")
        .status()
        .expect("run the bench");
    assert!(status.success());
}

fn measure(pki_dir: &Path) {
    let recv = tempfile::tempdir().expect("temp dir");
    let hook = hook::Hook::new(recv.path(), vec![hook::Reply::Status(200)]).expect("hook");
    let http_port = hook.spawn().expect("listen");
    let pki = tls::Pki {
        ca_cert: pki_dir.join("ca.crt"),
        server_cert: pki_dir.join("server.crt"),
        server_key: pki_dir.join("server.key"),
    };
    let tls_port = tls::spawn_tls(&hook, &pki);
    let n = fixture::failure();
    let timeout = Duration::from_secs(10);
    let cases: Vec<(&str, Channel)> = vec![
        (
            "webhook http, generic",
            Channel::Webhook {
                url: format!("http://127.0.0.1:{http_port}/hook/SECRET"),
                format: Format::Generic,
                timeout,
            },
        ),
        (
            "webhook http, slack",
            Channel::Webhook {
                url: format!("http://127.0.0.1:{http_port}/hook/SECRET"),
                format: Format::Slack,
                timeout,
            },
        ),
        (
            "webhook https, slack (store + handshake)",
            Channel::Webhook {
                url: format!("https://localhost:{tls_port}/hook/SECRET"),
                format: Format::Slack,
                timeout,
            },
        ),
        (
            "command /bin/true",
            Channel::Command {
                argv: vec!["/bin/true".into()],
                timeout,
            },
        ),
    ];
    println!(
        "{SAMPLES} attempts each after {WARMUP} warm-up attempts; one attempt = one deliver() call"
    );
    println!("| attempt | median ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|");
    for (name, channel) in &cases {
        let mut times = Vec::with_capacity(SAMPLES);
        for i in 0..WARMUP + SAMPLES {
            let start = Instant::now();
            let a = deliver(channel, &n);
            let took = start.elapsed();
            assert!(a.ok, "{name}: {a:?}");
            if i >= WARMUP {
                times.push(took);
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p99 = times[(times.len() * 99).div_ceil(100) - 1];
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} |",
            ms(times[times.len() / 2]),
            ms(p99),
            ms(*times.last().expect("samples"))
        );
    }
    // The CA store alone: what every HTTPS attempt reads and parses.
    let mut loads: Vec<Duration> = (0..50)
        .map(|_| {
            let start = Instant::now();
            let certs = rustls_native_certs::load_native_certs();
            assert!(!certs.certs.is_empty());
            start.elapsed()
        })
        .collect();
    loads.sort();
    println!(
        "\nreading the CA store (rustls-native-certs, {} certificates): median {:.2} ms",
        rustls_native_certs::load_native_certs().certs.len(),
        loads[loads.len() / 2].as_secs_f64() * 1000.0
    );
}
