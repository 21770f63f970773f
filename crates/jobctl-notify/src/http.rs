//! The webhook transport: one POST, HTTPS verified against the host's CA
//! store, one deadline for everything, same-origin 307/308 redirects only.
//!
//! The URL's path, query and credentials are secrets (Slack and Teams put
//! the token in the path): nothing here formats the URL or an error that
//! could contain it. Details name the origin (`https://hooks.example.com`)
//! only, and are scrubbed of the path and query once more at the end.

use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::format::payload;
use crate::{Format, Notification, Outcome};

/// Redirects followed in one attempt (same origin, 307/308 only).
const MAX_REDIRECTS: usize = 5;

/// A parsed webhook URL.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    https: bool,
    host: String,
    port: u16,
    path: String,
    query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        const HIDDEN: &str = "(not shown: it may hold a secret)";
        let uri: Uri = url
            .parse()
            .map_err(|_| format!("the webhook URL is not a valid URL {HIDDEN}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(format!(
                    "the webhook URL must start with https:// or http:// {HIDDEN}"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("the webhook URL has no host {HIDDEN}"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "the webhook URL carries credentials (user:password@), which jobctl does not send {HIDDEN}"
            ));
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("the webhook URL has no host {HIDDEN}"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Target {
            url: url.to_string(),
            https,
            host,
            port,
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
        })
    }

    /// `https://host` or `http://host:8080`: what a detail may show.
    fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            format!("{scheme}://{}", self.host)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    fn same_origin(&self, other: &Target) -> bool {
        self.https == other.https && self.host == other.host && self.port == other.port
    }

    /// Where a `Location` points, resolved against this URL.
    fn resolve(&self, location: &str) -> Result<Target, String> {
        let scheme = if self.https { "https" } else { "http" };
        let absolute = if location.starts_with("https://") || location.starts_with("http://") {
            location.to_string()
        } else if let Some(rest) = location.strip_prefix("//") {
            format!("{scheme}://{rest}")
        } else if location.starts_with('/') {
            format!("{}{location}", self.origin())
        } else {
            let dir = self.path.rsplit_once('/').map_or("", |(d, _)| d);
            format!("{}{dir}/{location}", self.origin())
        };
        Target::parse(&absolute)
    }

    /// `s` without this URL's secrets, should a message ever quote them.
    fn scrub(&self, s: &str) -> String {
        let mut s = s.replace(&self.url, "<url>");
        for secret in [&self.query, &self.path] {
            if secret.len() > 1 {
                s = s.replace(secret.as_str(), "<hidden>");
            }
        }
        s
    }
}

pub(crate) fn post(
    url: &str,
    format: Format,
    timeout: Duration,
    n: &Notification,
    start: Instant,
) -> Outcome {
    let first = match Target::parse(url) {
        Ok(t) => t,
        Err(why) => return Outcome::failed(false, why),
    };
    let mut outcome = attempt(&first, format, timeout, n, start);
    outcome.detail = first.scrub(&outcome.detail);
    outcome
}

fn attempt(
    first: &Target,
    format: Format,
    timeout: Duration,
    n: &Notification,
    start: Instant,
) -> Outcome {
    let body = payload(format, n).to_string();
    let tls = if first.https {
        match tls_config() {
            Ok(tls) => Some(tls),
            Err(why) => return Outcome::failed(true, why),
        }
    } else {
        None
    };
    let event_id: String = n
        .event_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(128)
        .collect();
    let deadline = start + timeout;
    let mut target = first.clone();
    let mut hops = 0;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return timed_out(&target, timeout);
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(remaining))
            .user_agent(concat!("jobctl/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = &tls {
            config = config.tls_config(tls.clone());
        }
        let agent = ureq::Agent::new_with_config(config.build());
        let mut request = agent
            .post(target.url.as_str())
            .header("Content-Type", "application/json");
        if !event_id.is_empty() {
            // A receiver can drop a duplicate (a retry after a lost answer).
            request = request.header("Idempotency-Key", event_id.as_str());
        }
        let mut response = match request.send(body.as_bytes()) {
            Ok(r) => r,
            Err(e) => return transport_error(e, &target, timeout),
        };
        let status = response.status().as_u16();
        let via = match hops {
            0 => String::new(),
            1 => " (after 1 redirect)".to_string(),
            n => format!(" (after {n} redirects)"),
        };
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let Some(location) = location else {
                return Outcome {
                    http_status: Some(status),
                    detail: format!(
                        "HTTP {status} from {} without a Location{via}",
                        target.origin()
                    ),
                    ..Outcome::default()
                };
            };
            let next = match target.resolve(location.trim()) {
                Ok(next) => next,
                Err(_) => {
                    return Outcome {
                        http_status: Some(status),
                        detail: format!(
                            "HTTP {status} from {}: redirect to an invalid URL, not followed",
                            target.origin()
                        ),
                        ..Outcome::default()
                    };
                }
            };
            if !target.same_origin(&next) {
                return Outcome {
                    http_status: Some(status),
                    detail: format!(
                        "HTTP {status} from {}: redirect to another origin ({}) not followed; configure the URL it points to",
                        target.origin(),
                        next.origin()
                    ),
                    ..Outcome::default()
                };
            }
            if !matches!(status, 307 | 308) {
                return Outcome {
                    http_status: Some(status),
                    detail: format!(
                        "HTTP {status} from {}: a redirect that turns the POST into a GET is not followed; configure the URL it points to",
                        target.origin()
                    ),
                    ..Outcome::default()
                };
            }
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Outcome {
                    http_status: Some(status),
                    detail: format!(
                        "more than {MAX_REDIRECTS} redirects from {}",
                        target.origin()
                    ),
                    ..Outcome::default()
                };
            }
            // Same scheme, host and port: the body and TLS settings carry over.
            target = Target {
                url: next.url.clone(),
                ..next
            };
            continue;
        }
        // What the receiver said, to explain a refusal (Slack answers
        // `invalid_blocks`, `no_service` …): the start of the body only.
        let mut said = Vec::new();
        if !(200..300).contains(&status) {
            let _ = response
                .body_mut()
                .as_reader()
                .take(200)
                .read_to_end(&mut said);
        }
        let said = String::from_utf8_lossy(&said);
        let said = said.trim();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        let ok = (200..300).contains(&status);
        // 408, 425, 429 and 5xx: the receiver may take it later.
        let retryable = matches!(status, 408 | 425 | 429 | 500..=599);
        return Outcome {
            ok,
            retryable,
            http_status: Some(status),
            detail: format!("HTTP {status} from {}{via}{said}", target.origin()),
            ..Outcome::default()
        };
    }
}

