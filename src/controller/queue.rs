//! The daemon's work queue: FIFO per requester, round-robin across requesters.
//!
//! One bootstrap token filing 10,000 junk CSRs must not delay another node's valid CSR: each
//! requester (`spec.username`) gets its own FIFO, and workers take one key from each requester
//! with work in turn. Within a requester, arrival order is kept, so during a burst through one
//! token the first CSR filed is the first decided (a tail latency a scheduler that reorders
//! would not give).
//!
//! Semantics follow client-go's workqueue, which the upstream approver relies on: a key is
//! queued at most once; a key being processed is never handed to a second worker, and an
//! `add` while it is processed marks it to run again when `done`; `add_after` parks a key
//! until its time. Pure and synchronous: the caller owns time, locking and waking workers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// A requester's identity, as the queue's fairness unit.
pub type Flow = Arc<str>;

#[derive(Debug, Default)]
pub struct FairQueue {
    /// Requesters with queued keys, in turn order; each appears once.
    turns: VecDeque<Flow>,
    flows: HashMap<Flow, VecDeque<String>>,
    /// Key → its requester, for every key in `flows`.
    queued: HashMap<String, Flow>,
    processing: HashSet<String>,
    /// Added while processing: queued again at `done`.
    dirty: HashMap<String, Flow>,
    /// Parked keys with the earliest time each is due; the heap may hold stale entries
    /// (a key re-parked earlier), recognised by not matching `parked`.
    parked: HashMap<String, (Instant, Flow)>,
    timers: BinaryHeap<Reverse<(Instant, String)>>,
}

