//! Prometheus metrics (OpenMetrics text). Names are prefixed `tlsboot_`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub signer: String,
    pub outcome: Outcome,
}

#[derive(
    Clone, Copy, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue,
)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    approved,
    not_authorized,
    invalid,
    queued_for_review,
    denied,
    /// Decided, then deleted and re-created under the same name before the write: the
    /// decision was not written (the new object is decided on its own).
    replaced,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignerLabels {
    pub signer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiErrorLabels {
    pub verb: String,
    pub code: String,
}

/// All daemon metrics. Cheap to clone (everything inside is `Arc`-backed).
#[derive(Clone)]
pub struct Metrics {
    pub decisions: Family<DecisionLabels, Counter>,
    pub sar_duration: Histogram,
    pub approval_duration: Histogram,
    pub create_to_approved: Histogram,
    pub pending: Family<SignerLabels, Gauge>,
    pub oldest_pending_age: Family<SignerLabels, Gauge<f64, AtomicU64>>,
    pub leader: Gauge,
    pub lease_transitions: Counter,
    pub api_errors: Family<ApiErrorLabels, Counter>,
    pub reconcile_errors: Counter,
    pub queue_depth: Gauge,
    pub queue_parked: Gauge,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            decisions: Family::default(),
            // 1 ms … ~16 s
            sar_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            approval_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            // 5 ms … ~160 s: a burst of thousands of nodes lands in the upper buckets.
            create_to_approved: Histogram::new(exponential_buckets(0.005, 2.0, 16)),
            pending: Family::default(),
            oldest_pending_age: Family::default(),
            leader: Gauge::default(),
            lease_transitions: Counter::default(),
            api_errors: Family::default(),
            reconcile_errors: Counter::default(),
            queue_depth: Gauge::default(),
            queue_parked: Gauge::default(),
        };
        registry.register(
            "csr_decisions",
            "CSR decisions by signer and outcome (approved, not_authorized, invalid, queued_for_review, denied, replaced)",
            m.decisions.clone(),
        );
        registry.register(
            "subject_access_review_duration_seconds",
            "Latency of SubjectAccessReview requests",
            m.sar_duration.clone(),
        );
        registry.register(
            "approval_write_duration_seconds",
            "Latency of PUT .../approval requests",
            m.approval_duration.clone(),
        );
        registry.register(
            "csr_create_to_approved_seconds",
            "Time from CSR creation to our Approved condition being stored",
            m.create_to_approved.clone(),
        );
        registry.register(
            "csr_pending",
            "Pending CSRs (no Approved/Denied condition, no certificate) by signer",
            m.pending.clone(),
        );
        registry.register(
            "csr_oldest_pending_age_seconds",
            "Age of the oldest pending CSR by signer (upstream garbage-collects pending CSRs at 24h)",
            m.oldest_pending_age.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            m.leader.clone(),
        );
        registry.register(
            "lease_transitions",
            "Times this replica became leader",
            m.lease_transitions.clone(),
        );
        registry.register(
            "api_errors",
            "Kubernetes API errors by verb and HTTP code",
            m.api_errors.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error and were requeued",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "work_queue_depth",
            "CSRs waiting for a worker now (a flooding requester shows here, not in others' latency)",
            m.queue_depth.clone(),
        );
        registry.register(
            "work_queue_parked",
            "CSRs parked for a retry or backoff",
            m.queue_parked.clone(),
        );
        m
    }

    pub fn decision(&self, signer: &str, outcome: Outcome) {
        self.decisions
            .get_or_create(&DecisionLabels {
                signer: signer.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn api_error(&self, verb: &str, err: &kube::Error) {
        let code = crate::cluster::ApiError::of(err)
            .code()
            .map_or_else(|| "transport".to_owned(), |c| c.to_string());
        self.api_error_code(verb, &code);
    }

    pub fn api_error_code(&self, verb: &str, code: &str) {
        self.api_errors
            .get_or_create(&ApiErrorLabels {
                verb: verb.to_owned(),
                code: code.to_owned(),
            })
            .inc();
    }
}
