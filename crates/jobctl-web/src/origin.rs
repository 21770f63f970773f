//! Who started a run from the web: the actor recorded with a "run now"
//! (`jobctl::origin`, docs/dashboard.md "Who started a run").

use jobctl_core::web::Caller;

/// The actor recorded for a run `caller` started, as readers show it:
/// `token NAME` (a bearer token or the sign-in cookie, TCP), `uid N (NAME)`
/// (the unix socket's peer; `uid N` when the uid has no name), `proxy user
/// NAME` (a trusted reverse proxy's user header), `anonymous`
/// (never for a run: starting one needs the `run` scope).
///
/// The one place that says who a caller is for the history; a new kind of
/// caller (a trusted proxy's user header) gets its form here. Whatever it
/// holds is bounded when recorded (`jobctl_history::ACTOR_MAX_BYTES`) and
/// escaped wherever it is printed on a terminal or a page.
///
/// Looks the uid's name up with `getent passwd` (a process, as for the
/// groups: no name service in this process); call it off the async runtime.
pub fn actor_of(caller: &Caller) -> String {
    match caller {
        Caller::Token { name, .. } => format!("token {name}"),
        Caller::Unix { uid, .. } => match user_name(*uid) {
            Some(name) => format!("uid {uid} ({name})"),
            None => format!("uid {uid}"),
        },
        Caller::Proxy { user, .. } => format!("proxy user {user}"),
        Caller::Anonymous => "anonymous".to_string(),
    }
}

/// The name of `uid` from `getent passwd`, if it has one that is a plain
/// user name (anything else is left out rather than recorded).
fn user_name(uid: u32) -> Option<String> {
    let out = std::process::Command::new("getent")
        .args(["passwd", &uid.to_string()])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    let mut fields = line.trim_end().split(':');
    let name = fields.next()?;
    let found: u32 = fields.nth(1)?.parse().ok()?;
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'));
    (found == uid && plain).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_say_which_credential_started_the_run() {
        let token = Caller::Token {
            name: "ci".into(),
            scopes: Vec::new(),
            filter: Default::default(),
        };
        assert_eq!(actor_of(&token), "token ci");
        let proxied = Caller::Proxy {
            user: "alice".into(),
            scopes: Vec::new(),
        };
        assert_eq!(actor_of(&proxied), "proxy user alice");
        // Root is uid 0 everywhere getent works; a uid without an entry is
        // its number alone.
        let root = actor_of(&Caller::Unix {
            uid: 0,
            gids: Vec::new(),
        });
        assert!(root == "uid 0 (root)" || root == "uid 0", "{root}");
        assert_eq!(
            actor_of(&Caller::Unix {
                uid: 4_000_000_123,
                gids: Vec::new(),
            }),
            "uid 4000000123"
        );
        assert_eq!(actor_of(&Caller::Anonymous), "anonymous");
    }
}