fn timed_out(target: &Target, timeout: Duration) -> Outcome {
    Outcome::failed(
        true,
        format!(
            "no answer from {} within the timeout ({} ms)",
            target.origin(),
            timeout.as_millis()
        ),
    )
}

/// The reason of a failed exchange, never quoting the URL.
fn transport_error(e: ureq::Error, target: &Target, timeout: Duration) -> Outcome {
    use std::io::ErrorKind::*;
    let origin = target.origin();
    match e {
        ureq::Error::Timeout(_) => timed_out(target, timeout),
        ureq::Error::HostNotFound => {
            Outcome::failed(true, format!("cannot resolve the host of {origin} (DNS)"))
        }
        ureq::Error::Io(io) => {
            if io.kind() == TimedOut || io.kind() == WouldBlock {
                return timed_out(target, timeout);
            }
            // rustls reports a failed handshake through the socket's I/O.
            if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                return Outcome::failed(true, format!("TLS with {origin} failed: {tls}"));
            }
            let why = match io.kind() {
                ConnectionRefused => "connection refused".to_string(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    "the connection was closed before an answer".to_string()
                }
                _ if io.raw_os_error().is_some() => io.to_string(),
                kind => format!("network error ({kind})"),
            };
            Outcome::failed(true, format!("{origin}: {why}"))
        }
        ureq::Error::Rustls(tls) => {
            Outcome::failed(true, format!("TLS with {origin} failed: {tls}"))
        }
        ureq::Error::Tls(why) => Outcome::failed(true, format!("TLS with {origin} failed: {why}")),
        ureq::Error::Protocol(p) => {
            Outcome::failed(true, format!("{origin} did not answer in HTTP/1.1: {p}"))
        }
        ureq::Error::ConnectionFailed => {
            Outcome::failed(true, format!("cannot connect to {origin}"))
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => Outcome::failed(
            false,
            "the webhook URL was refused by the HTTP client (not shown: it may hold a secret)",
        ),
        // Never formatted: a future variant could quote the URL.
        _ => Outcome::failed(true, format!("the POST to {origin} failed")),
    }
}

/// The CA certificates of the host's store, read for each attempt (a CA
/// added with update-ca-certificates counts at once). The store is the one
/// OpenSSL uses (on Debian /etc/ssl/certs/ca-certificates.crt and
/// /etc/ssl/certs), or the SSL_CERT_FILE / SSL_CERT_DIR variables'.
fn tls_config() -> Result<TlsConfig, String> {
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<Certificate<'static>> = found
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if certs.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(format!(
            "no CA certificate found in the host's store (/etc/ssl/certs; install ca-certificates){why}"
        ));
    }
    // ring, not aws-lc-rs: no cmake or large C build, a smaller binary. rustls
    // 0.23.48 deprecates it for lacking post-quantum key exchange, which a
    // webhook POST does not need; see docs/design.md ("Crates added").
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::new_with_certs(&certs))
        .unversioned_rustls_crypto_provider(Arc::new(provider))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_redirect_targets() {
        let t = Target::parse("https://Hooks.Example.com/services/T0/B0/SECRET?x=1").unwrap();
        assert_eq!(t.origin(), "https://hooks.example.com");
        assert!(t.same_origin(&t.resolve("/other").unwrap()));
        assert!(t.same_origin(&t.resolve("next").unwrap()));
        assert_eq!(t.resolve("next").unwrap().path, "/services/T0/B0/next");
        assert!(t.same_origin(&t.resolve("https://hooks.example.com:443/x").unwrap()));
        assert!(!t.same_origin(&t.resolve("http://hooks.example.com/x").unwrap()));
        assert!(!t.same_origin(&t.resolve("https://hooks.example.com:8443/x").unwrap()));
        assert!(!t.same_origin(&t.resolve("//evil.example/x").unwrap()));
        assert_eq!(
            Target::parse("http://127.0.0.1:8080/").unwrap().origin(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            t.scrub("GET /services/T0/B0/SECRET?x=1 failed"),
            "GET <hidden>?<hidden> failed"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for url in [
            "hooks.example.com/SECRET",
            "ftp://hooks.example.com/SECRET",
            "https://user:SECRET@hooks.example.com/",
            "https:///SECRET",
            "https://exa mple.com/SECRET",
            "",
        ] {
            let err = Target::parse(url).unwrap_err();
            assert!(!err.contains("SECRET"), "{url}: {err}");
        }
    }
}
