//! A trusted reverse proxy's user header (`[web.trusted_proxy]`): a proxy
//! that authenticates people (single sign-on, client certificates, basic
//! auth) names the user in a header; jobctl-web believes that header only
//! from the peers listed in `from`, refuses it from anyone else, and gives
//! the user only the scopes the configuration lists for it (none unless
//! written). Pure: the server finds the peer and the header's values.
//!
//! ```toml
//! [web.trusted_proxy]
//! header = "X-Remote-User"                 # the header the proxy sets
//! from = ["127.0.0.1/32", "::1", "unix:www-data"]  # who may set it
//! scopes = ["read"]                        # every user the proxy names
//! users = { alice = ["read", "run"] }      # these users instead
//! ```

use std::net::IpAddr;

use serde::Serialize;

#[cfg(test)]
use super::WebConfig;
use super::{Caller, Scope};
use crate::diag::Diagnostics;
use crate::walk::{Sp, TableReader};

/// The keys of `[web.trusted_proxy]`.
pub const PROXY_KEYS: &[&str] = &["header", "from", "scopes", "users"];

/// The longest user name a proxy may send (bytes).
pub const MAX_USER_LEN: usize = 128;

/// `[web.trusted_proxy]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustedProxy {
    /// The header's name, in lower case (HTTP header names are
    /// case-insensitive).
    pub header: String,
    /// The peers whose header is believed.
    pub from: Vec<ProxyPeer>,
    /// The scopes of every user the proxy names (none unless written).
    pub scopes: Vec<Scope>,
    /// The scopes of these users, instead of `scopes`.
    pub users: Vec<(String, Vec<Scope>)>,
}

/// A peer allowed to set the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ProxyPeer {
    /// A TCP peer in this network (`127.0.0.1/32`, `::1`, `10.0.0.0/8`).
    Net { addr: IpAddr, prefix: u8 },
    /// A process of this user on the unix socket (`unix:www-data`); the
    /// server resolves the name to a uid when it starts.
    Unix { user: String },
}

impl ProxyPeer {
    fn parse(text: &str) -> Result<ProxyPeer, String> {
        if let Some(user) = text.strip_prefix("unix:") {
            crate::naming::check_user_group_name(user)?;
            return Ok(ProxyPeer::Unix {
                user: user.to_string(),
            });
        }
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!(
                "\"{}\" is not an address, a network or unix:USER",
                text.escape_debug()
            )
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("\"{p}\" is not a prefix length (0 to {max})")),
            },
        };
        if !net_bits_clear(addr, prefix) {
            return Err(format!(
                "\"{}\" has host bits set after the /{prefix}; write the network's first address",
                text.escape_debug()
            ));
        }
        Ok(ProxyPeer::Net { addr, prefix })
    }
}

fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// The network part's bits of an address `width` bits wide.
fn mask(width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let full = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    let host_bits = width - prefix;
    let host = if host_bits == 0 {
        0
    } else {
        (1u128 << host_bits) - 1
    };
    full & !host
}

fn net_bits_clear(addr: IpAddr, prefix: u8) -> bool {
    let (value, width) = bits(addr);
    value & !mask(width, prefix) == 0
}

/// Where a request came from, as far as the proxy rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A TCP peer's address.
    Ip(IpAddr),
    /// A peer on the unix socket: its uid.
    Unix(u32),
}

impl TrustedProxy {
    /// The user names of `unix:` peers, for the server to resolve.
    pub fn unix_users(&self) -> impl Iterator<Item = &str> {
        self.from.iter().filter_map(|p| match p {
            ProxyPeer::Unix { user } => Some(user.as_str()),
            ProxyPeer::Net { .. } => None,
        })
    }

