//! `tlsboot controller`: the approver daemon.
//!
//! Watches CSRs of the two kubelet signers (one field-selected watch each), reconciles
//! each through the policy core, asks SubjectAccessReviews in upstream order, and writes
//! approvals only while holding a valid leader lease (checked immediately before every
//! write). Standbys keep warm caches (so `/readyz` is true) but make no API calls. A
//! leader that sees the Lease taken steps down to standby in place: its queued and
//! in-flight reconciles are fenced (no write, no Event) and becoming leader again re-runs
//! every CSR.

pub mod authz;
pub mod config;
pub mod http;
pub mod lease;
pub mod metrics;
pub mod queue;
pub mod ratelimit;
pub mod reconcile;
pub mod work;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::Resource;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ControllerArgs};

use crate::cluster::csr_status::is_decided;
use crate::cluster::{Connection, ConnectionError};
use crate::policy::{SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING};
use lease::{Elector, LeaderHandle, LeaseError};
use metrics::Metrics;
use reconcile::Context;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::policy::{CsrFacts, Verdict, decide};

    fn csr(cond: Option<&str>, cert: bool) -> CertificateSigningRequest {
        let mut c = CertificateSigningRequest::default();
        c.metadata.name = Some("node-csr-x".into());
        c.spec.signer_name = SIGNER_KUBELET_CLIENT.into();
        c.spec.request = k8s_openapi::ByteString(b"-----BEGIN CERTIFICATE REQUEST-----".to_vec());
        let conditions: Vec<(&str, &str)> = cond.into_iter().map(|t| (t, "True")).collect();
        c.status = Some(crate::policy::test_status(
            &conditions,
            cert.then_some(b"PEM".as_slice()),
        ));
        c
    }

    #[test]
    fn decided_csrs_leave_the_cache() {
        for (cond, cert) in [
            (Some("Approved"), true),
            (Some("Approved"), false),
            (Some("Denied"), false),
        ] {
            let c = csr(cond, cert);
            assert_eq!(decide(&CsrFacts::from_csr(&c)).verdict, Verdict::Ignore);
            // Seen live: removed from the store (it may have been there while pending).
            assert!(matches!(
                evict_decided(watcher::Event::Apply(c.clone())),
                Some(watcher::Event::Delete(_))
            ));
            // Seen in a (re)list: never enters the store.
            assert!(evict_decided(watcher::Event::InitApply(c)).is_none());
        }
    }

    #[test]
    fn pending_and_failed_csrs_stay_cached() {
        for cond in [None, Some("Failed")] {
            let c = csr(cond, false);
            assert!(matches!(
                evict_decided(watcher::Event::Apply(c.clone())),
                Some(watcher::Event::Apply(_))
            ));
            assert!(matches!(
                evict_decided(watcher::Event::InitApply(c)),
                Some(watcher::Event::InitApply(_))
            ));
        }
        for ev in [watcher::Event::Init, watcher::Event::InitDone] {
            assert!(evict_decided(ev).is_some());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error("listening on {addr} for /metrics: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("installing signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

/// A job only the leader runs, once per leadership term, cancelled when the term ends.
/// The caller supplies it (`main` wires `token`'s expired-token cleaner here for
/// `--clean-expired-tokens`), so the daemon does not depend on another command's code.
pub type TermJob = Arc<
    dyn Fn(
            kube::Client,
            CancellationToken,
        ) -> futures::future::BoxFuture<'static, Result<(), String>>
        + Send
        + Sync,
>;

/// Validates the flags, connects, and runs until SIGTERM/SIGINT (Ok) or lease loss (Err).
pub async fn run(
    conn: Connection,
    args: ControllerArgs,
    token_cleaner: TermJob,
) -> Result<(), ControllerError> {
    let config = Arc::new(Config::try_from(args)?);
    let client = crate::cluster::client(&conn).await?;
    run_with(client, config, token_cleaner).await
}

/// A decided CSR (Approved or Denied: both final, the API server refuses to remove either)
/// never needs work again, so it leaves the cache: after a large join, decided CSRs are
/// nearly all the objects in the cluster and would be nearly all of the daemon's memory.
fn evict_decided(
    event: watcher::Event<CertificateSigningRequest>,
) -> Option<watcher::Event<CertificateSigningRequest>> {
    match event {
        watcher::Event::Apply(csr) if is_decided(&csr) => Some(watcher::Event::Delete(csr)),
        watcher::Event::InitApply(csr) if is_decided(&csr) => None,
        other => Some(other),
    }
}

/// Fires once per leadership gain and once per resync period: "reconcile everything".
fn triggers(
    leader: &LeaderHandle,
    resync: Duration,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    let gained = futures::stream::unfold(
        (leader.subscribe(), false),
        |(mut rx, mut was)| async move {
            loop {
                let now = rx.borrow_and_update().valid_until.is_some();
                let fire = now && !was;
                was = now;
                if fire {
                    return Some(((), (rx, was)));
                }
                // Sender gone (no election): nothing more to trigger from here.
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    let start = tokio::time::Instant::now() + resync;
    let resync = futures::stream::unfold(
        tokio::time::interval_at(start, resync),
        |mut iv| async move {
            iv.tick().await;
            Some(((), iv))
        },
    );
    futures::stream::select(gained, resync)
}

/// The daemon, top-down: leadership, start-up (caches, queue, workers), serve (HTTP,
/// housekeeping, the token cleaner), then wait for a signal or lease loss and shut down.
pub async fn run_with(
    client: kube::Client,
    config: Arc<Config>,
    token_cleaner: TermJob,
) -> Result<(), ControllerError> {
    let mut registry = Registry::with_prefix("tlsboot");
    let metrics = Metrics::new(&mut registry);
    let lease_stop = CancellationToken::new();
    let work_stop = CancellationToken::new();

    let (leader, elector_task) = start_leadership(&client, &config, &metrics, &lease_stop);
    let ctx = Arc::new(Context::new(
        client.clone(),
        leader.clone(),
        metrics.clone(),
        config.clone(),
    ));

    let queue = Arc::new(work::WorkQueue::default());
    let mut caches = watch_csrs(&client, &queue);
    caches.feeds.spawn(reconcile_all_on_triggers(
        queue.clone(),
        caches.readers.clone(),
        triggers(&leader, config.resync_period),
    ));
    let workers = start_workers(&config, &queue, &caches.readers, &ctx, &work_stop);

    let http_state = Arc::new(http::HttpState {
        registry,
        metrics: metrics.clone(),
        stores: caches.stores.clone(),
        queue: queue.clone(),
        ready: std::sync::atomic::AtomicBool::new(false),
        ctx: ctx.clone(),
    });
    let http_stop = CancellationToken::new();
    let server = serve_http(&config, http_state.clone(), http_stop.clone()).await?;
    tokio::spawn(ready_then_housekeeping(http_state, caches.synced));
    if config.clean_expired_tokens {
        tokio::spawn(clean_tokens_while_leading(
            leader.clone(),
            client.clone(),
            work_stop.clone(),
            token_cleaner,
        ));
    }

    tracing::info!(
        identity = %config.identity,
        leader_election = config.lease.is_some(),
        dry_run = config.dry_run,
        deny_invalid = config.deny_invalid,
        "tlsboot controller starting"
    );
    let result = run_until_stopped(&config, workers, elector_task, &work_stop, &lease_stop).await;

    caches.feeds.abort_all();
    http_stop.cancel();
    if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(2), server).await {
        tracing::warn!(error = %e, "metrics server ended with an error");
    }
    result
}

type ElectorTask = tokio::task::JoinHandle<Result<lease::LeaseExit, LeaseError>>;

/// Leadership: with `--leader-elect`, an elector renewing the Lease (and keeping the leader
/// metrics true); without it, this replica always leads.
fn start_leadership(
    client: &kube::Client,
    config: &Config,
    metrics: &Metrics,
    lease_stop: &CancellationToken,
) -> (LeaderHandle, Option<ElectorTask>) {
    let Some(lease_cfg) = &config.lease else {
        metrics.leader.set(1);
        return (LeaderHandle::always_leader(), None);
    };
    let (elector, handle) = Elector::new(client.clone(), lease_cfg.clone());
    let m = metrics.clone();
    let was = std::sync::atomic::AtomicBool::new(false);
    let on_change: lease::OnChange = Box::new(move |leading| {
        m.leader.set(i64::from(leading));
        if leading && !was.swap(true, Ordering::Relaxed) {
            m.lease_transitions.inc();
        } else if !leading {
            was.store(false, Ordering::Relaxed);
        }
    });
    let task = tokio::spawn(elector.run(lease_stop.clone(), on_change));
    (handle, Some(task))
}

/// The CSR caches of both kubelet signers and the tasks feeding them into the queue.
struct CsrCaches {
    /// Per signer, for `/metrics` and `/readyz`.
    stores: Vec<(String, reflector::Store<CertificateSigningRequest>)>,
    /// The same stores, for the workers and the resync.
    readers: Arc<[reflector::Store<CertificateSigningRequest>]>,
    /// One per watch: true once its first list is in the queue.
    synced: Vec<Arc<std::sync::atomic::AtomicBool>>,
    feeds: tokio::task::JoinSet<()>,
}

/// Start-up: one field-selected watch per signer, reflected into a store (decided CSRs
/// evicted) and fed into `queue`.
fn watch_csrs(client: &kube::Client, queue: &Arc<work::WorkQueue>) -> CsrCaches {
    let mut stores = Vec::new();
    let mut synced = Vec::new();
    let mut feeds = tokio::task::JoinSet::new();
    for signer in [SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING] {
        let api: Api<CertificateSigningRequest> = Api::all(client.clone());
        let wc = watcher::Config::default().fields(&format!("spec.signerName={signer}"));
        let (reader, writer) = reflector::store();
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        synced.push(flag.clone());
        let stream = watcher(api, wc)
            .default_backoff()
            // Keep only what decisions need: managedFields can be most of a CSR's bytes.
            .modify(|csr: &mut CertificateSigningRequest| {
                csr.meta_mut().managed_fields = None;
            })
            .filter_map(|event| {
                futures::future::ready(match event {
                    Ok(ev) => evict_decided(ev).map(Ok),
                    Err(e) => Some(Err(e)),
                })
            })
            .reflect(writer);
        stores.push((signer.to_owned(), reader));
        feeds.spawn(work::feed(stream, queue.clone(), flag));
    }
    let readers = stores.iter().map(|(_, r)| r.clone()).collect();
    CsrCaches {
        stores,
        readers,
        synced,
        feeds,
    }
}

/// Queues every cached CSR each time `triggers` fires (leadership gained, resync period).
async fn reconcile_all_on_triggers(
    queue: Arc<work::WorkQueue>,
    readers: Arc<[reflector::Store<CertificateSigningRequest>]>,
    triggers: impl futures::Stream<Item = ()>,
) {
    let mut triggers = std::pin::pin!(triggers);
    while triggers.next().await.is_some() {
        for store in readers.iter() {
            for csr in store.state() {
                queue.add_csr(&csr);
            }
        }
    }
}

/// `--concurrency` workers in total, shared by both signers.
fn start_workers(
    config: &Config,
    queue: &Arc<work::WorkQueue>,
    readers: &Arc<[reflector::Store<CertificateSigningRequest>]>,
    ctx: &Arc<Context>,
    work_stop: &CancellationToken,
) -> tokio::task::JoinSet<()> {
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        workers.spawn(work::worker(
            queue.clone(),
            readers.clone(),
            ctx.clone(),
            work_stop.clone(),
        ));
    }
    workers
}

/// Serve: binds `--metrics-bind-address` (a bind error stops start-up) and serves
/// `/metrics`, `/healthz` and `/readyz` until `stop`.
async fn serve_http(
    config: &Config,
    state: Arc<http::HttpState>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, ControllerError> {
    let listener = tokio::net::TcpListener::bind(config.metrics_bind_address)
        .await
        .map_err(|source| ControllerError::Bind {
            addr: config.metrics_bind_address,
            source,
        })?;
    let server = axum::serve(listener, http::router(state))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .into_future();
    Ok(tokio::spawn(server))
}

/// Marks the daemon ready once every watch has listed, then refreshes the gauges and drops
/// memos of vanished CSRs every 30 s (never on a scrape: a read has no side effects).
async fn ready_then_housekeeping(
    state: Arc<http::HttpState>,
    synced: Vec<Arc<std::sync::atomic::AtomicBool>>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !synced.iter().all(|f| f.load(Ordering::Relaxed)) {
        tick.tick().await;
    }
    state.ready.store(true, Ordering::Relaxed);
    tracing::info!("CSR caches synced; ready");
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        http::update_gauges(&state);
        http::prune_memos(&state);
    }
}

/// `--clean-expired-tokens`: runs `token_cleaner` for one leadership term at a time.
async fn clean_tokens_while_leading(
    mut leader: LeaderHandle,
    client: kube::Client,
    stop: CancellationToken,
    token_cleaner: TermJob,
) {
    // Deletions are idempotent (UID precondition), but only the leader acts, like every
    // other write of this daemon: the cleaner is stopped when we step down.
    loop {
        tokio::select! {
            led = leader.became_leader() => {
                if !led {
                    return;
                }
            }
            _ = stop.cancelled() => return,
        }
        let term = stop.child_token();
        let mut watching = leader.clone();
        let end_term = term.clone();
        let ended = tokio::spawn(async move {
            tokio::select! {
                _ = watching.stopped_leading() => end_term.cancel(),
                _ = end_term.cancelled() => {}
            }
        });
        tracing::info!("expired bootstrap-token cleaner started");
        if let Err(error) = token_cleaner(client.clone(), term.clone()).await {
            tracing::error!(%error, "expired bootstrap-token cleaner stopped");
        }
        term.cancel();
        let _ = ended.await;
        // After an error while still leading, retry only in a later term.
        tokio::select! {
            _ = leader.stopped_leading() => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Runs until SIGTERM/SIGINT (finish in-flight CSRs, then hand the lease over: Ok), lease
/// loss (fail-stop: Err) or the workers ending; the workers are stopped on return.
async fn run_until_stopped(
    config: &Config,
    mut workers: tokio::task::JoinSet<()>,
    elector_task: Option<ElectorTask>,
    work_stop: &CancellationToken,
    lease_stop: &CancellationToken,
) -> Result<(), ControllerError> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ControllerError::Signals)?;
    let shutdown_signal = async move {
        tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        }
    };

    // Dropping `work` (on lease loss, below) drops the JoinSet, which aborts every worker
    // mid-reconcile; the write fence would refuse their writes anyway.
    let mut work = Box::pin(async move { while workers.join_next().await.is_some() {} });
    // Without leader election `elector_done` never completes: waiting for it at
    // shutdown would always cost its full timeout.
    let has_elector = elector_task.is_some();
    let elector_done = async {
        match elector_task {
            Some(t) => t.await,
            None => futures::future::pending().await,
        }
    };
    tokio::pin!(elector_done);

    tokio::select! {
        sig = shutdown_signal => {
            tracing::info!(signal = sig, timeout = ?config.shutdown_timeout, "shutting down: finishing in-flight CSRs");
            work_stop.cancel();
            if tokio::time::timeout(config.shutdown_timeout, &mut work).await.is_err() {
                tracing::warn!("in-flight reconciles did not finish in time; exiting anyway");
            }
            // Only now hand the lease over, so a standby never overlaps our last writes.
            lease_stop.cancel();
            if has_elector
                && let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(5), &mut elector_done).await
            {
                tracing::warn!(error = %e, "lease ended with an error during shutdown");
            }
            Ok(())
        }
        res = &mut elector_done => {
            // Fail-stop when the renew deadline passed without the API server answering
            // (a step-down after a conflict or a foreign holder never ends the elector):
            // stop acting (the controller futures are dropped, aborting in-flight
            // reconciles) and exit non-zero, as kube-controller-manager does.
            match res {
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "leadership lost: stopping");
                    Err(ControllerError::Lease(e))
                }
                Ok(Ok(_)) => Ok(()),
                Err(join) => Err(ControllerError::Lease(LeaseError::Lost {
                    namespace: String::new(),
                    name: String::new(),
                    reason: format!("lease task failed: {join}"),
                })),
            }
        }
        _ = &mut work => {
            tracing::warn!("controllers ended unexpectedly");
            Ok(())
        }
    }
}
