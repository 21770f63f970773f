//! Shared readings of bounded age (docs/dashboard.md, "Under load";
//! docs/design.md, "How old an answer may be").
//!
//! A reading (a `list`, a `history` page, a rendered jobs page) is kept for
//! the requests with the same key that come after it, for at most
//! `[web] max_age` (1 s by default) after the reading **started**: an answer
//! never shows a state older than that. Within the bound the server saves
//! work three ways:
//!
//! - identical requests that wait at the same time share one reading (one
//!   that started after all of them arrived);
//! - a request finds a reading that started less than `max_age` ago and is
//!   answered at once;
//! - a request that finds a reading past half its age starts the next one
//!   in the background (once per key), so that under steady demand requests
//!   do not wait for readings at all, and without demand nothing is read.
//!
//! Three things make a request wait for a reading that started after it
//! arrived (the exact answer, as if read for it alone): a request that asks
//! for it (`Cache-Control: no-cache` or `max-age=0`: what a browser's reload
//! sends), `max_age = "0s"`, and anything outside a request's scope
//! ([`within`]), such as the live tail's polls (exact unless told
//! otherwise). And no reading that started before the server's last action
//! ended ("run now", enable, disable: [`Actions::acted`]) is used again: whoever acts
//! through the server sees the effect in the next answer.
//!
//! The bound is a plain clock bound, with nothing to miss: systemd's change
//! signals can be held back while its buses are busy (docs/design.md), and
//! a reading started after a change always shows it.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Orders request arrivals, the starts of readings and the ends of actions,
/// across every [`Readings`].
static TICK: AtomicU64 = AtomicU64::new(1);

fn tick() -> u64 {
    TICK.fetch_add(1, Ordering::SeqCst)
}

/// Readings are dropped beyond this many keys (oldest first): the bound on
/// memory when `max_age` is long and clients ask for many different pages.
const MOST_KEYS: usize = 512;

/// Where an answer's state comes from: the start of its (oldest) reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provenance {
    tick: u64,
    at: Instant,
    /// The wall clock at the start, for the `Jobctl-Read-At` header.
    pub wall: SystemTime,
}

