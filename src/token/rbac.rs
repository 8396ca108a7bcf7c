//! The three ClusterRoleBindings TLS bootstrapping needs, and nothing broader:
//!
//! | binding | ClusterRole | Group |
//! |---|---|---|
//! | `tlsboot:node-bootstrapper` | `system:node-bootstrapper` | bootstrap group (`system:bootstrappers`) |
//! | `tlsboot:node-autoapprove-bootstrap` | `…:certificatesigningrequests:nodeclient` | bootstrap group |
//! | `tlsboot:node-autoapprove-certificate-rotation` | `…:certificatesigningrequests:selfnodeclient` | `system:nodes` |
//!
//! kubeadm's (`kubeadm:kubelet-bootstrap`, …) and the docs' bindings are recognised as
//! equivalent by `doctor`: what counts is roleRef + subject, not the name.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use super::bootstrap::{DEFAULT_GROUP, GROUP_PATTERN, is_valid_group};
use super::error::TokenError;

pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
pub const BOOTSTRAPPER_ROLE: &str = "system:node-bootstrapper";
pub const NODECLIENT_ROLE: &str =
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient";
pub const SELFNODECLIENT_ROLE: &str =
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient";
pub const NODES_GROUP: &str = "system:nodes";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "tlsboot";

/// One of the three bindings, as a role and who should hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Bootstrap tokens may create CSRs.
    Bootstrapper,
    /// Bootstrap tokens' client CSRs may be auto-approved.
    NodeClient,
    /// Nodes' renewal CSRs may be auto-approved.
    SelfNodeClient,
}

impl Need {
    pub const ALL: [Need; 3] = [Need::Bootstrapper, Need::NodeClient, Need::SelfNodeClient];

    pub fn role(self) -> &'static str {
        match self {
            Need::Bootstrapper => BOOTSTRAPPER_ROLE,
            Need::NodeClient => NODECLIENT_ROLE,
            Need::SelfNodeClient => SELFNODECLIENT_ROLE,
        }
    }

    /// tlsboot's binding name.
    pub fn binding_name(self) -> &'static str {
        match self {
            Need::Bootstrapper => "tlsboot:node-bootstrapper",
            Need::NodeClient => "tlsboot:node-autoapprove-bootstrap",
            Need::SelfNodeClient => "tlsboot:node-autoapprove-certificate-rotation",
        }
    }

    /// Short id used by `doctor`.
    pub fn check_name(self) -> &'static str {
        match self {
            Need::Bootstrapper => "rbac/node-bootstrapper",
            Need::NodeClient => "rbac/nodeclient",
            Need::SelfNodeClient => "rbac/selfnodeclient",
        }
    }

    /// What breaks without it (doctor's message).
    pub fn consequence(self) -> &'static str {
        match self {
            Need::Bootstrapper => {
                "kubelets holding a bootstrap token get Forbidden when they create their CSR"
            }
            Need::NodeClient => {
                "new nodes' client CSRs fail the approver's SubjectAccessReview and stay Pending"
            }
            Need::SelfNodeClient => {
                "nodes' client-certificate renewals are not auto-approved: certificates expire and nodes go NotReady"
            }
        }
    }

    /// Whether a Group subject satisfies this need.
    pub fn accepts_group(self, group: &str) -> bool {
        match self {
            Need::Bootstrapper | Need::NodeClient => is_bootstrap_group(group),
            Need::SelfNodeClient => group == NODES_GROUP,
        }
    }
}

/// `system:bootstrappers` itself or one of its token extra groups.
pub fn is_bootstrap_group(group: &str) -> bool {
    group == DEFAULT_GROUP || is_valid_group(group)
}

/// Validates `--group`: only the bootstrap group or a narrower token group.
pub fn check_group(group: &str) -> Result<(), TokenError> {
    if is_bootstrap_group(group) {
        return Ok(());
    }
    Err(TokenError::Invalid(format!(
        "--group {group:?} is not a bootstrap token group: use {DEFAULT_GROUP} or a group matching {GROUP_PATTERN}"
    )))
}

fn group_for(need: Need, bootstrap_group: &str) -> String {
    match need {
        Need::SelfNodeClient => NODES_GROUP.to_string(),
        Need::Bootstrapper | Need::NodeClient => bootstrap_group.to_string(),
    }
}

/// The binding for `need`, bound to `bootstrap_group` where that applies.
pub fn binding(need: Need, bootstrap_group: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(need.binding_name().to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY_LABEL.to_string(),
                MANAGED_BY.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: RBAC_GROUP.to_string(),
            kind: "ClusterRole".to_string(),
            name: need.role().to_string(),
        },
        subjects: Some(vec![Subject {
            api_group: Some(RBAC_GROUP.to_string()),
            kind: "Group".to_string(),
            name: group_for(need, bootstrap_group),
            namespace: None,
        }]),
    }
}