    /// Whether the header is believed from `origin`; `unix_uids` are the
    /// uids of the `unix:` users, as the server resolved them.
    pub fn trusts(&self, origin: Origin, unix_uids: &[u32]) -> bool {
        match origin {
            Origin::Unix(uid) => {
                self.from
                    .iter()
                    .any(|p| matches!(p, ProxyPeer::Unix { .. }))
                    && unix_uids.contains(&uid)
            }
            Origin::Ip(ip) => {
                // An IPv4 peer of a dual-stack socket arrives as ::ffff:a.b.c.d.
                let ip = ip.to_canonical();
                self.from.iter().any(|p| match p {
                    ProxyPeer::Net { addr, prefix } if addr.is_ipv4() == ip.is_ipv4() => {
                        let (net, width) = bits(*addr);
                        let (value, _) = bits(ip);
                        let m = mask(width, *prefix);
                        value & m == net & m
                    }
                    _ => false,
                })
            }
        }
    }

    /// The scopes of a user the proxy names: its own entry in `users`, else
    /// `scopes`.
    pub fn scopes_of(&self, user: &str) -> Vec<Scope> {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map_or_else(|| self.scopes.clone(), |(_, s)| s.clone())
    }
}

/// A user name as a proxy may send it: 1 to [`MAX_USER_LEN`] bytes of
/// letters, digits and `. _ @ + -` (e-mail addresses and directory names;
/// no space, no control character, nothing a log or page could misread).
pub fn check_user(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_USER_LEN
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "not a user name: 1 to {MAX_USER_LEN} letters, digits and . _ @ + - (not starting with -)"
        ))
    }
}

/// Why a proxy header is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyRefusal {
    /// Sent by a peer not listed in `from` (HTTP 403).
    Untrusted,
    /// Sent twice, or not a user name (HTTP 400).
    Invalid(String),
}

/// The caller a request's proxy header makes: `None` without the header
/// (the other rules apply), the proxy's user from a trusted peer, a refusal
/// from anyone else or for a value that is not one user name. `values` are
/// every value of the header in the request, as bytes.
pub fn proxy_caller(
    proxy: &TrustedProxy,
    trusted: bool,
    values: &[&[u8]],
) -> Result<Option<Caller>, ProxyRefusal> {
    let [value] = values else {
        return if values.is_empty() {
            Ok(None)
        } else if trusted {
            Err(ProxyRefusal::Invalid(format!(
                "the {} header is sent {} times; send it once",
                proxy.header,
                values.len()
            )))
        } else {
            Err(ProxyRefusal::Untrusted)
        };
    };
    if !trusted {
        return Err(ProxyRefusal::Untrusted);
    }
    let user = std::str::from_utf8(value)
        .map_err(|_| ProxyRefusal::Invalid(format!("the {} header is not UTF-8", proxy.header)))?;
    check_user(user)
        .map_err(|e| ProxyRefusal::Invalid(format!("the {} header: {e}", proxy.header)))?;
    Ok(Some(Caller::Proxy {
        user: user.to_string(),
        scopes: proxy.scopes_of(user),
    }))
}

/// A header name as HTTP allows one (a token), not one jobctl-web reads for
/// something else.
fn check_header(name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    let token = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(format!("\"{}\" is not a header name", name.escape_debug()));
    }
    if matches!(
        lower.as_str(),
        "authorization" | "cookie" | "host" | "content-type" | "content-length" | "x-jobctl-csrf"
    ) {
        return Err(format!(
            "{name} carries something else; name the proxy's own header"
        ));
    }
    Ok(lower)
}

fn scope_list(
    reader: &TableReader<'_, '_>,
    key: &str,
    items: &[Sp<String>],
    diags: &mut Diagnostics<'_>,
) -> Vec<Scope> {
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match Scope::parse(&item.value) {
            Some(s) => {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            None => diags.error(
                item.span.clone(),
                &format!("{}[{index}]", reader.path(key)),
                format!("unknown scope \"{}\"", item.value.escape_debug()),
                Some("the scopes are read, run, manage".into()),
            ),
        }
    }
    out
}

