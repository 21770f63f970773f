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
/// The editor `jobctl edit` runs (a shell command), before `EDITOR`.
pub const VISUAL: &str = "VISUAL";
/// The editor `jobctl edit` runs when `VISUAL` is not set.
pub const EDITOR: &str = "EDITOR";
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

/// Set by systemd for a unit with `StateDirectory=`: a colon-separated list of
/// absolute paths. The shim writes `<first>/history.db` there (jobs that run
/// as another user get `StateDirectory=jobctl/users/<user>`).
pub const STATE_DIRECTORY: &str = "STATE_DIRECTORY";
/// Set by systemd for every unit start: the invocation's 128-bit id, the
/// `_SYSTEMD_INVOCATION_ID` of the run's journal lines.
pub const INVOCATION_ID: &str = "INVOCATION_ID";
/// Set by systemd (≥ 250) for services started by a timer: the timer's name.
/// Its presence makes a run's trigger `timer`.
pub const TRIGGER_UNIT: &str = "TRIGGER_UNIT";
/// Overrides the system-mode state folder (default `/var/lib/jobctl`), where
/// the main history database and the users' folders live. For tests and
/// unusual layouts.
pub const STATE_DIR: &str = "JOBCTL_STATE_DIR";
/// Where `jobctl exec` sends its warnings (e.g. "run not recorded"): `journal`,
/// `stderr`, or `auto` (default: the journal when its socket answers, else a
/// structured line on stderr).
pub const WARNINGS: &str = "JOBCTL_WARNINGS";

/// Set by systemd (≥ 251) for a service started by another unit's
/// `OnFailure=`/`OnSuccess=` (when exactly one unit names it there): the
/// invocation id and name of the unit whose end started it. Their presence
/// makes a run's trigger `chain`.
pub const MONITOR_INVOCATION_ID: &str = "MONITOR_INVOCATION_ID";
pub const MONITOR_UNIT: &str = "MONITOR_UNIT";
/// Where the shim sends its per-run journal entries (native protocol
/// datagrams), instead of `/run/systemd/journal/socket`: for tests, which
/// receive them on a socket of their own.
pub const JOURNAL_SOCKET: &str = "JOBCTL_JOURNAL_SOCKET";

/// Set by systemd for services with `User=` or `DynamicUser=`: the user's
/// name. The shim records it (trusted only under systemd, i.e. with
/// `$INVOCATION_ID` set) instead of looking the uid up.
pub const USER: &str = "USER";

/// Overrides the watch's wake-up socket (`jobctl exec --notify`; default
/// `/run/jobctl/watch.sock`, or `$XDG_RUNTIME_DIR/jobctl/watch.sock` with
/// `--user`). For tests and benchmarks.
pub const WATCH_SOCKET: &str = "JOBCTL_WATCH_SOCKET";