/// All three bindings, each checked by [`check_safe`].
pub fn bindings(bootstrap_group: &str) -> Result<Vec<ClusterRoleBinding>, TokenError> {
    check_group(bootstrap_group)?;
    let all: Vec<ClusterRoleBinding> = Need::ALL
        .iter()
        .map(|n| binding(*n, bootstrap_group))
        .collect();
    for b in &all {
        check_safe(b).map_err(|reason| TokenError::UnsafeBinding {
            name: b.metadata.name.clone().unwrap_or_default(),
            reason,
        })?;
    }
    Ok(all)
}

/// The last line of defence: a binding tlsboot writes grants exactly one of the three
/// CSR roles to exactly one bootstrap-token or node group. Anything else (cluster-admin,
/// system:masters, users, service accounts, all authenticated users) is refused.
pub fn check_safe(b: &ClusterRoleBinding) -> Result<(), String> {
    let r = &b.role_ref;
    if r.name == "cluster-admin" || r.name == "admin" || r.name == "edit" {
        return Err(format!("it would grant {:?}", r.name));
    }
    if r.api_group != RBAC_GROUP || r.kind != "ClusterRole" {
        return Err(format!(
            "roleRef must be a {RBAC_GROUP} ClusterRole, not {} {}",
            r.api_group, r.kind
        ));
    }
    let Some(need) = Need::ALL.into_iter().find(|n| n.role() == r.name) else {
        return Err(format!(
            "roleRef {:?} is not one of the TLS bootstrap roles",
            r.name
        ));
    };
    let subjects = b.subjects.as_deref().unwrap_or_default();
    let [subject] = subjects else {
        return Err(format!(
            "it must have exactly one subject, has {}",
            subjects.len()
        ));
    };
    if subject.kind != "Group" || subject.api_group.as_deref() != Some(RBAC_GROUP) {
        return Err(format!(
            "its subject must be an {RBAC_GROUP} Group, not {}",
            subject.kind
        ));
    }
    if subject.name == "system:masters" {
        return Err("it would bind system:masters".into());
    }
    if !need.accepts_group(&subject.name) {
        return Err(format!(
            "{} may only be bound to {}, not {:?}",
            need.role(),
            match need {
                Need::SelfNodeClient => NODES_GROUP.to_string(),
                _ => format!("{DEFAULT_GROUP} or a bootstrap token group"),
            },
            subject.name
        ));
    }
    Ok(())
}

/// Multi-document YAML of the bindings.
pub fn to_yaml(bindings: &[ClusterRoleBinding]) -> Result<String, TokenError> {
    let mut out = String::new();
    for (i, b) in bindings.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml_ng::to_string(b).map_err(|e| TokenError::Encode(e.to_string()))?);
    }
    Ok(out)
}

/// What `apply` did to one binding (kubectl's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Configured,
    Unchanged,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        })
    }
}

/// What to do with `want` given what exists (pure half of [`apply`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Create,
    Unchanged,
    /// Replace with this object (subjects/labels brought in line, the rest kept).
    Update(Box<ClusterRoleBinding>),
}

pub fn plan(
    want: &ClusterRoleBinding,
    existing: Option<&ClusterRoleBinding>,
) -> Result<Plan, String> {
    let Some(existing) = existing else {
        return Ok(Plan::Create);
    };
    if existing.role_ref != want.role_ref {
        return Err(format!(
            "it exists with roleRef {} {:?}, and roleRef cannot be changed: delete it (kubectl delete clusterrolebinding {}) and apply again",
            existing.role_ref.kind,
            existing.role_ref.name,
            want.metadata.name.as_deref().unwrap_or_default()
        ));
    }
    let mut labels = existing.metadata.labels.clone().unwrap_or_default();
    let want_labels = want.metadata.labels.clone().unwrap_or_default();
    let labels_ok = want_labels.iter().all(|(k, v)| labels.get(k) == Some(v));
    if labels_ok && existing.subjects == want.subjects {
        return Ok(Plan::Unchanged);
    }
    labels.extend(want_labels);
    let mut updated = existing.clone();
    updated.metadata.labels = Some(labels);
    updated.subjects = want.subjects.clone();
    Ok(Plan::Update(Box::new(updated)))
}

