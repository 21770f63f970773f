//! Typed errors of the systemd adapter.
//!
//! D-Bus errors arrive as names (`org.freedesktop.DBus.Error.AccessDenied`,
//! `org.freedesktop.systemd1.NoSuchUnit`, …) plus a message; connection
//! failures arrive as I/O errors. Both are sorted into an [`ErrorKind`] the
//! binary turns into an operator message with a hint ("run as root or use
//! --user", "systemd is not running on this host").

use std::io;

/// What kind of failure, for the operator's hint and the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bus socket is missing or refuses connections.
    BusUnavailable,
    /// The bus is there but no systemd manager answers on it.
    NotRunning,
    /// The caller may not do this (not root, polkit said no).
    PermissionDenied,
    /// The unit is not known to systemd.
    NoSuchUnit,
    /// The unit is masked.
    UnitMasked,
    /// The unit file could not be loaded (bad syntax, missing file).
    LoadFailed,
    /// systemd refused the transaction (conflicts, destructive).
    Transaction,
    /// No answer in time.
    Timeout,
    /// The connection dropped (systemd restarted, or dropped us: see the
    /// 128-pending-replies and match-rule limits in docs/operations.md).
    Disconnected,
    /// dbus-daemon refused: a per-connection limit was hit.
    LimitsExceeded,
    /// A unit-folder file operation failed.
    Io,
    /// systemd answered something this adapter did not expect.
    Protocol,
    /// Any other D-Bus error.
    Other,
}

/// An error from the adapter: what was being done, and why it failed.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {message}")]
pub struct Error {
    /// The operation, e.g. `StartUnit jobctl-backup.timer`.
    pub op: String,
    pub kind: ErrorKind,
    /// The D-Bus error name, when there is one.
    pub dbus_name: Option<String>,
    pub message: String,
    #[source]
    pub source: Option<io::Error>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub(crate) fn new(op: impl Into<String>, kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            op: op.into(),
            kind,
            dbus_name: None,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Self {
        Error {
            op: op.into(),
            kind: ErrorKind::Io,
            dbus_name: None,
            message: source.to_string(),
            source: Some(source),
        }
    }

    /// Sorts a zbus error into a kind.
    pub(crate) fn from_zbus(op: impl Into<String>, err: zbus::Error) -> Self {
        let op = op.into();
        match err {
            zbus::Error::MethodError(name, detail, _) => {
                let name = name.as_str().to_string();
                let message = detail.unwrap_or_else(|| name.clone());
                Error {
                    op,
                    kind: kind_of_dbus_name(&name),
                    dbus_name: Some(name),
                    message,
                    source: None,
                }
            }
            zbus::Error::FDO(fdo) => {
                let name = fdo_name(&fdo);
                Error {
                    op,
                    kind: kind_of_dbus_name(&name),
                    dbus_name: Some(name),
                    message: fdo.to_string(),
                    source: None,
                }
            }
            zbus::Error::InputOutput(io) => {
                let kind = match io.kind() {
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                        ErrorKind::BusUnavailable
                    }
                    io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                    io::ErrorKind::TimedOut => ErrorKind::Timeout,
                    _ => ErrorKind::Disconnected,
                };
                let source = io::Error::new(io.kind(), io.to_string());
                Error {
                    op,
                    kind,
                    dbus_name: None,
                    message: io.to_string(),
                    source: Some(source),
                }
            }
            zbus::Error::Handshake(msg) => Error::new(op, ErrorKind::PermissionDenied, msg),
            other => {
                let text = other.to_string();
                let kind = if text.contains("timed out") || text.contains("Timeout") {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Protocol
                };
                Error::new(op, kind, text)
            }
        }
    }
}

/// The D-Bus name of a standard (`org.freedesktop.DBus.Error.*`) error.
fn fdo_name(err: &zbus::fdo::Error) -> String {
    use zbus::DBusError as _;
    err.name().as_str().to_string()
}

