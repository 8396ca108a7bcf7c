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
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "CSR caches not synced yet\n",
        )
    }
}

/// Recomputes the pending gauges from the caches and prunes per-CSR memory of CSRs
/// that are gone. Called at scrape time and periodically.
pub fn refresh(s: &HttpState) {
    let now = Timestamp::now();
    let mut live = HashSet::new();
    let mut per_signer: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
    for (signer, store) in &s.stores {
        let entry = per_signer.entry(signer.as_str()).or_insert((0, 0.0));
        for csr in store.state() {
            if let Some(uid) = &csr.metadata.uid {
                live.insert(uid.clone());
            }
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
    if s.ready.load(Ordering::Relaxed) {
        s.ctx.retain_memos(&live);
    }
}

async fn metrics(State(s): State<Arc<HttpState>>) -> impl IntoResponse {
    refresh(&s);
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
