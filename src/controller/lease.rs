//! Leader election on a coordination.k8s.io/v1 Lease with client-go semantics.
//!
//! Why not a crate: kube 5 has none built in, and kube-lease-manager keeps reporting
//! leadership through an API outage. Here leadership is a *local monotonic deadline*:
//! `valid_until = start of the last successful renew + renew_deadline`. Every write in
//! the daemon checks it immediately before sending ([`LeaderHandle::check`]), and since
//! `renew_deadline < lease_duration`, our deadline passes before any follower may take
//! over (followers time expiry from when *they* saw the record change, also locally).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Validated leader-election settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's invariant: retry < renew deadline < lease duration.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_period.is_zero() {
            return Err("--leader-elect-retry-period must be greater than zero".into());
        }
        if self.renew_deadline <= self.retry_period {
            return Err(format!(
                "--leader-elect-renew-deadline ({:?}) must be greater than --leader-elect-retry-period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "--leader-elect-lease-duration ({:?}) must be greater than --leader-elect-renew-deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.identity.is_empty() {
            return Err("leader election identity must not be empty".into());
        }
        Ok(())
    }
}

/// The part of a Lease that decides who leads. Compared as a whole to notice renewals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    pub lease_duration_seconds: i32,
    pub renew_time: Option<Timestamp>,
    pub acquire_time: Option<Timestamp>,
    pub transitions: i32,
}