/// The kind of a D-Bus error name.
pub fn kind_of_dbus_name(name: &str) -> ErrorKind {
    match name {
        "org.freedesktop.DBus.Error.AccessDenied"
        | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
        | "org.freedesktop.DBus.Error.AuthFailed"
        | "org.freedesktop.PolicyKit1.Error.NotAuthorized" => ErrorKind::PermissionDenied,
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner"
        | "org.freedesktop.DBus.Error.UnknownObject" => ErrorKind::NotRunning,
        "org.freedesktop.DBus.Error.NoServer"
        | "org.freedesktop.DBus.Error.FileNotFound"
        | "org.freedesktop.DBus.Error.SpawnFailed" => ErrorKind::BusUnavailable,
        "org.freedesktop.DBus.Error.NoReply"
        | "org.freedesktop.DBus.Error.Timeout"
        | "org.freedesktop.DBus.Error.TimedOut" => ErrorKind::Timeout,
        "org.freedesktop.DBus.Error.Disconnected" | "org.freedesktop.DBus.Error.NoNetwork" => {
            ErrorKind::Disconnected
        }
        "org.freedesktop.DBus.Error.LimitsExceeded" | "org.freedesktop.DBus.Error.NoMemory" => {
            ErrorKind::LimitsExceeded
        }
        "org.freedesktop.systemd1.NoSuchUnit"
        | "org.freedesktop.systemd1.NoUnitForInvocationID" => ErrorKind::NoSuchUnit,
        "org.freedesktop.systemd1.UnitMasked" => ErrorKind::UnitMasked,
        "org.freedesktop.systemd1.LoadFailed" | "org.freedesktop.systemd1.BadUnitSetting" => {
            ErrorKind::LoadFailed
        }
        "org.freedesktop.systemd1.TransactionIsDestructive"
        | "org.freedesktop.systemd1.TransactionJobsConflicting"
        | "org.freedesktop.systemd1.TransactionOrderIsCyclic"
        | "org.freedesktop.systemd1.OnlyByDependency"
        | "org.freedesktop.systemd1.JobTypeNotApplicable"
        | "org.freedesktop.systemd1.ShuttingDown" => ErrorKind::Transaction,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbus_names_map_to_kinds() {
        let cases = [
            (
                "org.freedesktop.DBus.Error.AccessDenied",
                ErrorKind::PermissionDenied,
            ),
            (
                "org.freedesktop.PolicyKit1.Error.NotAuthorized",
                ErrorKind::PermissionDenied,
            ),
            (
                "org.freedesktop.DBus.Error.ServiceUnknown",
                ErrorKind::NotRunning,
            ),
            ("org.freedesktop.DBus.Error.NoReply", ErrorKind::Timeout),
            (
                "org.freedesktop.DBus.Error.LimitsExceeded",
                ErrorKind::LimitsExceeded,
            ),
            ("org.freedesktop.systemd1.NoSuchUnit", ErrorKind::NoSuchUnit),
            ("org.freedesktop.systemd1.UnitMasked", ErrorKind::UnitMasked),
            ("org.freedesktop.systemd1.LoadFailed", ErrorKind::LoadFailed),
            (
                "org.freedesktop.systemd1.TransactionIsDestructive",
                ErrorKind::Transaction,
            ),
            ("org.example.Whatever", ErrorKind::Other),
        ];
        for (name, kind) in cases {
            assert_eq!(kind_of_dbus_name(name), kind, "{name}");
        }
    }

    #[test]
    fn connection_failures_are_bus_unavailable() {
        let err = Error::from_zbus(
            "connect",
            zbus::Error::InputOutput(std::sync::Arc::new(io::Error::from(
                io::ErrorKind::NotFound,
            ))),
        );
        assert_eq!(err.kind(), ErrorKind::BusUnavailable);
        let err = Error::from_zbus(
            "connect",
            zbus::Error::InputOutput(std::sync::Arc::new(io::Error::from(
                io::ErrorKind::PermissionDenied,
            ))),
        );
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    }
}
