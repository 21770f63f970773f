//! Runs the real `jobctl calendar --json` the same way the oracle is run:
//! one process for many expressions, `TZ` set to the local zone under test.

use serde_json::Value;

use crate::support::{RunExt as _, TestEnv};

/// What jobctl made of one expression (the same shape as the oracle's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Rejected {
        message: String,
        span: (usize, usize),
        hint: Option<String>,
    },
    Accepted {
        normalized: String,
        /// Microseconds since the epoch.
        elapses_usec: Vec<i64>,
        never: bool,
        /// An elapse could not be computed (systemd: "Failed to determine
        /// next elapse").
        compute_error: bool,
    },
}

/// `jobctl calendar --json [--cron] --iterations=N --base-time=BASE EXPR...`
pub fn calendar(tz: &str, base: &str, iterations: u32, exprs: &[String], cron: bool) -> Vec<Value> {
    let env = TestEnv::new();
    let mut cmd = env.jobctl();
    cmd.arg("calendar").arg("--json");
    if cron {
        cmd.arg("--cron");
    }
    let output = cmd
        .arg(format!("--iterations={iterations}"))
        .arg(format!("--base-time={base}"))
        .arg("--")
        .args(exprs)
        .env("TZ", tz)
        .run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let document: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "jobctl printed no JSON ({e}); status {:?}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(document["schema"], "jobctl.calendar/v1");
    let results: Vec<Value> = document["expressions"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no expressions: {document:#}"));
    assert_eq!(results.len(), exprs.len(), "one result per expression");
    // Exit status: 0 when everything was valid and computable.
    let all_ok = results.iter().all(|r| r["error"].is_null());
    assert_eq!(
        output.status.success(),
        all_ok,
        "exit status {:?}",
        output.status
    );
    results
}

pub fn outcomes(tz: &str, base: &str, iterations: u32, exprs: &[String]) -> Vec<Outcome> {
    calendar(tz, base, iterations, exprs, false)
        .into_iter()
        .map(|r| {
            if r["valid"].as_bool() == Some(true) {
                Outcome::Accepted {
                    normalized: r["normalized"].as_str().unwrap_or_default().to_string(),
                    elapses_usec: r["next_elapses"]
                        .as_array()
                        .map(|a| a.iter().map(|e| e["usec"].as_i64().unwrap_or(-1)).collect())
                        .unwrap_or_default(),
                    never: r["never"].as_bool() == Some(true),
                    compute_error: !r["error"].is_null(),
                }
            } else {
                let e = &r["error"];
                Outcome::Rejected {
                    message: e["message"].as_str().unwrap_or_default().to_string(),
                    span: (
                        e["span"][0].as_u64().unwrap_or(0) as usize,
                        e["span"][1].as_u64().unwrap_or(0) as usize,
                    ),
                    hint: e["hint"].as_str().map(str::to_string),
                }
            }
        })
        .collect()
}
