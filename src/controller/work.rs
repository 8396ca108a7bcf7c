//! The runtime around [`FairQueue`]: watch streams feed it, workers drain it.
//!
//! kube-runtime's `Controller` schedules through a timer wheel that neither keeps arrival
//! order nor knows who filed a CSR, so one noisy bootstrap token could push a valid node's
//! CSR back by seconds. Here the queue is fair per requester and FIFO within one; the store
//! is still kube-runtime's reflector.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::{FutureExt as _, Stream, StreamExt as _};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::queue::{FairQueue, Flow};
use super::reconcile::{self, Context, Next};

/// What a CSR is queued under: its name (cluster-unique) and its requester.
pub fn key_of(csr: &CertificateSigningRequest) -> Option<(String, Flow)> {
    let name = csr.metadata.name.clone()?;
    let flow: Flow = Arc::from(csr.spec.username.as_deref().unwrap_or(""));
    Some((name, flow))
}

/// [`FairQueue`] shared by workers, with wake-ups.
#[derive(Default)]
pub struct WorkQueue {
    inner: Mutex<FairQueue>,
    wake: Notify,
}

impl WorkQueue {
    fn lock(&self) -> MutexGuard<'_, FairQueue> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, key: &str, flow: &Flow) {
        if self.lock().add(key, flow) {
            self.wake.notify_one();
        }
    }

    pub fn add_csr(&self, csr: &CertificateSigningRequest) {
        if let Some((key, flow)) = key_of(csr) {
            self.add(&key, &flow);
        }
    }

    pub fn add_after(&self, key: &str, flow: &Flow, delay: Duration) {
        self.lock().add_at(key, flow, Instant::now() + delay);
        // A sleeping worker recomputes its deadline.
        self.wake.notify_one();
    }

    fn done(&self, key: &str) {
        if self.lock().done(key) {
            self.wake.notify_one();
        }
    }

    /// (waiting now, parked for later)
    pub fn depth(&self) -> (usize, usize) {
        let q = self.lock();
        (q.len(), q.parked())
    }

    /// The next key to work on; `None` once `stop` is cancelled.
    async fn next(&self, stop: &CancellationToken) -> Option<(String, Flow)> {
        loop {
            // Registered before looking, so an add between the look and the wait still wakes us.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if stop.is_cancelled() {
                return None;
            }
            let due = {
                let mut q = self.lock();
                q.promote(Instant::now());
                if let Some(item) = q.pop() {
                    // Chain the wake-up: one notify may stand for several new keys.
                    if !q.is_empty() {
                        self.wake.notify_one();
                    }
                    return Some(item);
                }
                q.next_due()
            };
            let sleep = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                _ = woken => {}
                _ = sleep => {}
                _ = stop.cancelled() => return None,
            }
        }
    }
}

fn lookup(
    stores: &[Store<CertificateSigningRequest>],
    name: &str,
) -> Option<Arc<CertificateSigningRequest>> {
    let key = ObjectRef::new(name);
    stores.iter().find_map(|s| s.get(&key))
}

/// One worker: takes keys until `stop`, reconciles the store's current copy. A key whose
/// object is gone is dropped (deleted, or decided and so evicted from the store).
pub async fn worker(
    queue: Arc<WorkQueue>,
    stores: Arc<[Store<CertificateSigningRequest>]>,
    ctx: Arc<Context>,
    stop: CancellationToken,
) {
    while let Some((key, flow)) = queue.next(&stop).await {
        let next = match lookup(&stores, &key) {
            None => Next::Done,
            Some(csr) => {
                let run = reconcile::reconcile(csr.clone(), ctx.clone());
                match AssertUnwindSafe(run).catch_unwind().await {
                    Ok(Ok(next)) => next,
                    Ok(Err(err)) => reconcile::error_policy(&csr, &err, &ctx),
                    // Fail closed and keep the worker: nothing was written, retry later.
                    Err(_) => {
                        tracing::error!(csr = %key, "reconcile panicked; retrying later");
                        reconcile::panic_policy(&csr, &ctx)
                    }
                }
            }
        };
        queue.done(&key);
        if let Next::RetryAfter(delay) = next {
            queue.add_after(&key, &flow, delay);
        }
    }
}

/// Drives one watch stream (already reflected into its store) and queues what needs work.
///
/// Objects of a (re)list are buffered by the reflector until `InitDone`; they are queued
/// only then, so a worker never looks for one the store does not show yet.
pub async fn feed<S>(stream: S, queue: Arc<WorkQueue>, synced: Arc<std::sync::atomic::AtomicBool>)
where
    S: Stream<Item = Result<watcher::Event<CertificateSigningRequest>, watcher::Error>>,
{
    let mut listed: Vec<(String, Flow)> = Vec::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(csr)) => queue.add_csr(&csr),
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(csr)) => listed.extend(key_of(&csr)),
            Ok(watcher::Event::InitDone) => {
                for (key, flow) in listed.drain(..) {
                    queue.add(&key, &flow);
                }
                listed.shrink_to_fit();
                synced.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(watcher::Event::Delete(_)) => {}
            // The watcher retries with backoff by itself; the error is only worth a line.
            Err(err) => {
                let error = crate::cluster::watch_error_text(&err);
                tracing::warn!(%error, "CSR watch failed; retrying")
            }
        }
    }
}
