//! `/metrics` (OpenMetrics), `/healthz` (alive) and `/readyz` (caches synced; not tied to
//! leadership, so standby replicas do not stall rollouts).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::Store;
use prometheus_client::registry::Registry;

use super::metrics::{Metrics, SignerLabels};
use super::reconcile::Context;
use crate::cluster::csr_status::awaits_approver;

pub struct HttpState {
    pub registry: Registry,
    pub metrics: Metrics,
    pub stores: Vec<(String, Store<CertificateSigningRequest>)>,
    pub queue: Arc<super::work::WorkQueue>,
    pub ready: AtomicBool,
    pub ctx: Arc<Context>,
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn readyz(State(s): State<Arc<HttpState>>) -> impl IntoResponse {
    // A replica that can never lead until a person acts is not ready: say why.
    if let Some(problem) = s.ctx.leader.problem() {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n"))
    } else if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "CSR caches not synced yet\n".to_owned(),
        )
    }
}

/// Recomputes the pending and queue gauges from the caches. A read: it changes nothing
/// but the gauges it reports, so a scrape has no side effects.
pub fn update_gauges(s: &HttpState) {
    let now = Timestamp::now();
    let mut per_signer: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
    for (signer, store) in &s.stores {
        let entry = per_signer.entry(signer.as_str()).or_insert((0, 0.0));
        for csr in store.state() {
            if awaits_approver(&csr) {
                entry.0 += 1;
                if let Some(created) = &csr.metadata.creation_timestamp {
                    let age = now.duration_since(created.0).as_secs_f64();
                    entry.1 = entry.1.max(age);
                }
            }
        }
    }
    for (signer, (count, oldest)) in per_signer {
        let labels = SignerLabels {
            signer: signer.to_owned(),
        };
        s.metrics.pending.get_or_create(&labels).set(count);
        s.metrics
            .oldest_pending_age
            .get_or_create(&labels)
            .set(oldest);
    }
    let (depth, parked) = s.queue.depth();
    s.metrics
        .queue_depth
        .set(i64::try_from(depth).unwrap_or(i64::MAX));
    s.metrics
        .queue_parked
        .set(i64::try_from(parked).unwrap_or(i64::MAX));
}

/// Forgets per-CSR memory of CSRs that are gone, so memory follows the cluster. Only once
/// the caches are synced (before, "not in the cache" does not mean "gone"); called by the
/// daemon's periodic housekeeping, never by a scrape.
pub fn prune_memos(s: &HttpState) {
    if !s.ready.load(Ordering::Relaxed) {
        return;
    }
    let live: HashSet<String> = s
        .stores
        .iter()
        .flat_map(|(_, store)| store.state())
        .filter_map(|csr| csr.metadata.uid.clone())
        .collect();
    s.ctx.retain_memos(&live);
}

async fn metrics(State(s): State<Arc<HttpState>>) -> impl IntoResponse {
    update_gauges(&s);
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("encoding metrics: {e}\n"),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::controller::config::{Config, ControllerArgs};
    use crate::controller::lease::LeaderHandle;
    use axum::body::to_bytes;
    use clap::Parser as _;
    use kube::runtime::reflector;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        args: ControllerArgs,
    }

    async fn scrape(s: &Arc<HttpState>) -> String {
        let response = metrics(State(s.clone())).await.into_response();
        assert_eq!(response.status(), StatusCode::OK);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// A scrape is a read: scraping twice gives the same page and forgets nothing (it used to
    /// prune the reconciles' per-CSR memory, so a scrape changed what the daemon reports next).
    #[tokio::test]
    async fn scraping_has_no_side_effects() {
        let flags = Flags::try_parse_from(["t", "--leader-elect=false"]).unwrap();
        let config = Arc::new(Config::try_from(flags.args).unwrap());
        // Never used to connect: nothing in a scrape talks to the API server.
        let kube_config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(kube_config).unwrap();
        let mut registry = Registry::with_prefix("tlsboot");
        let metrics = Metrics::new(&mut registry);
        let ctx = Arc::new(Context::new(
            client,
            LeaderHandle::always_leader(),
            metrics.clone(),
            config,
        ));
        // A CSR reported on earlier, no longer in the (synced, empty) caches.
        ctx.remember(
            "uid-gone",
            crate::controller::reconcile::EVENT_NOT_AUTHORIZED,
        );
        let (reader, _writer) = reflector::store::<CertificateSigningRequest>();
        let state = Arc::new(HttpState {
            registry,
            metrics,
            stores: vec![(crate::policy::SIGNER_KUBELET_CLIENT.to_owned(), reader)],
            queue: Arc::new(super::super::work::WorkQueue::default()),
            ready: AtomicBool::new(true),
            ctx: ctx.clone(),
        });
        let first = scrape(&state).await;
        let second = scrape(&state).await;
        assert_eq!(first, second);
        assert!(first.contains("tlsboot_"), "{first}");
        assert_eq!(ctx.memo_count(), 1, "a scrape forgot a CSR's memo");
        // Housekeeping is what forgets CSRs that are gone.
        prune_memos(&state);
        assert_eq!(ctx.memo_count(), 0);
    }
}
