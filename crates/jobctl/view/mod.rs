//! What people read: every table and report jobctl prints for operators,
//! and the formats of the values in them (times, durations, results, signal
//! names), as pure functions of the structs the commands gather. The
//! commands decide what to show and print it ([`crate::output`]); nothing
//! here reads a file, a clock or the environment: the time zone and "now"
//! are arguments, so that every report is snapshot-tested from fixed values
//! (`view/tests`, docs/testing.md "Snapshots of what people read").
//!
//! The `--json` shapes of the same reports live here too (`JobRow`,
//! `RunView`, health's `Report`), next to the text made from them.

pub mod apply;
pub mod calendar;
pub mod format;
pub mod health;
pub mod history;
pub mod list;
pub mod metrics;
pub mod status;
pub mod table;

#[cfg(test)]
mod tests;
