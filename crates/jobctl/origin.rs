//! Who started a run, when the shim cannot know: a "run now" from the web
//! (jobctl-web), recorded as an origin (trigger `web`, the actor) keyed by
//! the invocation its own start produced (`jobctl_history::Origin`,
//! docs/design.md "Who started a run").
//!
//! jobctl-web runs `jobctl run` in-process ([`crate::commands::run_captured`])
//! inside [`acting`]; `run` then records the origin of the run it started,
//! and only of that one (a merged or refused start records nothing). A
//! `jobctl run` typed in a shell records nothing: its run stays `manual`.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jobctl_history::{OpenMode, Origin, Store, Trigger};

use crate::history_db;
use crate::paths::{Mode, Paths};

/// Who is starting runs on this thread, for the origin `run` records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acting {
    /// `token ci`, `uid 1000 (alice)` (jobctl-web's `actor_of`); cut to
    /// [`jobctl_history::ACTOR_MAX_BYTES`] when recorded, escaped whenever
    /// printed on a terminal.
    pub actor: String,
}

thread_local! {
    static ACTING: RefCell<Option<Acting>> = const { RefCell::new(None) };
}

/// Runs `f` with `acting` as this thread's starter (`None`: nobody, as in
/// the CLI): a `jobctl run` inside records the origin of the run it starts.
pub fn acting<R>(acting: Option<Acting>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Acting>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            ACTING.with(|a| *a.borrow_mut() = previous);
        }
    }
    let previous = ACTING.with(|a| a.replace(acting));
    let _restore = Restore(previous);
    f()
}

/// This thread's starter, inside [`acting`].
pub(crate) fn current() -> Option<Acting> {
    ACTING.with(|a| a.borrow().clone())
}

/// The database whose origins this mode believes and where they are
/// recorded: the main database of the mode's owner (system mode: root's,
/// `[history] db` or `/var/lib/jobctl/history.db`, also for runs recorded
/// in users' databases; per-user mode: the user's own).
pub fn database(paths: &Paths) -> PathBuf {
    history_db::main_database(paths)
}

/// Records that `acting` started the run of `job` with invocation
/// `invocation`, in [`database`]. In system mode only root may (root's
/// database is root's alone), and never into a folder others can write.
pub(crate) fn record(paths: &Paths, job: &str, invocation: &str, acting: &Acting) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let path = database(paths);
    let as_root = nix::unistd::geteuid().is_root();
    if paths.mode == Mode::System && !as_root {
        bail!("only root records who started a run in system mode");
    }
    let default = history_db::state_dir(paths).join("history.db");
    if path == default
        && let Some(dir) = path.parent()
    {
        history_db::create_state_dir(paths, dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // As the shim: root writes only into a folder that is root's alone.
    if as_root
        && path
            .parent()
            .and_then(|dir| std::fs::metadata(dir).ok())
            .is_some_and(|m| m.uid() != 0 || m.mode() & 0o022 != 0)
    {
        bail!(
            "{} is in a folder that is not root's alone; not writing there",
            path.display()
        );
    }
    let origin = Origin::new(
        invocation,
        job,
        Trigger::Web,
        &acting.actor,
        crate::host::now_us(),
    )?;
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5))?;
    store
        .record_origin(&origin)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_is_this_threads_inside_acting_only() {
        assert_eq!(current(), None);
        let who = Acting {
            actor: "token ci".into(),
        };
        let seen = acting(Some(who.clone()), || {
            let inner = acting(None, current);
            (current(), inner)
        });
        assert_eq!(seen, (Some(who.clone()), None));
        assert_eq!(current(), None);
        // Another thread never sees it.
        acting(Some(who), || {
            assert_eq!(std::thread::spawn(current).join().unwrap(), None);
        });
        // Restored after a panic too.
        let _ = std::panic::catch_unwind(|| {
            acting(Some(Acting { actor: "x".into() }), || panic!("boom"))
        });
        assert_eq!(current(), None);
    }
}
