//! SubjectAccessReviews, built exactly as kube-controller-manager's csrapproving does
//! (`pkg/controller/certificates/approver/sarapprove.go`, `authorize`).

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use crate::policy::SarSubresource;
/// The builder lives in policy so the review commands can ask the very same review.
pub use crate::policy::subject_access_review;

/// The ClusterRole that grants `subresource`, for explanations.
pub fn granting_cluster_role(subresource: SarSubresource) -> String {
    format!(
        "system:certificates.k8s.io:certificatesigningrequests:{}",
        subresource.as_str()
    )
}

/// A human explanation of a refused CSR: who asked, what is missing, what would fix it.
pub fn explain_refusal(csr: &CertificateSigningRequest, tried: &[SarSubresource]) -> String {
    let user = csr.spec.username.as_deref().unwrap_or("<unknown>");
    let groups = csr.spec.groups.clone().unwrap_or_default();
    let missing: Vec<String> = tried
        .iter()
        .map(|s| format!("create certificatesigningrequests/{}", s.as_str()))
        .collect();
    // The group a binding should name: the most specific one the requester has,
    // never system:authenticated (that would grant every user).
    let group = groups
        .iter()
        .find(|g| g.as_str() == "system:bootstrappers" || g.as_str() == "system:nodes")
        .or_else(|| {
            groups.iter().find(|g| {
                g.as_str() != "system:authenticated" && g.as_str() != "system:unauthenticated"
            })
        });
    let fix = match (tried.last(), group) {
        (Some(last), Some(group)) => format!(
            "; a ClusterRoleBinding of ClusterRole {} to group {group} would grant it (tlsboot rbac apply installs the standard ones)",
            granting_cluster_role(*last)
        ),
        (Some(last), None) => format!(
            "; a ClusterRoleBinding of ClusterRole {} to this user would grant it",
            granting_cluster_role(*last)
        ),
        (None, _) => String::new(),
    };
    format!(
        "user {user:?} (groups {groups:?}) is not allowed to {}: SubjectAccessReview refused{fix}",
        missing.join(" or ")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;
    use std::collections::BTreeMap;

    fn csr() -> CertificateSigningRequest {
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                username: Some("system:bootstrap:abcdef".into()),
                uid: Some("u-1".into()),
                groups: Some(vec![
                    "system:bootstrappers".into(),
                    "system:authenticated".into(),
                ]),
                extra: Some(BTreeMap::from([("k".to_string(), vec!["v".to_string()])])),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn sar_copies_identity_and_names_the_subresource() {
        let sar = subject_access_review(&csr(), SarSubresource::NodeClient);
        let v = serde_json::to_value(&sar).unwrap();
        assert_eq!(v["spec"]["user"], "system:bootstrap:abcdef");
        assert_eq!(v["spec"]["uid"], "u-1");
        assert_eq!(v["spec"]["groups"][0], "system:bootstrappers");
        assert_eq!(v["spec"]["extra"]["k"][0], "v");
        let ra = &v["spec"]["resourceAttributes"];
        assert_eq!(ra["group"], "certificates.k8s.io");
        assert_eq!(ra["resource"], "certificatesigningrequests");
        assert_eq!(ra["verb"], "create");
        assert_eq!(ra["subresource"], "nodeclient");
        assert!(
            ra.get("namespace").is_none()
                && ra.get("name").is_none()
                && ra.get("version").is_none()
        );
    }

    #[test]
    fn refusal_names_permission_and_binding() {
        let msg = explain_refusal(&csr(), &[SarSubresource::NodeClient]);
        assert!(
            msg.contains("create certificatesigningrequests/nodeclient"),
            "{msg}"
        );
        assert!(
            msg.contains("system:certificates.k8s.io:certificatesigningrequests:nodeclient"),
            "{msg}"
        );
        assert!(msg.contains("group system:bootstrappers"), "{msg}");
        assert!(!msg.contains("group system:authenticated"), "{msg}");
    }
}

/// Short-lived memory of SubjectAccessReview answers.
///
/// A SAR's answer depends only on the requester (user, uid, groups, extra) and the
/// subresource, never on the CSR. When thousands of nodes join through one bootstrap
/// token, or one token floods junk, one SAR per TTL answers them all, so the API server
/// serves approvals instead of identical reviews. The TTL is short (default 1 s, 0 = off)
/// so an RBAC change takes effect about as fast as the API server's own RBAC cache
/// propagates it. Documented in docs/security.md.
#[derive(Debug)]
pub struct SarCache {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<SarKey, (bool, tokio::time::Instant)>>,
    /// One review in flight per key: when an entry expires under load, the other workers
    /// wait for that answer instead of each sending the same SubjectAccessReview.
    inflight:
        std::sync::Mutex<std::collections::HashMap<SarKey, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SarKey {
    subresource: SarSubresource,
    user: Option<String>,
    uid: Option<String>,
    groups: Option<Vec<String>>,
    extra: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

impl SarKey {
    pub fn new(csr: &CertificateSigningRequest, subresource: SarSubresource) -> Self {
        SarKey {
            subresource,
            user: csr.spec.username.clone(),
            uid: csr.spec.uid.clone(),
            groups: csr.spec.groups.clone(),
            extra: csr.spec.extra.clone(),
        }
    }
}

impl SarCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        SarCache {
            ttl,
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
            inflight: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The per-key gate to hold while asking; `None` when caching is off (ask freely).
    pub fn gate(&self, key: &SarKey) -> Option<std::sync::Arc<tokio::sync::Mutex<()>>> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: gates nobody holds are dropped once the map grows.
        if inflight.len() > 4096 {
            inflight.retain(|_, g| std::sync::Arc::strong_count(g) > 1);
        }
        Some(inflight.entry(key.clone()).or_default().clone())
    }

    pub fn get(&self, key: &SarKey, now: tokio::time::Instant) -> Option<bool> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| now.saturating_duration_since(*at) < self.ttl)
            .map(|(allowed, _)| *allowed)
    }

    /// `asked_at` is when the SAR was *sent*: the answer is only as fresh as the request.
    pub fn put(&self, key: SarKey, allowed: bool, asked_at: tokio::time::Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded memory: expired entries go whenever the map grows past a few thousand.
        if entries.len() > 4096 {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| asked_at.saturating_duration_since(*at) < ttl);
        }
        entries.insert(key, (allowed, asked_at));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod cache_tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;
    use std::time::Duration;
    use tokio::time::Instant;

    fn csr(user: &str, groups: &[&str]) -> CertificateSigningRequest {
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                username: Some(user.into()),
                groups: Some(groups.iter().map(|g| g.to_string()).collect()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn answers_within_ttl_only() {
        let c = SarCache::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let k = SarKey::new(&csr("u", &["g"]), SarSubresource::NodeClient);
        assert_eq!(c.get(&k, t0), None);
        c.put(k.clone(), true, t0);
        assert_eq!(c.get(&k, t0 + Duration::from_millis(999)), Some(true));
        assert_eq!(c.get(&k, t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn key_covers_every_identity_field_and_the_subresource() {
        let c = SarCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        c.put(
            SarKey::new(&csr("u", &["g"]), SarSubresource::NodeClient),
            true,
            t0,
        );
        assert_eq!(
            c.get(
                &SarKey::new(&csr("u", &["g"]), SarSubresource::SelfNodeClient),
                t0
            ),
            None
        );
        assert_eq!(
            c.get(
                &SarKey::new(&csr("u", &["g", "h"]), SarSubresource::NodeClient),
                t0
            ),
            None
        );
        assert_eq!(
            c.get(
                &SarKey::new(&csr("v", &["g"]), SarSubresource::NodeClient),
                t0
            ),
            None
        );
        let mut other_uid = csr("u", &["g"]);
        other_uid.spec.uid = Some("x".into());
        assert_eq!(
            c.get(&SarKey::new(&other_uid, SarSubresource::NodeClient), t0),
            None
        );
    }

    #[test]
    fn zero_ttl_disables() {
        let c = SarCache::new(Duration::ZERO);
        let t0 = Instant::now();
        let k = SarKey::new(&csr("u", &["g"]), SarSubresource::NodeClient);
        c.put(k.clone(), true, t0);
        assert_eq!(c.get(&k, t0), None);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod gate_tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;
    use std::time::Duration;

    #[tokio::test]
    async fn one_gate_per_key_and_none_without_cache() {
        let csr = CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                username: Some("u".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let k = SarKey::new(&csr, SarSubresource::NodeClient);
        let c = SarCache::new(Duration::from_secs(1));
        let a = c.gate(&k).unwrap();
        let b = c.gate(&k).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        let held = a.lock().await;
        assert!(b.try_lock().is_err(), "a second asker must wait");
        drop(held);
        let other = c
            .gate(&SarKey::new(&csr, SarSubresource::SelfNodeClient))
            .unwrap();
        assert!(!std::sync::Arc::ptr_eq(&a, &other));
        assert!(SarCache::new(Duration::ZERO).gate(&k).is_none());
    }
}
