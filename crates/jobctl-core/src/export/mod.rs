//! Jobs for other schedulers: `jobctl export k8s` writes a job as a
//! Kubernetes CronJob.
//!
//! - [`schedule`]: the job's schedules as one cron line firing at exactly
//!   the same times, or why there is none (the back-translation).
//! - [`k8s`]: the CronJob, and warnings for what does not carry over.
//! - [`names`]: Kubernetes' name, label and time-zone rules.
//! - [`emit`]: the manifest tree, written as JSON or YAML.
//!
//! Pure like the rest of the core: the caller passes the host's zone, the
//! zone lookup and the present. docs/kubernetes.md is the user's reference.

pub mod emit;
pub mod k8s;
pub mod names;
pub mod schedule;

pub use emit::Node;
pub use k8s::{CronJob, K8sOptions, cron_job};
pub use schedule::{CronFields, CronLine, Days, Refusal, cron_line};
