//! Every environment variable jobctl reads, declared in one place.
//!
//! Flags that can also come from the environment name these constants in their
//! clap definitions; the rest are read through the helpers below.

/// Overrides the jobs folder (same as `--jobs-dir`).
pub const JOBS_DIR: &str = "JOBCTL_JOBS_DIR";
/// Overrides the unit folder (same as `--unit-dir`).
pub const UNIT_DIR: &str = "JOBCTL_UNIT_DIR";
/// Overrides the global configuration file (same as `--config`).
pub const CONFIG: &str = "JOBCTL_CONFIG";
/// Disables colour in output when set to any value (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// The user's home folder, for per-user mode paths.
pub const HOME: &str = "HOME";
/// Base of per-user configuration (default `~/.config`).
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// Base of per-user state (default `~/.local/state`).
pub const XDG_STATE_HOME: &str = "XDG_STATE_HOME";

/// The user's runtime folder; `--user` finds the session bus at `$XDG_RUNTIME_DIR/bus`.
pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
/// The session bus address (`--user`), when set; wins over `XDG_RUNTIME_DIR`.
pub const DBUS_SESSION_BUS_ADDRESS: &str = "DBUS_SESSION_BUS_ADDRESS";
/// The system bus address, when not the standard one.
pub const DBUS_SYSTEM_BUS_ADDRESS: &str = "DBUS_SYSTEM_BUS_ADDRESS";

/// The value of an environment variable, treating an empty value as unset.
pub fn var_os(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}
