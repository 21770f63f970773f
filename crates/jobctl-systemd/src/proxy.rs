//! The slice of systemd's `org.freedesktop.systemd1.Manager` interface that
//! jobctl calls (see `man org.freedesktop.systemd1`). The macro generates
//! both the async `ManagerProxy` and the blocking `ManagerProxyBlocking`.

use serde::{Deserialize, Serialize};
use zbus::zvariant::{OwnedObjectPath, Type};

/// One entry of `ListUnits*`: `(ssssssouso)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct UnitStatus {
    pub name: String,
    pub description: String,
    /// "loaded", "not-found", "masked", "error", …
    pub load_state: String,
    /// "active", "inactive", "activating", "failed", …
    pub active_state: String,
    pub sub_state: String,
    pub following: String,
    pub path: OwnedObjectPath,
    pub job_id: u32,
    pub job_type: String,
    pub job_path: OwnedObjectPath,
}

/// A change reported by Enable/DisableUnitFiles: (type, file, destination).
pub type Change = (String, String, String);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_blocking = true,
    gen_async = true
)]
pub trait Manager {
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    fn reload(&self) -> zbus::Result<()>;

    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<Change>)>;

    fn disable_unit_files(&self, files: &[&str], runtime: bool) -> zbus::Result<Vec<Change>>;

    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;

    fn list_units_by_names(&self, names: &[&str]) -> zbus::Result<Vec<UnitStatus>>;

    fn list_unit_files_by_patterns(
        &self,
        states: &[&str],
        patterns: &[&str],
    ) -> zbus::Result<Vec<(String, String)>>;

    fn subscribe(&self) -> zbus::Result<()>;

    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: zbus::zvariant::ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}
