//! Whether the user's systemd manager outlives their sessions: logind's
//! "lingering". Without it, logind stops `user@UID.service` when the user's
//! last session ends, and every timer of their per-user jobs with it.

use std::path::Path;

/// Where logind keeps its lingering choice: one file per user, named after
/// the user (`loginctl enable-linger` creates it; logind reads it at start
/// and whenever a user's state is checked).
const LINGER_DIR: &str = "/var/lib/systemd/linger";

/// The calling user's name, and whether lingering is on for them; `None`
/// when the user has no name to look up.
pub fn caller() -> Option<(String, bool)> {
    let uid = nix::unistd::geteuid().as_raw();
    let name = crate::commands::exec::user_name_of(uid)?;
    let on = Path::new(LINGER_DIR).join(&name).exists();
    Some((name, on))
}