impl Provenance {
    fn now() -> Self {
        Provenance {
            tick: tick(),
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// How long ago the reading started.
    pub fn age(&self) -> Duration {
        self.at.elapsed()
    }

    fn older(self, other: Provenance) -> Provenance {
        if other.tick < self.tick { other } else { self }
    }
}

/// What the current request accepts and the oldest reading it was given.
struct Scope {
    max_age: Duration,
    used: Mutex<Option<Provenance>>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// Runs a request's handler (`fut`) accepting readings up to `max_age` old;
/// answers what it returned and the start of the oldest reading it used
/// (`None`: it used none).
pub async fn within<T>(max_age: Duration, fut: impl Future<Output = T>) -> (T, Option<Provenance>) {
    let scope = Scope {
        max_age,
        used: Mutex::new(None),
    };
    SCOPE
        .scope(scope, async move {
            let out = fut.await;
            let used = SCOPE.with(|s| *s.used.lock().unwrap_or_else(PoisonError::into_inner));
            (out, used)
        })
        .await
}

/// Runs `fut` wanting readings that started after each of its requests
/// arrived (a loop that waits for a change to show: "run now" waiting for
/// the shim's record).
pub async fn exact<T>(fut: impl Future<Output = T>) -> T {
    within(Duration::ZERO, fut).await.0
}

/// When the server's last action ended, shared by its [`Readings`].
#[derive(Debug, Default)]
pub struct Actions(AtomicU64);

impl Actions {
    /// Says that the server has just finished an action: no reading that
    /// started before now is used again.
    pub fn acted(&self) {
        self.0.store(tick(), Ordering::SeqCst);
    }

    fn last(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The age the current request accepts (exact outside a request).
fn accepted_age() -> Duration {
    SCOPE.try_with(|s| s.max_age).unwrap_or(Duration::ZERO)
}

/// Tells the current request that its answer uses a reading from `p`.
fn note(p: Provenance) {
    let _ = SCOPE.try_with(|s| {
        let mut used = s.used.lock().unwrap_or_else(PoisonError::into_inner);
        *used = Some(used.map_or(p, |u| u.older(p)));
    });
}

/// Whether a reading from `p` may answer a request that arrived at tick
/// `arrived` and accepts `max_age`, the server's last action having ended
/// at tick `acted`.
fn acceptable(p: &Provenance, arrived: u64, max_age: Duration, acted: u64, now: Instant) -> bool {
    p.tick > arrived
        || (!max_age.is_zero() && p.tick > acted && now.saturating_duration_since(p.at) <= max_age)
}

/// One key: its last reading, a lock held while a reading runs, and whether
/// a background reading is under way.
struct Slot<V> {
    last: Mutex<Option<(Provenance, V)>>,
    reading: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

impl<V: Clone> Slot<V> {
    fn new() -> Self {
        Slot {
            last: Mutex::new(None),
            reading: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
        }
    }

    fn last(&self) -> Option<(Provenance, V)> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn keep(&self, p: Provenance, v: V) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        // A background reading may end after a newer one.
        if last.as_ref().is_none_or(|(q, _)| q.tick < p.tick) {
            *last = Some((p, v));
        }
    }
}

pub struct Readings<K, V> {
    /// `[web] max_age`: the most any request accepts.
    max_age: Duration,
    actions: Arc<Actions>,
    slots: Mutex<HashMap<K, Arc<Slot<V>>>>,
}

impl<K, V> Readings<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(max_age: Duration, actions: Arc<Actions>) -> Self {
        Readings {
            max_age,
            actions,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The document for `key`: from a reading (`read`) the current request
    /// accepts (see the module's documentation), shared with the other
    /// requests for the same key.
    ///
    /// `read` may itself use readings (a page rendered from a `list`): the
    /// document's provenance is then the oldest of those.
    pub async fn get<F, Fut>(self: &Arc<Self>, key: K, read: F) -> V
    where
        F: FnOnce() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = V> + Send + 'static,
    {
        let arrived = tick();
        let max_age = accepted_age().min(self.max_age);
        let slot = self.slot(&key);
        if let Some((p, v)) = slot.last()
            && acceptable(&p, arrived, max_age, self.actions.last(), Instant::now())
        {
            self.refresh_if_aging(&slot, p, read);
            note(p);
            return v;
        }
        let reading = slot.reading.lock().await;
        // The reading this request waited for may be one it accepts.
        if let Some((p, v)) = slot.last()
            && acceptable(&p, arrived, max_age, self.actions.last(), Instant::now())
        {
            note(p);
            return v;
        }
        let (p, v) = read_from(max_age, read).await;
        slot.keep(p, v.clone());
        drop(reading);
        self.sweep();
        note(p);
        v
    }

    fn slot(&self, key: &K) -> Arc<Slot<V>> {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Slot::new()))
            .clone()
    }

    /// Starts the key's next reading in the background when the one just
    /// used is past half of `max_age`, unless one is under way.
    fn refresh_if_aging<F, Fut>(self: &Arc<Self>, slot: &Arc<Slot<V>>, p: Provenance, read: F)
    where
        F: FnOnce() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = V> + Send + 'static,
    {
        let half = self.max_age / 2;
        if p.age() < half || slot.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let (this, slot) = (self.clone(), slot.clone());
        tokio::spawn(async move {
            // Clears the flag also if the reading panics.
            let _done = Done(&slot.refreshing);
            let reading = slot.reading.lock().await;
            let fresh = slot.last().is_some_and(|(q, _)| q.tick > p.tick);
            if !fresh {
                // Inner readings are taken anew too: a page refreshed from
                // the same old `list` would be no younger.
                let (q, v) = read_from(Duration::ZERO, read).await;
                slot.keep(q, v);
            }
            drop(reading);
            this.sweep();
        });
    }

    /// Forgets readings older than `max_age` that nobody is reading, and the
    /// oldest beyond [`MOST_KEYS`].
    fn sweep(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // Clones of a slot are only made under this lock: a count of one is
        // the map's own, so no request holds it.
        let idle = |s: &Arc<Slot<V>>| Arc::strong_count(s) == 1;
        slots.retain(|_, s| !idle(s) || s.last().is_some_and(|(p, _)| p.age() <= self.max_age));
        if slots.len() > MOST_KEYS {
            let mut by_age: Vec<(u64, K)> = slots
                .iter()
                .filter(|(_, s)| idle(s))
                .map(|(k, s)| (s.last().map_or(0, |(p, _)| p.tick), k.clone()))
                .collect();
            by_age.sort_by_key(|(t, _)| *t);
            let excess = slots.len() - MOST_KEYS;
            for (_, k) in by_age.into_iter().take(excess) {
                slots.remove(&k);
            }
        }
    }

    /// How many requests hold `key` (wait for it or read it).
    #[cfg(test)]
    fn callers(&self, key: &K) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map_or(0, |s| Arc::strong_count(s) - 1)
    }

    /// How many keys are held.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Runs a reading accepting `max_age` for the readings inside it; its
/// provenance is the oldest of those, or its own start.
async fn read_from<V, Fut: Future<Output = V>>(
    max_age: Duration,
    read: impl FnOnce() -> Fut,
) -> (Provenance, V) {
    let start = Provenance::now();
    let (v, inner) = within(max_age, read()).await;
    (inner.map_or(start, |i| i.older(start)), v)
}

struct Done<'a>(&'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The age a request accepts: the server's `max_age`, or less if its
/// `Cache-Control` asks (`no-cache`, `max-age=N`); `no-store` and the rest
/// change nothing.
pub fn requested_age(cache_control: Option<&str>, server: Duration) -> Duration {
    let mut age = server;
    for directive in cache_control.unwrap_or("").split(',') {
        let d = directive.trim().to_ascii_lowercase();
        if d == "no-cache" {
            age = Duration::ZERO;
        } else if let Some(secs) = d.strip_prefix("max-age=")
            && let Ok(secs) = secs.trim_matches('"').parse::<u64>()
        {
            age = age.min(Duration::from_secs(secs));
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::Semaphore;

    const SEC: Duration = Duration::from_secs(1);

    /// A reading that waits for `gate` and answers its own number.
    fn reading(
        count: &Arc<AtomicUsize>,
        gate: &Arc<Semaphore>,
    ) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = usize> + Send>> + Clone + Send + 'static
    {
        let (count, gate) = (count.clone(), gate.clone());
        move || {
            Box::pin(async move {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                gate.acquire().await.unwrap().forget();
                n
            })
        }
    }

    async fn until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if cond() {
                return;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("timed out: {what}");
    }

    /// A plain request (accepting 1 s) for "list", read by [`reading`].
    async fn plain(
        r: &Arc<Readings<&'static str, usize>>,
        count: &Arc<AtomicUsize>,
        gate: &Arc<Semaphore>,
    ) -> usize {
        let (r, read) = (r.clone(), reading(count, gate));
        within(SEC, async move { r.get("list", read).await })
            .await
            .0
    }

    fn setup(
        max_age: Duration,
    ) -> (
        Arc<Readings<&'static str, usize>>,
        Arc<AtomicUsize>,
        Arc<Semaphore>,
    ) {
        (
            Arc::new(Readings::new(max_age, Arc::default())),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(Semaphore::new(0)),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exact_callers_during_a_reading_share_the_next_one_not_the_running_one() {
        let (r, count, gate) = setup(SEC);
        let call = || {
            let (r, read) = (r.clone(), reading(&count, &gate));
            tokio::spawn(exact(async move { r.get("list", read).await }))
        };
        let first = call();
        until("the first reading started", || {
            count.load(Ordering::SeqCst) == 1
        })
        .await;
        // Arrived while reading 1 runs: it cannot show their state.
        let later: Vec<_> = (0..5).map(|_| call()).collect();
        until("five callers wait", || r.callers(&"list") == 6).await;
        gate.add_permits(1);
        assert_eq!(first.await.unwrap(), 1);
        until("the second reading started", || {
            count.load(Ordering::SeqCst) == 2
        })
        .await;
        gate.add_permits(1);
        for h in later {
            assert_eq!(
                h.await.unwrap(),
                2,
                "a caller got a reading older than itself"
            );
        }
        assert_eq!(count.load(Ordering::SeqCst), 2, "one reading for the five");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reading_answers_later_requests_until_it_is_max_age_old() {
        let (r, count, gate) = setup(SEC);
        gate.add_permits(100);
        let get = |age: Duration| {
            let (r, read) = (r.clone(), reading(&count, &gate));
            async move { within(age, async move { r.get("list", read).await }).await }
        };
        let (v, p) = get(SEC).await;
        assert_eq!(v, 1);
        let p = p.expect("the answer says where it comes from");
        tokio::time::advance(Duration::from_millis(400)).await;
        let (v, q) = get(SEC).await;
        assert_eq!((v, q), (1, Some(p)), "younger than half: kept, no refresh");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // A request that wants it exact gets a reading of its own.
        assert_eq!(get(Duration::ZERO).await.0, 2);
        tokio::time::advance(Duration::from_millis(1001)).await;
        // Past max_age: never used again.
        assert_eq!(get(SEC).await.0, 3);
        // max-age=0 on the server side: every request reads.
        let (r0, c0, g0) = setup(Duration::ZERO);
        g0.add_permits(10);
        for want in 1..=3 {
            let (r0, read) = (r0.clone(), reading(&c0, &g0));
            let got = within(SEC, async move { r0.get("list", read).await })
                .await
                .0;
            assert_eq!(got, want);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn past_half_its_age_a_reading_is_renewed_in_the_background() {
        let (r, count, gate) = setup(SEC);
        gate.add_permits(1);
        let get = || plain(&r, &count, &gate);
        assert_eq!(get().await, 1);
        tokio::time::advance(Duration::from_millis(600)).await;
        // Answered at once from the old one; the next one starts meanwhile.
        assert_eq!(get().await, 1);
        until("a background reading started", || {
            count.load(Ordering::SeqCst) == 2
        })
        .await;
        assert_eq!(get().await, 1, "one background reading at a time");
        assert_eq!(count.load(Ordering::SeqCst), 2);
        gate.add_permits(1);
        until("the background reading is kept", || {
            r.slot(&"list").last().is_some_and(|(_, v)| v == 2)
        })
        .await;
        assert_eq!(get().await, 2);
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_read_before_an_action_is_used_after_it() {
        let actions = Arc::new(Actions::default());
        let r = Arc::new(Readings::new(SEC, actions.clone()));
        let (count, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
        gate.add_permits(10);
        let get = || plain(&r, &count, &gate);
        assert_eq!(get().await, 1);
        assert_eq!(get().await, 1);
        actions.acted();
        assert_eq!(get().await, 2);
        assert_eq!(get().await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_derived_reading_is_as_old_as_what_it_was_made_from() {
        let list: Arc<Readings<&'static str, usize>> = Arc::new(Readings::new(SEC, Arc::default()));
        let pages: Arc<Readings<&'static str, String>> =
            Arc::new(Readings::new(SEC, Arc::default()));
        let (count, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(10)));
        let (_, from_list) = within(SEC, {
            let (list, read) = (list.clone(), reading(&count, &gate));
            async move { list.get("list", read).await }
        })
        .await;
        tokio::time::advance(Duration::from_millis(700)).await;
        let render = {
            let (list, count, gate) = (list.clone(), count.clone(), gate.clone());
            move || async move {
                let n = list.get("list", reading(&count, &gate)).await;
                format!("page of list {n}")
            }
        };
        let (page, p) = within(SEC, {
            let (pages, render) = (pages.clone(), render.clone());
            async move { pages.get("/", render).await }
        })
        .await;
        assert_eq!(page, "page of list 1");
        assert_eq!(p, from_list, "the page says its list's age, not its own");
        tokio::time::advance(Duration::from_millis(301)).await;
        let (page, _) = within(SEC, {
            let (pages, render) = (pages.clone(), render.clone());
            async move { pages.get("/", render).await }
        })
        .await;
        assert_eq!(page, "page of list 2", "the page expired with its list");
    }

    #[tokio::test(start_paused = true)]
    async fn old_keys_are_forgotten() {
        let (r, count, gate) = setup(SEC);
        gate.add_permits(10);
        let keys = ["a", "b", "c"];
        for k in keys {
            let (r, read) = (r.clone(), reading(&count, &gate));
            within(SEC, async move { r.get(k, read).await }).await;
        }
        assert_eq!(r.held(), 3);
        tokio::time::advance(Duration::from_millis(1001)).await;
        let read = reading(&count, &gate);
        within(SEC, {
            let r = r.clone();
            async move { r.get("d", read).await }
        })
        .await;
        assert_eq!(r.held(), 1, "only the new key is left");
    }

    #[test]
    fn cache_control_can_only_ask_for_younger() {
        let server = SEC;
        let table = [
            (None, SEC),
            (Some("no-cache"), Duration::ZERO),
            (Some("max-age=0"), Duration::ZERO),
            (Some("No-Cache, no-store"), Duration::ZERO),
            (Some("max-age=3600"), SEC),
            (Some("no-store"), SEC),
            (Some("max-age=nonsense"), SEC),
            (Some("private, max-age=\"0\""), Duration::ZERO),
        ];
        for (header, want) in table {
            assert_eq!(requested_age(header, server), want, "{header:?}");
        }
        assert_eq!(
            requested_age(Some("max-age=2"), Duration::from_secs(10)),
            Duration::from_secs(2)
        );
    }
}