impl LeaseRecord {
    pub fn from_spec(spec: Option<&LeaseSpec>) -> Self {
        let spec = spec.cloned().unwrap_or_default();
        LeaseRecord {
            holder: spec.holder_identity.unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
            renew_time: spec.renew_time.map(|t| t.0),
            acquire_time: spec.acquire_time.map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// A record and the local instant we first saw it. Expiry is judged from this instant,
/// never from the record's wall-clock times, so clock skew between nodes cannot matter.
#[derive(Debug, Clone)]
pub struct Observed {
    pub record: LeaseRecord,
    pub at: Instant,
}

/// Keeps the old observation while the record is unchanged (the holder is not renewing).
pub fn observe(prev: Option<Observed>, current: LeaseRecord, now: Instant) -> Observed {
    match prev {
        Some(p) if p.record == current => p,
        _ => Observed {
            record: current,
            at: now,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No Lease object exists: create it holding it ourselves.
    Create,
    /// Free or expired: take it over (transitions + 1).
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds a live lease.
    Follow {
        holder: String,
        expires_in: Duration,
    },
}

/// The pure decision, unit-tested below.
pub fn decide(observed: Option<&Observed>, me: &str, now: Instant) -> Step {
    let Some(o) = observed else {
        return Step::Create;
    };
    if o.record.holder == me {
        return Step::Renew;
    }
    if o.record.holder.is_empty() {
        return Step::Acquire;
    }
    // A holder that wrote a zero/negative duration still gets one second: client-go
    // treats the record as authoritative and would otherwise flap.
    let duration =
        Duration::from_secs(u64::try_from(o.record.lease_duration_seconds.max(1)).unwrap_or(1));
    let expiry = o.at + duration;
    if now >= expiry {
        Step::Acquire
    } else {
        Step::Follow {
            holder: o.record.holder.clone(),
            expires_in: expiry - now,
        }
    }
}

/// What the rest of the daemon sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderState {
    /// `Some(deadline)` while we lead; writes are allowed strictly before it.
    pub valid_until: Option<Instant>,
    pub transitions: u64,
}

/// Cheap, cloneable view of leadership for fencing writes.
#[derive(Debug, Clone)]
pub struct LeaderHandle {
    rx: watch::Receiver<LeaderState>,
    always: bool,
}

impl LeaderHandle {
    /// For `--leader-elect=false`: always allowed to write.
    pub fn always_leader() -> Self {
        let (_tx, rx) = watch::channel(LeaderState {
            valid_until: None,
            transitions: 0,
        });
        LeaderHandle { rx, always: true }
    }

    pub fn is_leader(&self) -> bool {
        self.always
            || self
                .rx
                .borrow()
                .valid_until
                .is_some_and(|t| Instant::now() < t)
    }

    /// The fence: call immediately before every approval/deny write.
    pub fn check(&self) -> Result<(), String> {
        if self.is_leader() {
            Ok(())
        } else {
            Err("this replica does not hold a valid leader lease".to_owned())
        }
    }

    /// Resolves when we become leader (immediately when already leading).
    pub async fn became_leader(&mut self) {
        if self.always {
            return;
        }
        let _ = self.rx.wait_for(|s| s.valid_until.is_some()).await;
    }

    pub fn subscribe(&self) -> watch::Receiver<LeaderState> {
        self.rx.clone()
    }

    pub fn elected(&self) -> bool {
        self.always
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lost leader lease {namespace}/{name}: {reason}")]
    Lost {
        namespace: String,
        name: String,
        reason: String,
    },
}

/// How the elector ended without error.
#[derive(Debug, PartialEq, Eq)]
pub enum LeaseExit {
    /// Shut down on request; the lease was released (or never held).
    Released,
}

/// Runs the election loop. Returns `Err(Lost)` the moment leadership is lost; the caller
/// must stop acting and exit non-zero (the Deployment restarts us as a follower).
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    tx: watch::Sender<LeaderState>,
}

/// Called after each attempt so metrics can follow leadership without this module
/// knowing about them.
pub type OnChange = Box<dyn Fn(bool) + Send + Sync>;

impl Elector {
    pub fn new(client: kube::Client, cfg: LeaseConfig) -> (Self, LeaderHandle) {
        let (tx, rx) = watch::channel(LeaderState {
            valid_until: None,
            transitions: 0,
        });
        let api = Api::namespaced(client, &cfg.namespace);
        (Elector { api, cfg, tx }, LeaderHandle { rx, always: false })
    }

    fn lost(&self, reason: impl Into<String>) -> LeaseError {
        self.tx.send_modify(|s| s.valid_until = None);
        LeaseError::Lost {
            namespace: self.cfg.namespace.clone(),
            name: self.cfg.name.clone(),
            reason: reason.into(),
        }
    }

    fn leading_until(&self) -> Option<Instant> {
        self.tx.borrow().valid_until
    }

    pub async fn run(
        self,
        shutdown: CancellationToken,
        on_change: OnChange,
    ) -> Result<LeaseExit, LeaseError> {
        let mut observed: Option<Observed> = None;
        loop {
            let start = Instant::now();
            if let Some(until) = self.leading_until()
                && start >= until
            {
                on_change(false);
                return Err(self.lost(format!(
                    "could not renew within the renew deadline ({:?})",
                    self.cfg.renew_deadline
                )));
            }
            // Bound each attempt so a hung connection cannot outlive our deadline.
            let attempt_timeout = self.cfg.retry_period.max(Duration::from_millis(500));
            let attempt =
                tokio::time::timeout(attempt_timeout, self.try_once(&mut observed, start));
            let outcome = tokio::select! {
                r = attempt => r.unwrap_or(Attempt::Failed("lease request timed out".into())),
                _ = shutdown.cancelled() => Attempt::Shutdown,
            };
            match outcome {
                Attempt::Leading => {
                    let was_leading = self.leading_until().is_some();
                    self.tx.send_modify(|s| {
                        s.valid_until = Some(start + self.cfg.renew_deadline);
                        if !was_leading {
                            s.transitions += 1;
                        }
                    });
                    if !was_leading {
                        tracing::info!(lease = %self.cfg.name, identity = %self.cfg.identity, "became leader");
                    }
                    on_change(true);
                }
                Attempt::Following(holder) => {
                    if self.leading_until().is_some() {
                        on_change(false);
                        return Err(self.lost(format!("lease is now held by {holder:?}")));
                    }
                    on_change(false);
                }
                Attempt::Failed(why) => {
                    tracing::warn!(lease = %self.cfg.name, error = %why, "leader election attempt failed");
                }
                Attempt::Shutdown => {
                    if self.leading_until().is_some() {
                        self.tx.send_modify(|s| s.valid_until = None);
                        on_change(false);
                        self.release().await;
                    }
                    return Ok(LeaseExit::Released);
                }
            }
            let wait = self.cfg.retry_period;
            tokio::select! {
                _ = tokio::time::sleep_until(start + wait) => {}
                _ = shutdown.cancelled() => {
                    if self.leading_until().is_some() {
                        self.tx.send_modify(|s| s.valid_until = None);
                        on_change(false);
                        self.release().await;
                    }
                    return Ok(LeaseExit::Released);
                }
            }
        }
    }

    async fn try_once(&self, observed: &mut Option<Observed>, now: Instant) -> Attempt {
        let existing = match self.api.get_opt(&self.cfg.name).await {
            Ok(l) => l,
            Err(e) => return Attempt::Failed(format!("reading lease: {e}")),
        };
        let Some(lease) = existing else {
            *observed = None;
            return self.create().await;
        };
        let record = LeaseRecord::from_spec(lease.spec.as_ref());
        let obs = observe(observed.take(), record, now);
        let step = decide(Some(&obs), &self.cfg.identity, now);
        *observed = Some(obs);
        match step {
            Step::Follow { holder, .. } => Attempt::Following(holder),
            Step::Create => self.create().await,
            Step::Renew | Step::Acquire => self.update(lease, step == Step::Acquire).await,
        }
    }

    fn spec_now(&self, acquire: Option<Timestamp>, transitions: i32) -> LeaseSpec {
        let now = Timestamp::now();
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.cfg.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(MicroTime(acquire.unwrap_or(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    async fn create(&self) -> Attempt {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.cfg.name.clone()),
                namespace: Some(self.cfg.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(self.spec_now(None, 0)),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Attempt::Leading,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                Attempt::Failed("lost the race to create the lease".into())
            }
            Err(e) => Attempt::Failed(format!("creating lease: {e}")),
        }
    }

    async fn update(&self, mut lease: Lease, acquire: bool) -> Attempt {
        let old = LeaseRecord::from_spec(lease.spec.as_ref());
        let spec = if acquire {
            self.spec_now(None, old.transitions.saturating_add(1))
        } else {
            self.spec_now(old.acquire_time, old.transitions)
        };
        lease.spec = Some(spec);
        // resourceVersion stays set: a concurrent writer makes this a 409, never a double hold.
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Attempt::Leading,
            Err(kube::Error::Api(s)) if s.code == 409 => Attempt::Following(if acquire {
                "another candidate".into()
            } else {
                old.holder
            }),
            Err(e) => Attempt::Failed(format!("updating lease: {e}")),
        }
    }

    /// Hands the lease over at once (client-go's ReleaseOnCancel): empty holder, 1 s.
    async fn release(&self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
                return Ok(());
            };
            if lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                != Some(self.cfg.identity.as_str())
            {
                return Ok(());
            }
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.lease_duration_seconds = Some(1);
                spec.renew_time = Some(MicroTime(Timestamp::now()));
            }
            self.api
                .replace(&self.cfg.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(self.cfg.retry_period, result).await {
            Ok(Ok(())) => tracing::info!(lease = %self.cfg.name, "released leader lease"),
            Ok(Err(e)) => {
                tracing::warn!(lease = %self.cfg.name, error = %e, "could not release leader lease; it will expire")
            }
            Err(_) => {
                tracing::warn!(lease = %self.cfg.name, "timed out releasing leader lease; it will expire")
            }
        }
    }
}

enum Attempt {
    Leading,
    Following(String),
    Failed(String),
    Shutdown,
}

/// `<hostname>_<random>` like client-go users (KCM uses `<hostname>_<uuid>`).
pub fn default_identity() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "tlsboot".to_owned());
    let mut bytes = [0u8; 8];
    let suffix = match getrandom::fill(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Err(_) => format!("{}", std::process::id()),
    };
    format!("{host}_{suffix}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn rec(holder: &str, secs: i32, renew: i64) -> LeaseRecord {
        LeaseRecord {
            holder: holder.into(),
            lease_duration_seconds: secs,
            renew_time: Some(Timestamp::from_second(renew).unwrap()),
            acquire_time: None,
            transitions: 0,
        }
    }

    #[test]
    fn no_lease_means_create() {
        assert_eq!(decide(None, "me", Instant::now()), Step::Create);
    }

    #[test]
    fn own_lease_is_renewed_even_if_old() {
        let t0 = Instant::now();
        let o = observe(None, rec("me", 15, 100), t0);
        assert_eq!(
            decide(Some(&o), "me", t0 + Duration::from_secs(3600)),
            Step::Renew
        );
    }

    #[test]
    fn empty_holder_is_acquired_at_once() {
        let t0 = Instant::now();
        let o = observe(None, rec("", 1, 100), t0);
        assert_eq!(decide(Some(&o), "me", t0), Step::Acquire);
    }

    #[test]
    fn live_foreign_lease_is_followed_until_local_expiry() {
        let t0 = Instant::now();
        let o = observe(None, rec("other", 15, 100), t0);
        match decide(Some(&o), "me", t0 + Duration::from_secs(14)) {
            Step::Follow { holder, expires_in } => {
                assert_eq!(holder, "other");
                assert_eq!(expires_in, Duration::from_secs(1));
            }
            s => panic!("unexpected {s:?}"),
        }
        assert_eq!(
            decide(Some(&o), "me", t0 + Duration::from_secs(15)),
            Step::Acquire
        );
    }

    #[test]
    fn expiry_ignores_wall_clock_times_in_the_record() {
        // A renewTime far in the past (skewed clock) must not make us take over early.
        let t0 = Instant::now();
        let o = observe(None, rec("other", 15, 0), t0);
        assert!(matches!(
            decide(Some(&o), "me", t0 + Duration::from_secs(5)),
            Step::Follow { .. }
        ));
    }

    #[test]
    fn a_renewal_restarts_the_local_expiry_clock() {
        let t0 = Instant::now();
        let o1 = observe(None, rec("other", 15, 100), t0);
        let t1 = t0 + Duration::from_secs(10);
        let o2 = observe(Some(o1.clone()), rec("other", 15, 110), t1);
        assert_eq!(o2.at, t1);
        assert!(matches!(
            decide(Some(&o2), "me", t0 + Duration::from_secs(20)),
            Step::Follow { .. }
        ));
        // Unchanged record keeps the first observation time.
        let o3 = observe(Some(o1), rec("other", 15, 100), t1);
        assert_eq!(o3.at, t0);
        assert_eq!(
            decide(Some(&o3), "me", t0 + Duration::from_secs(20)),
            Step::Acquire
        );
    }

    #[test]
    fn zero_duration_counts_as_one_second() {
        let t0 = Instant::now();
        let o = observe(None, rec("other", 0, 100), t0);
        assert!(matches!(decide(Some(&o), "me", t0), Step::Follow { .. }));
        assert_eq!(
            decide(Some(&o), "me", t0 + Duration::from_secs(1)),
            Step::Acquire
        );
    }

    #[test]
    fn config_invariants_are_enforced() {
        let ok = LeaseConfig {
            name: "l".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.renew_deadline = Duration::from_secs(15);
        assert!(bad.validate().unwrap_err().contains("lease-duration"));
        let mut bad = ok.clone();
        bad.retry_period = Duration::from_secs(10);
        assert!(bad.validate().unwrap_err().contains("retry-period"));
        let mut bad = ok;
        bad.identity.clear();
        assert!(bad.validate().is_err());
    }

    #[tokio::test]
    async fn handle_fences_on_the_local_deadline() {
        let (tx, rx) = watch::channel(LeaderState {
            valid_until: None,
            transitions: 0,
        });
        let h = LeaderHandle { rx, always: false };
        assert!(h.check().is_err());
        tx.send_modify(|s| s.valid_until = Some(Instant::now() + Duration::from_secs(60)));
        assert!(h.check().is_ok());
        tx.send_modify(|s| s.valid_until = Some(Instant::now() - Duration::from_millis(1)));
        assert!(
            h.check().is_err(),
            "a passed deadline must fence even before the elector notices"
        );
        assert!(LeaderHandle::always_leader().check().is_ok());
    }

    #[test]
    fn identity_has_host_and_random_suffix() {
        let a = default_identity();
        let b = default_identity();
        assert!(a.contains('_'));
        assert_ne!(a, b);
    }
}
