//! Coalescing of identical concurrent reads (docs/dashboard.md, "Under
//! load"): when many callers ask for the same document at once (fifty
//! browsers on the jobs page), one reading answers all those that arrived
//! before it started, instead of one reading each.
//!
//! Never stale: a caller is only given a document whose reading *started
//! after the caller arrived*, so it shows the state as of its request or
//! later, exactly as if it had been read for it alone. A caller that arrives
//! while a reading runs waits for it to end and then takes part in the next
//! one (which every caller that arrived meanwhile shares). Nothing is kept
//! once no caller waits for a key: this is not a cache.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// One key's reading: the last document and the tick at which its reading
/// started; the lock is held while a reading runs.
type Slot<V> = Arc<tokio::sync::Mutex<Option<(u64, V)>>>;

pub struct Coalescer<K, V> {
    /// Orders arrivals and the starts of readings.
    tick: AtomicU64,
    /// The keys some caller is waiting for (and only those).
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Coalescer<K, V> {
    pub fn new() -> Self {
        Coalescer {
            tick: AtomicU64::new(0),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The document for `key`: from a reading (`read`) that started after
    /// this call began, shared with the other callers of the same key that
    /// arrived before that reading started.
    pub async fn get<F, Fut>(&self, key: K, read: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let arrived = self.tick.fetch_add(1, Ordering::SeqCst);
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        // Declared before the guard, so dropped after it (also when the
        // caller goes away while waiting).
        let _leave = Leave {
            owner: self,
            key: &key,
            slot: &slot,
        };
        let mut last = slot.lock().await;
        if let Some((started, doc)) = last.as_ref()
            && *started > arrived
        {
            return doc.clone();
        }
        let started = self.tick.fetch_add(1, Ordering::SeqCst);
        let doc = read().await;
        *last = Some((started, doc.clone()));
        doc
    }

    /// How many keys are held (the tests: none once every caller is done).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// How many callers hold `key` (have arrived and wait or read).
    #[cfg(test)]
    fn callers(&self, key: &K) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map_or(0, |s| Arc::strong_count(s) - 1)
    }
}

/// Forgets a key when its last caller leaves.
struct Leave<'a, K: Eq + Hash, V> {
    owner: &'a Coalescer<K, V>,
    key: &'a K,
    slot: &'a Slot<V>,
}

impl<K: Eq + Hash, V> Drop for Leave<'_, K, V> {
    fn drop(&mut self) {
        let mut slots = self
            .owner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Clones are only made under this lock: two means the map's and
        // this caller's, so nobody else waits for the key.
        if Arc::strong_count(self.slot) == 2 {
            slots.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;
    use tokio::sync::Semaphore;

    /// A reading that waits for `gate` and answers its own number.
    async fn reading(count: &AtomicUsize, gate: &Semaphore) -> usize {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        gate.acquire().await.unwrap().forget();
        n
    }

    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_during_a_reading_share_the_next_one_not_the_running_one() {
        let c = Arc::new(Coalescer::<&'static str, usize>::new());
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let call = |c: Arc<Coalescer<&'static str, usize>>| {
            let (count, gate) = (count.clone(), gate.clone());
            tokio::spawn(async move {
                c.get("list", || async { reading(&count, &gate).await })
                    .await
            })
        };
        let first = call(c.clone());
        until("the first reading started", || {
            count.load(Ordering::SeqCst) == 1
        })
        .await;
        // Arrived while reading 1 runs: it cannot show their state.
        let later: Vec<_> = (0..5).map(|_| call(c.clone())).collect();
        until("five callers wait", || c.callers(&"list") == 6).await;
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
        assert_eq!(c.held(), 0, "the key is forgotten");
    }

    #[tokio::test]
    async fn a_caller_after_a_reading_gets_a_new_one() {
        let c = Coalescer::<&str, usize>::new();
        let count = AtomicUsize::new(0);
        let gate = Semaphore::new(10);
        assert_eq!(c.get("list", || reading(&count, &gate)).await, 1);
        assert_eq!(c.get("list", || reading(&count, &gate)).await, 2);
        assert_eq!(c.held(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn different_keys_do_not_share_and_a_caller_that_leaves_is_forgotten() {
        let c = Arc::new(Coalescer::<String, usize>::new());
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let spawn = |key: &str| {
            let (c, count, gate, key) = (c.clone(), count.clone(), gate.clone(), key.to_string());
            tokio::spawn(async move { c.get(key, || async { reading(&count, &gate).await }).await })
        };
        let a = spawn("list --tag=a");
        let b = spawn("list --tag=b");
        until("both read", || count.load(Ordering::SeqCst) == 2).await;
        let gone = spawn("list --tag=a");
        until("a third caller waits", || {
            c.callers(&"list --tag=a".to_string()) == 2
        })
        .await;
        gone.abort();
        let _ = gone.await;
        gate.add_permits(2);
        let mut got = [a.await.unwrap(), b.await.unwrap()];
        got.sort();
        assert_eq!(got, [1, 2]);
        assert_eq!(c.held(), 0, "no key left behind by the caller that left");
    }
}