impl FairQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `key` for `flow` now. True when the key became queued (a worker should wake).
    pub fn add(&mut self, key: &str, flow: &Flow) -> bool {
        if self.processing.contains(key) {
            self.dirty
                .entry(key.to_owned())
                .or_insert_with(|| flow.clone());
            return false;
        }
        if self.queued.contains_key(key) {
            return false;
        }
        self.queued.insert(key.to_owned(), flow.clone());
        let fifo = self.flows.entry(flow.clone()).or_default();
        if fifo.is_empty() {
            self.turns.push_back(flow.clone());
        }
        fifo.push_back(key.to_owned());
        true
    }

    /// Parks `key` until `at` (a retry or backoff). An earlier park wins; a key added
    /// meanwhile runs now and again at `at`, which reconciling tolerates.
    pub fn add_at(&mut self, key: &str, flow: &Flow, at: Instant) {
        match self.parked.get_mut(key) {
            Some((due, _)) if *due <= at => return,
            Some(entry) => *entry = (at, flow.clone()),
            None => {
                self.parked.insert(key.to_owned(), (at, flow.clone()));
            }
        }
        self.timers.push(Reverse((at, key.to_owned())));
    }

    /// Queues every parked key that is due at `now`; returns how many became queued.
    pub fn promote(&mut self, now: Instant) -> usize {
        let mut woke = 0;
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, key))) = self.timers.pop() else {
                break;
            };
            let current = matches!(self.parked.get(&key), Some((due, _)) if *due == at);
            if !current {
                continue;
            }
            if let Some((_, flow)) = self.parked.remove(&key)
                && self.add(&key, &flow)
            {
                woke += 1;
            }
        }
        woke
    }

    /// When the next parked key is due, if any.
    pub fn next_due(&mut self) -> Option<Instant> {
        // Drop stale timer entries so a long-gone park never causes an early wake-up loop.
        while let Some(Reverse((at, key))) = self.timers.peek() {
            if matches!(self.parked.get(key), Some((due, _)) if due == at) {
                return Some(*at);
            }
            self.timers.pop();
        }
        None
    }

    /// The next key to work on: the front of the next requester's FIFO. The key is then
    /// processing until [`FairQueue::done`].
    pub fn pop(&mut self) -> Option<(String, Flow)> {
        let flow = self.turns.pop_front()?;
        let fifo = self.flows.get_mut(&flow)?;
        let key = fifo.pop_front()?;
        if fifo.is_empty() {
            self.flows.remove(&flow);
        } else {
            self.turns.push_back(flow.clone());
        }
        self.queued.remove(&key);
        self.processing.insert(key.clone());
        Some((key, flow))
    }

    /// Ends processing of `key`. True when it was re-added meanwhile and is queued again.
    pub fn done(&mut self, key: &str) -> bool {
        self.processing.remove(key);
        match self.dirty.remove(key) {
            Some(flow) => self.add(key, &flow),
            None => false,
        }
    }

    /// Keys waiting to be worked on now (not parked, not processing).
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Keys parked for later.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn flow(s: &str) -> Flow {
        Arc::from(s)
    }

    fn drain(q: &mut FairQueue) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((k, _)) = q.pop() {
            q.done(&k);
            out.push(k);
        }
        out
    }

    #[test]
    fn one_requester_is_served_in_arrival_order() {
        let mut q = FairQueue::new();
        let a = flow("system:bootstrap:abcdef");
        for i in 0..100 {
            assert!(q.add(&format!("csr-{i}"), &a));
        }
        let order = drain(&mut q);
        let want: Vec<String> = (0..100).map(|i| format!("csr-{i}")).collect();
        assert_eq!(order, want);
    }

    #[test]
    fn a_flooding_requester_cannot_starve_another() {
        let mut q = FairQueue::new();
        let junk = flow("system:bootstrap:flood1");
        let good = flow("system:bootstrap:good01");
        for i in 0..10_000 {
            q.add(&format!("junk-{i}"), &junk);
        }
        q.add("valid", &good);
        // The valid key is at most the second one handed out, whatever came before it.
        let first_two: Vec<String> = (0..2).map(|_| q.pop().unwrap().0).collect();
        assert!(first_two.contains(&"valid".to_owned()), "{first_two:?}");
    }

    #[test]
    fn requesters_take_turns() {
        let mut q = FairQueue::new();
        let (a, b, c) = (flow("a"), flow("b"), flow("c"));
        for i in 0..3 {
            q.add(&format!("a{i}"), &a);
        }
        q.add("b0", &b);
        for i in 0..2 {
            q.add(&format!("c{i}"), &c);
        }
        assert_eq!(drain(&mut q), ["a0", "b0", "c0", "a1", "c1", "a2"]);
    }

    #[test]
    fn a_key_is_queued_once() {
        let mut q = FairQueue::new();
        let a = flow("a");
        assert!(q.add("x", &a));
        assert!(!q.add("x", &a));
        assert_eq!(q.len(), 1);
        assert_eq!(drain(&mut q), ["x"]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_key_being_processed_is_not_handed_out_twice_but_runs_again() {
        let mut q = FairQueue::new();
        let a = flow("a");
        q.add("x", &a);
        let (k, _) = q.pop().unwrap();
        // A watch event for the same CSR while a worker holds it.
        assert!(!q.add("x", &a));
        assert!(
            q.pop().is_none(),
            "the same key must not go to a second worker"
        );
        assert!(q.done(&k), "re-added while processing: queued again");
        assert_eq!(q.pop().unwrap().0, "x");
        assert!(!q.done("x"));
        assert!(q.pop().is_none());
    }

    #[test]
    fn parked_keys_wait_for_their_time() {
        let mut q = FairQueue::new();
        let a = flow("a");
        let t0 = Instant::now();
        q.add_at("x", &a, t0 + Duration::from_secs(5));
        assert_eq!(q.promote(t0), 0);
        assert!(q.pop().is_none());
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(q.parked(), 1);
        assert_eq!(q.promote(t0 + Duration::from_secs(5)), 1);
        assert_eq!(q.pop().unwrap().0, "x");
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn the_earliest_park_wins() {
        let mut q = FairQueue::new();
        let a = flow("a");
        let t0 = Instant::now();
        q.add_at("x", &a, t0 + Duration::from_secs(10));
        q.add_at("x", &a, t0 + Duration::from_secs(2));
        q.add_at("x", &a, t0 + Duration::from_secs(7));
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(q.promote(t0 + Duration::from_secs(2)), 1);
        let (k, _) = q.pop().unwrap();
        q.done(&k);
        // The stale 10 s timer neither re-queues the key nor counts as due.
        assert_eq!(q.next_due(), None);
        assert_eq!(q.promote(t0 + Duration::from_secs(60)), 0);
        assert!(q.pop().is_none());
    }

    #[test]
    fn a_due_key_still_processing_runs_after_done() {
        let mut q = FairQueue::new();
        let a = flow("a");
        let t0 = Instant::now();
        q.add("x", &a);
        let (k, _) = q.pop().unwrap();
        q.add_at("x", &a, t0);
        assert_eq!(
            q.promote(t0),
            0,
            "processing: marked to run again, not queued"
        );
        assert!(q.pop().is_none());
        assert!(q.done(&k));
        assert_eq!(q.pop().unwrap().0, "x");
    }
}