/// Creates or brings in line each binding; applying twice changes nothing the second
/// time (no write at all when the object already matches).
pub async fn apply(
    client: &kube::Client,
    bindings: &[ClusterRoleBinding],
) -> Result<Vec<(String, Applied)>, TokenError> {
    let api: Api<ClusterRoleBinding> = Api::all(client.clone());
    let mut out = Vec::new();
    for want in bindings {
        let name = want.metadata.name.clone().unwrap_or_default();
        check_safe(want).map_err(|reason| TokenError::UnsafeBinding {
            name: name.clone(),
            reason,
        })?;
        let existing = api
            .get_opt(&name)
            .await
            .map_err(|e| TokenError::kube(format!("reading ClusterRoleBinding {name}"), e))?;
        let plan = plan(want, existing.as_ref()).map_err(|reason| TokenError::UnsafeBinding {
            name: name.clone(),
            reason,
        })?;
        let applied = match plan {
            Plan::Unchanged => Applied::Unchanged,
            Plan::Create => {
                api.create(&PostParams::default(), want)
                    .await
                    .map_err(|e| {
                        // 409: created by someone else between our read and our write;
                        // a second apply compares against it.
                        TokenError::kube(format!("creating ClusterRoleBinding {name}"), e)
                    })?;
                Applied::Created
            }
            Plan::Update(updated) => {
                // `updated` carries the resourceVersion we read: a concurrent change
                // fails with 409 instead of being overwritten.
                api.replace(&name, &PostParams::default(), &updated)
                    .await
                    .map_err(|e| {
                        TokenError::kube(format!("updating ClusterRoleBinding {name}"), e)
                    })?;
                Applied::Configured
            }
        };
        tracing::debug!(binding = %name, result = %applied, "applied ClusterRoleBinding");
        out.push((name, applied));
    }
    Ok(out)
}

/// A binding that satisfies `need`: its name and the group it binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub binding: String,
    pub group: String,
}

