//! jobctl's pure core.
//!
//! Everything here is deterministic and free of I/O: no files, no clock, no
//! network, no processes. Callers pass file contents, the current time and a
//! time-zone lookup in as arguments. That keeps the job model, validation,
//! calendar math and unit rendering easy to test exhaustively, and lets the
//! same code run on a laptop, in CI, or on a host with no systemd at all.

pub mod calendar;
pub mod config;
pub mod context;
pub mod cron;
pub mod crontab;
pub mod diag;
pub mod directives;
pub mod duration;
pub mod escape;
pub mod export;
pub mod health;
pub mod job;
pub mod journal;
pub mod labels;
pub mod metrics;
pub mod naming;
pub mod notify;
pub mod overdue;
pub mod ownership;
pub mod plan;
pub mod schedule;
pub mod shim;
pub mod size;
pub mod start;
pub mod state;
pub mod walk;
pub mod watch;
pub mod web;

mod calendar_bridge;
mod directive_versions;
pub mod render;
