//! Placeholder; filled in with the cron reference.