/// Every binding (any name: tlsboot's, kubeadm's, the docs') whose roleRef is
/// `need`'s ClusterRole and which has a Group subject `need` accepts.
pub fn find(need: Need, all: &[ClusterRoleBinding]) -> Vec<Found> {
    let mut found = Vec::new();
    for b in all {
        let r = &b.role_ref;
        if r.kind != "ClusterRole" || r.api_group != RBAC_GROUP || r.name != need.role() {
            continue;
        }
        for s in b.subjects.iter().flatten() {
            if s.kind == "Group" && need.accepts_group(&s.name) {
                found.push(Found {
                    binding: b.metadata.name.clone().unwrap_or_default(),
                    group: s.name.clone(),
                });
            }
        }
    }
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn crb(name: &str, role: &str, kind: &str, subject: &str) -> ClusterRoleBinding {
        ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "ClusterRole".into(),
                name: role.into(),
            },
            subjects: Some(vec![Subject {
                api_group: Some(RBAC_GROUP.into()),
                kind: kind.into(),
                name: subject.into(),
                namespace: None,
            }]),
        }
    }

    #[test]
    fn default_bindings_are_the_seed() {
        let Ok(all) = bindings(DEFAULT_GROUP) else {
            panic!("default group is valid")
        };
        let got: Vec<(String, String, String)> = all
            .iter()
            .map(|b| {
                let s = b.subjects.as_deref().unwrap_or_default();
                (
                    b.metadata.name.clone().unwrap_or_default(),
                    b.role_ref.name.clone(),
                    s.first().map(|s| s.name.clone()).unwrap_or_default(),
                )
            })
            .collect();
        let want = [
            (
                "tlsboot:node-bootstrapper",
                BOOTSTRAPPER_ROLE,
                "system:bootstrappers",
            ),
            (
                "tlsboot:node-autoapprove-bootstrap",
                NODECLIENT_ROLE,
                "system:bootstrappers",
            ),
            (
                "tlsboot:node-autoapprove-certificate-rotation",
                SELFNODECLIENT_ROLE,
                "system:nodes",
            ),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(got, want);
        for b in &all {
            let s = b.subjects.as_deref().unwrap_or_default();
            assert_eq!(s.len(), 1);
            assert_eq!(s[0].kind, "Group");
            assert_eq!(b.role_ref.kind, "ClusterRole");
            assert_ne!(b.role_ref.name, "cluster-admin");
            assert_ne!(s[0].name, "system:masters");
        }
    }

    #[test]
    fn group_can_be_narrowed_but_never_broadened() {
        let Ok(narrow) = bindings("system:bootstrappers:kubeadm:default-node-token") else {
            panic!("token group is valid")
        };
        let subject = |b: &ClusterRoleBinding| {
            b.subjects
                .as_deref()
                .and_then(|s| s.first())
                .map(|s| s.name.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            subject(&narrow[0]),
            "system:bootstrappers:kubeadm:default-node-token"
        );
        assert_eq!(subject(&narrow[2]), "system:nodes");
        for broad in [
            "system:masters",
            "system:authenticated",
            "system:unauthenticated",
            "system:nodes",
            "system:serviceaccounts",
            "",
            "system:bootstrappers:",
            "developers",
        ] {
            let e = bindings(broad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("is not a bootstrap token group"), "{broad}: {e}");
        }
    }

    #[test]
    fn check_safe_refuses_anything_broader() {
        let ok = crb("x", NODECLIENT_ROLE, "Group", "system:bootstrappers");
        assert_eq!(check_safe(&ok), Ok(()));
        let cases = [
            crb("x", "cluster-admin", "Group", "system:bootstrappers"),
            crb("x", NODECLIENT_ROLE, "Group", "system:masters"),
            crb("x", BOOTSTRAPPER_ROLE, "Group", "system:authenticated"),
            crb("x", SELFNODECLIENT_ROLE, "Group", "system:bootstrappers"),
            crb("x", NODECLIENT_ROLE, "Group", "system:nodes"),
            crb("x", NODECLIENT_ROLE, "User", "system:bootstrap:abcdef"),
            crb("x", NODECLIENT_ROLE, "ServiceAccount", "default"),
            crb(
                "x",
                "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
                "Group",
                "system:bootstrappers",
            ),
        ];
        for c in &cases {
            assert!(check_safe(c).is_err(), "{c:?}");
        }
        let mut two = ok.clone();
        two.subjects = Some(vec![
            ok.subjects.as_deref().unwrap_or_default()[0].clone(),
            crb("y", NODECLIENT_ROLE, "Group", "system:masters")
                .subjects
                .unwrap_or_default()[0]
                .clone(),
        ]);
        assert!(check_safe(&two).is_err());
        let mut role_kind = ok.clone();
        role_kind.role_ref.kind = "Role".into();
        assert!(check_safe(&role_kind).is_err());
        assert!(
            check_safe(&crb("x", "cluster-admin", "Group", "system:bootstrappers"))
                .err()
                .unwrap_or_default()
                .contains("cluster-admin")
        );
    }

    #[test]
    fn yaml_is_multi_document() {
        let Ok(all) = bindings(DEFAULT_GROUP) else {
            panic!("valid")
        };
        let Ok(y) = to_yaml(&all) else { panic!("yaml") };
        assert_eq!(y.matches("\n---\n").count(), 2);
        assert!(
            y.starts_with("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n")
        );
        // Every document reads back as a ClusterRoleBinding equal to what we built.
        let back: Vec<ClusterRoleBinding> = y
            .split("---\n")
            .filter_map(|d| serde_yaml_ng::from_str(d).ok())
            .collect();
        assert_eq!(back, all);
    }

    #[test]
    fn plan_is_idempotent() {
        let want = binding(Need::Bootstrapper, DEFAULT_GROUP);
        assert_eq!(plan(&want, None), Ok(Plan::Create));
        let mut existing = want.clone();
        existing.metadata.resource_version = Some("42".into());
        existing.metadata.uid = Some("u".into());
        assert_eq!(plan(&want, Some(&existing)), Ok(Plan::Unchanged));
        // Extra labels or annotations someone added are not a difference.
        existing
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert("team".into(), "infra".into());
        assert_eq!(plan(&want, Some(&existing)), Ok(Plan::Unchanged));
        // A different subject is brought in line, keeping resourceVersion and labels.
        let narrowed = binding(Need::Bootstrapper, "system:bootstrappers:pool-a");
        let Ok(Plan::Update(updated)) = plan(&narrowed, Some(&existing)) else {
            panic!("expected an update")
        };
        assert_eq!(updated.subjects, narrowed.subjects);
        assert_eq!(updated.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(
            updated
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("team"))
                .map(String::as_str),
            Some("infra")
        );
        // roleRef is immutable: refuse instead of deleting someone's binding.
        let mut other_role = existing.clone();
        other_role.role_ref.name = "cluster-admin".into();
        assert!(plan(&want, Some(&other_role)).is_err());
    }

    #[test]
    fn find_recognises_kubeadm_and_docs_names() {
        let all = vec![
            crb(
                "kubeadm:kubelet-bootstrap",
                BOOTSTRAPPER_ROLE,
                "Group",
                "system:bootstrappers:kubeadm:default-node-token",
            ),
            crb(
                "auto-approve-csrs-for-group",
                NODECLIENT_ROLE,
                "Group",
                "system:bootstrappers",
            ),
            crb(
                "kubeadm:node-autoapprove-certificate-rotation",
                SELFNODECLIENT_ROLE,
                "Group",
                "system:nodes",
            ),
            crb("unrelated", "view", "Group", "system:bootstrappers"),
            crb(
                "wrong-subject",
                NODECLIENT_ROLE,
                "Group",
                "system:authenticated",
            ),
        ];
        assert_eq!(
            find(Need::Bootstrapper, &all),
            vec![Found {
                binding: "kubeadm:kubelet-bootstrap".into(),
                group: "system:bootstrappers:kubeadm:default-node-token".into()
            }]
        );
        assert_eq!(find(Need::NodeClient, &all).len(), 1);
        assert_eq!(find(Need::SelfNodeClient, &all).len(), 1);
        assert!(find(Need::NodeClient, &all[3..]).is_empty());
    }
}
