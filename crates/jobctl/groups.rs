//! Groups by name, from the host's name service: `getent group`, a separate
//! process, as the run shim asks for a user (the shipped binary links glibc
//! statically and has no name service of its own; docs/design.md, "Static
//! linking"). One lookup for `jobctl validate` (that the groups `[web]`
//! names exist) and for jobctl-web (their gids, when it starts).

use std::process::{Command, Stdio};

/// The gid of group `name`: `Ok(None)` when the name service does not know
/// it (`getent` exits 2), `Err` when it could not be asked.
pub fn gid_of(name: &str) -> Result<Option<u32>, String> {
    let out = Command::new("getent")
        .args(["group", "--", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run getent: {e}"))?;
    match out.status.code() {
        Some(0) => {}
        // "One or more supplied key could not be found in the database."
        Some(2) => return Ok(None),
        _ => return Err(format!("`getent group {name}` failed ({})", out.status)),
    }
    // NAME:PASSWORD:GID:MEMBERS
    let line = String::from_utf8_lossy(&out.stdout);
    line.lines()
        .next()
        .and_then(|l| l.split(':').nth(2))
        .and_then(|gid| gid.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| format!("`getent group {name}` printed no gid"))
}

/// The host's groups, for the configuration's checks
/// ([`jobctl_core::context::GroupLookup`]).
pub struct HostGroups;

impl jobctl_core::context::GroupLookup for HostGroups {
    fn gid(&self, name: &str) -> Result<Option<u32>, String> {
        gid_of(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getent_knows_root_and_not_a_made_up_group() {
        assert_eq!(gid_of("root"), Ok(Some(0)));
        assert_eq!(gid_of("no-such-group-jobctl-test"), Ok(None));
    }
}