/// Decodes `[web.trusted_proxy]` (`table` at `span`). `None` when it has an
/// error (reported with file, line and key): then no header is believed.
pub fn decode(
    table: &Sp<&toml::de::DeTable<'_>>,
    diags: &mut Diagnostics<'_>,
) -> Option<TrustedProxy> {
    const PREFIX: &str = "web.trusted_proxy";
    let reader = TableReader::new(PREFIX, table.value, PROXY_KEYS, &[], diags);
    let header = match reader.string("header", "\"X-Remote-User\"", diags) {
        Some(h) => match check_header(&h.value) {
            Ok(lower) => Some(lower),
            Err(e) => {
                diags.error(
                    h.span,
                    &reader.path("header"),
                    e,
                    Some("the header your proxy sets, e.g. header = \"X-Remote-User\"".into()),
                );
                None
            }
        },
        None => {
            if reader.raw("header").is_none() {
                diags.error(
                    table.span.clone(),
                    &reader.path("header"),
                    "missing: which header names the user",
                    Some("add header = \"X-Remote-User\"".into()),
                );
            }
            None
        }
    };
    let mut from = Vec::new();
    match reader.string_array("from", "[\"127.0.0.1/32\", \"unix:www-data\"]", diags) {
        Some(list) => {
            for (index, item) in list.value.iter().enumerate() {
                match ProxyPeer::parse(&item.value) {
                    Ok(p) => from.push(p),
                    Err(e) => diags.error(
                        item.span.clone(),
                        &format!("{}[{index}]", reader.path("from")),
                        e,
                        Some("an address (\"127.0.0.1\"), a network (\"10.0.0.0/8\") or \"unix:USER\"".into()),
                    ),
                }
            }
            if list.value.is_empty() {
                diags.error(
                    list.span,
                    &reader.path("from"),
                    "empty: no peer may set the header",
                    Some("list the proxy's address, e.g. from = [\"127.0.0.1\"]".into()),
                );
            }
        }
        None => {
            if reader.raw("from").is_none() {
                diags.error(
                    table.span.clone(),
                    &reader.path("from"),
                    "missing: which peers may set the header",
                    Some(
                        "add from = [\"127.0.0.1\"] (the proxy's address) or [\"unix:www-data\"]"
                            .into(),
                    ),
                );
            }
        }
    }
    let scopes = reader
        .string_array("scopes", "[\"read\"]", diags)
        .map(|list| scope_list(&reader, "scopes", &list.value, diags))
        .unwrap_or_default();
    let mut users = Vec::new();
    if let Some(table) = reader.table("users", "{ alice = [\"read\", \"run\"] }", diags) {
        // Every key is a user's name: the reader knows them all.
        let names: Vec<&str> = table
            .value
            .iter()
            .map(|(k, _)| -> &str { k.get_ref() })
            .collect();
        let inner = TableReader::new(&reader.path("users"), table.value, &names, &[], diags);
        for name in &names {
            if let Err(e) = check_user(name) {
                let span = inner.key_span(name).unwrap_or(table.span.clone());
                diags.error(span, &inner.path(name), e, None);
                continue;
            }
            if let Some(list) = inner.string_array(name, "[\"read\"]", diags) {
                users.push((
                    name.to_string(),
                    scope_list(&inner, name, &list.value, diags),
                ));
            }
        }
    }
    if diags.has_error_for(|k| k == PREFIX || k.starts_with("web.trusted_proxy.")) {
        return None;
    }
    Some(TrustedProxy {
        header: header?,
        from,
        scopes,
        users,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (crate::config::Config, Vec<String>) {
        let (config, diags) = crate::config::load_config(
            "c.toml",
            text,
            crate::context::Mode::System,
            &crate::context::UtcOnly,
        );
        (config, diags.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn reads_every_key() {
        let (config, shown) = load(
            "[web.trusted_proxy]\nheader = \"X-Remote-User\"\nfrom = [\"127.0.0.1\", \"10.1.0.0/16\", \"::1\", \"unix:www-data\"]\nscopes = [\"read\"]\nusers = { alice = [\"read\", \"run\"], \"bob@example.com\" = [] }\n",
        );
        assert!(shown.is_empty(), "{shown:#?}");
        let proxy = config.web.trusted_proxy.expect("decoded");
        assert_eq!(proxy.header, "x-remote-user");
        assert_eq!(proxy.from.len(), 4);
        assert_eq!(proxy.scopes, [Scope::Read]);
        assert_eq!(proxy.scopes_of("alice"), [Scope::Read, Scope::Run]);
        assert_eq!(proxy.scopes_of("bob@example.com"), []);
        assert_eq!(proxy.scopes_of("carol"), [Scope::Read]);
        assert_eq!(proxy.unix_users().collect::<Vec<_>>(), ["www-data"]);
    }

    #[test]
    fn no_scope_unless_written() {
        let (config, shown) =
            load("[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"127.0.0.1\"]\n");
        assert!(shown.is_empty(), "{shown:#?}");
        assert_eq!(
            config.web.trusted_proxy.unwrap().scopes_of("anyone"),
            Vec::<Scope>::new()
        );
    }

    /// Each mistake is named with file, line, column and key, and leaves no
    /// proxy configured (no header is believed).
    #[test]
    fn errors_name_file_line_and_key() {
        let table: &[(&str, &str)] = &[
            (
                "[web.trusted_proxy]\nfrom = [\"127.0.0.1\"]\n",
                "c.toml:1:1: error: web.trusted_proxy.header",
            ),
            (
                "[web.trusted_proxy]\nheader = \"X-User\"\n",
                "c.toml:1:1: error: web.trusted_proxy.from",
            ),
            (
                "[web.trusted_proxy]\nheader = \"X User\"\nfrom = [\"127.0.0.1\"]\n",
                "c.toml:2:10: error: web.trusted_proxy.header",
            ),
            (
                "[web.trusted_proxy]\nheader = \"Authorization\"\nfrom = [\"127.0.0.1\"]\n",
                "c.toml:2:10: error: web.trusted_proxy.header",
            ),
            (
                "[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"127.0.0.1\", \"10.0.0.1/8\"]\n",
                "c.toml:3:22: error: web.trusted_proxy.from[1]",
            ),
            (
                "[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"localhost\"]\n",
                "c.toml:3:9: error: web.trusted_proxy.from[0]",
            ),
            (
                "[web.trusted_proxy]\nheader = \"X-User\"\nfrom = []\n",
                "c.toml:3:8: error: web.trusted_proxy.from",
            ),
            (
                "[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"::1/129\"]\n",
                "c.toml:3:9: error: web.trusted_proxy.from[0]",
            ),
            (
                "[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"127.0.0.1\"]\nscopes = [\"read\", \"admin\"]\n",
                "c.toml:4:19: error: web.trusted_proxy.scopes[1]",
            ),
            (
                "[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"127.0.0.1\"]\nusers = { \"a b\" = [\"read\"] }\n",
                "c.toml:4:11: error: web.trusted_proxy.users.a b",
            ),
            (
                "[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"127.0.0.1\"]\nusers = { alice = \"read\" }\n",
                "c.toml:4:19: error: web.trusted_proxy.users.alice",
            ),
            (
                "[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"127.0.0.1\"]\nscope = [\"read\"]\n",
                "c.toml:4:1: error: web.trusted_proxy.scope",
            ),
            (
                "[web]\ntrusted_proxy = true\n",
                "c.toml:2:17: error: web.trusted_proxy",
            ),
        ];
        for (text, want) in table {
            let (config, shown) = load(text);
            let want = format!("error: {}`", want.replace(": error: ", ": `"));
            assert!(
                shown.iter().any(|s| s.starts_with(&want)),
                "{text}\nwanted {want}, got {shown:#?}"
            );
            assert_eq!(config.web.trusted_proxy, None, "{text}");
        }
    }

    #[test]
    fn trusted_peers() {
        let (config, shown) = load(
            "[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"127.0.0.1\", \"10.1.0.0/16\", \"fd00::/8\", \"unix:www-data\"]\n",
        );
        assert!(shown.is_empty(), "{shown:#?}");
        let proxy = config.web.trusted_proxy.unwrap();
        let ip = |s: &str| Origin::Ip(s.parse().unwrap());
        let table = [
            (ip("127.0.0.1"), true),
            (ip("127.0.0.2"), false),
            (ip("::ffff:127.0.0.1"), true),
            (ip("10.1.200.3"), true),
            (ip("10.2.0.1"), false),
            (ip("fd12::1"), true),
            (ip("fe80::1"), false),
            (ip("::1"), false),
            (Origin::Unix(33), true),
            (Origin::Unix(1000), false),
            (Origin::Unix(0), false),
        ];
        for (origin, want) in table {
            assert_eq!(proxy.trusts(origin, &[33]), want, "{origin:?}");
        }
        let (config, _) =
            load("[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"0.0.0.0/0\"]\n");
        let any4 = config.web.trusted_proxy.unwrap();
        assert!(any4.trusts(ip("192.0.2.7"), &[]));
        assert!(!any4.trusts(ip("2001:db8::1"), &[]));
        assert!(!any4.trusts(Origin::Unix(33), &[33]), "no unix: entry");
    }

    #[test]
    fn the_header_decides_only_from_a_trusted_peer() {
        let (config, _) = load(
            "[web.trusted_proxy]\nheader = \"X-User\"\nfrom = [\"127.0.0.1\"]\nusers = { alice = [\"read\", \"run\"] }\n",
        );
        let proxy = config.web.trusted_proxy.unwrap();
        let alice = Caller::Proxy {
            user: "alice".into(),
            scopes: vec![Scope::Read, Scope::Run],
        };
        let nobody = Caller::Proxy {
            user: "mallory".into(),
            scopes: vec![],
        };
        let long = "a".repeat(MAX_USER_LEN + 1);
        let invalid =
            |r: Result<Option<Caller>, ProxyRefusal>| matches!(r, Err(ProxyRefusal::Invalid(_)));
        assert_eq!(proxy_caller(&proxy, true, &[]), Ok(None));
        assert_eq!(proxy_caller(&proxy, false, &[]), Ok(None));
        assert_eq!(proxy_caller(&proxy, true, &[b"alice"]), Ok(Some(alice)));
        assert_eq!(proxy_caller(&proxy, true, &[b"mallory"]), Ok(Some(nobody)));
        assert_eq!(
            proxy_caller(&proxy, false, &[b"alice"]),
            Err(ProxyRefusal::Untrusted)
        );
        assert_eq!(
            proxy_caller(&proxy, false, &[b"alice", b"bob"]),
            Err(ProxyRefusal::Untrusted)
        );
        assert!(invalid(proxy_caller(&proxy, true, &[b"alice", b"alice"])));
        for bad in [
            &b""[..],
            b"al ice",
            b"alice\x1b[31m",
            b"-alice",
            b"\xff",
            long.as_bytes(),
            b"a/b",
        ] {
            assert!(invalid(proxy_caller(&proxy, true, &[bad])), "{bad:?}");
            assert_eq!(
                proxy_caller(&proxy, false, &[bad]),
                Err(ProxyRefusal::Untrusted),
                "untrusted is said first: {bad:?}"
            );
        }
        let config = WebConfig {
            actions: true,
            ..WebConfig::default()
        };
        let nobody = proxy_caller(&proxy, true, &[b"mallory"]).unwrap().unwrap();
        assert_eq!(
            super::super::allow(
                &nobody,
                Scope::Read,
                &config,
                &super::super::Groups::default(),
                0
            ),
            Err(super::super::Refusal::Forbidden),
            "a user without scopes may do nothing"
        );
    }
}
