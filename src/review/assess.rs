//! What a reviewer needs to know about one CSR, computed without I/O: the policy's checks plus the
//! checks only the cluster can answer (is each SAN an address of the requesting Node? does another
//! Node or the API server's Service own it?). `list`, `inspect`, `approve` and `review` all read
//! this one [`Assessment`], so the CHECKS column, the inspect view and the approval refusal can
//! never disagree.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde::Serialize;

use crate::policy::{
    self, CsrFacts, Decision, NodeAddress, ParsedCsr, SanMatch, SignerClass, compare_sans_with_node,
};

/// Names of the checks this module adds after the policy's own (see `docs/review.md`).
pub mod check {
    /// Every SAN is one of the requesting Node's `status.addresses`.
    pub const SANS_ON_NODE: &str = "sans-on-node";
    /// No SAN is also an address of another Node (node addresses are self-reported, so a node
    /// could copy a neighbour's IP into its own status first).
    pub const SANS_NOT_ON_OTHER_NODES: &str = "sans-not-on-other-nodes";
    /// No IP SAN is the `kubernetes` Service's ClusterIP and no DNS SAN names a Service.
    pub const NO_SERVICE_IDENTITY: &str = "no-service-identity";
    /// The signer is one tlsboot knows how to judge.
    pub const KNOWN_SIGNER: &str = "known-signer";
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Could not be evaluated (e.g. Nodes not readable): shown, never blocks.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewCheck {
    pub name: &'static str,
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ReviewCheck {
    fn new(name: &'static str, status: CheckStatus, detail: Option<String>) -> Self {
        Self {
            name,
            status,
            detail,
        }
    }
}

/// One Node address, owned (from `status.addresses`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedAddress {
    pub kind: String,
    pub address: String,
}

/// What the cluster told us about the requesting Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeLookup {
    Found(Vec<OwnedAddress>),
    NotFound,
    /// The read failed (e.g. forbidden); the reason is shown.
    Unreadable(String),
}

/// Cluster facts the checks compare against; built once per command.
#[derive(Debug, Clone)]
pub struct ClusterFacts {
    /// Every Node's addresses by name; `Err(reason)` when Nodes could not be listed, in which
    /// case [`ClusterFacts::node`] entries (single GETs) are used for the requesting node.
    pub nodes: Result<BTreeMap<String, Vec<OwnedAddress>>, String>,
    /// Nodes fetched one by one (when listing was not possible).
    pub node: BTreeMap<String, NodeLookup>,
    /// The `default/kubernetes` Service's ClusterIPs; `Err(reason)` when unreadable.
    pub api_service_ips: Result<Vec<IpAddr>, String>,
}

impl ClusterFacts {
    pub fn lookup(&self, node: &str) -> NodeLookup {
        if let Some(l) = self.node.get(node) {
            return l.clone();
        }
        match &self.nodes {
            Ok(all) => match all.get(node) {
                Some(a) => NodeLookup::Found(a.clone()),
                None => NodeLookup::NotFound,
            },
            Err(reason) => NodeLookup::Unreadable(reason.clone()),
        }
    }
}

impl Default for ClusterFacts {
    fn default() -> Self {
        ClusterFacts {
            nodes: Err("not looked up".into()),
            node: BTreeMap::new(),
            api_service_ips: Err("not looked up".into()),
        }
    }
}

/// How one SAN relates to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SanReport {
    /// `DNS:…`, `IP:…`, `email:…`, `URI:…` or an other-name description.
    pub san: String,
    /// Against the requesting Node. `NodeNotFound` also covers an unreadable Node.
    pub on_node: SanMatch,
    /// Other Nodes that report this address.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_nodes: Vec<String>,
    /// Why this SAN names something no node should hold (API server, Service, loopback…).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// Everything the review commands show and decide on for one CSR.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    pub name: String,
    pub signer_name: String,
    pub class: SignerClass,
    pub requestor: String,
    /// The node this CSR is for: the requester's node name (`system:node:<name>`), else the
    /// subject CN's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// `found`, `not-found` or `unreadable: <reason>`; absent when there is no node to look up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_status: Option<String>,
    pub sans: Vec<SanReport>,
    pub checks: Vec<ReviewCheck>,
    /// The policy's decision, always evaluated as if the CSR were still pending.
    pub decision: Decision,
}

const NODE_PREFIX: &str = "system:node:";

fn node_from_user(user: &str) -> Option<&str> {
    user.strip_prefix(NODE_PREFIX).filter(|n| !n.is_empty())
}

/// DNS SANs shaped like in-cluster Service names (`<svc>.<ns>.svc[.<domain>]`): certificates for
/// them would let a node impersonate a Service. `kubernetes.default.svc*` is the policy's own
/// check already; this catches every other Service.
fn service_dns_name(name: &str) -> bool {
    let n = policy::normalize_dns_name(name);
    let labels: Vec<&str> = n.split('.').collect();
    labels.iter().skip(2).any(|l| *l == "svc")
}

fn borrowed(addrs: &[OwnedAddress]) -> Vec<NodeAddress<'_>> {
    addrs
        .iter()
        .map(|a| NodeAddress {
            kind: &a.kind,
            address: &a.address,
        })
        .collect()
}

/// Assesses `csr` against `facts`. Pure; `now` is not needed (ages are rendered elsewhere).
pub fn assess(csr: &CertificateSigningRequest, facts: &ClusterFacts) -> Assessment {
    // Decided CSRs are ignored by `decide`; a reviewer still wants to see why it would (not) pass.
    let mut f = CsrFacts::from_csr(csr);
    f.approved = false;
    f.denied = false;
    f.issued = false;
    let decision = policy::decide(&f);
    let requestor = f.username.to_owned();
    let node_name = node_from_user(&requestor).map(str::to_owned).or_else(|| {
        decision
            .parsed
            .as_ref()
            .and_then(|p| node_from_user(p.go_common_name()).map(str::to_owned))
    });

    let mut checks: Vec<ReviewCheck> = decision
        .checks
        .iter()
        .map(|c| {
            ReviewCheck::new(
                c.name,
                if c.passed {
                    CheckStatus::Pass
                } else {
                    CheckStatus::Fail
                },
                c.detail.clone(),
            )
        })
        .collect();
    let mut sans = Vec::new();
    let mut node_status = None;

    match decision.class {
        SignerClass::Other => checks.push(ReviewCheck::new(
            check::KNOWN_SIGNER,
            CheckStatus::Fail,
            Some(format!(
                "signer {:?} is not a kubelet signer; tlsboot has no checks for it",
                f.signer_name
            )),
        )),
        SignerClass::KubeletServing => {
            if let Some(parsed) = decision.parsed.as_ref() {
                let lookup = node_name
                    .as_deref()
                    .map(|n| facts.lookup(n))
                    .unwrap_or(NodeLookup::NotFound);
                node_status = node_name.as_ref().map(|_| match &lookup {
                    NodeLookup::Found(_) => "found".to_owned(),
                    NodeLookup::NotFound => "not-found".to_owned(),
                    NodeLookup::Unreadable(r) => format!("unreadable: {r}"),
                });
                let (reports, extra) = serving_checks(parsed, node_name.as_deref(), &lookup, facts);
                sans = reports;
                checks.extend(extra);
            }
        }
        SignerClass::KubeletClient => {}
    }

    Assessment {
        name: f.name.to_owned(),
        signer_name: f.signer_name.to_owned(),
        class: decision.class,
        requestor,
        node_name,
        node_status,
        sans,
        checks,
        decision,
    }
}

fn serving_checks(
    parsed: &ParsedCsr,
    node_name: Option<&str>,
    lookup: &NodeLookup,
    facts: &ClusterFacts,
) -> (Vec<SanReport>, Vec<ReviewCheck>) {
    let own = match lookup {
        NodeLookup::Found(a) => Some(borrowed(a)),
        _ => None,
    };
    let compared = compare_sans_with_node(parsed, own.as_deref());
    let mut reports: Vec<SanReport> = compared
        .into_iter()
        .map(|(san, on_node)| SanReport {
            san,
            on_node,
            other_nodes: Vec::new(),
            flags: Vec::new(),
        })
        .collect();

    // Other nodes claiming the same addresses. compare_sans_with_node returns SANs in a fixed
    // order for a given request, so indexes line up across calls.
    if let Ok(all) = &facts.nodes {
        for (other, addrs) in all {
            if Some(other.as_str()) == node_name {
                continue;
            }
            let b = borrowed(addrs);
            for (i, (_, m)) in compare_sans_with_node(parsed, Some(&b))
                .into_iter()
                .enumerate()
            {
                if m == SanMatch::Matches
                    && let Some(r) = reports.get_mut(i)
                {
                    r.other_nodes.push(other.clone());
                }
            }
        }
    }

    let service_ips: &[IpAddr] = facts.api_service_ips.as_deref().unwrap_or(&[]);
    for r in &mut reports {
        if let Some(dns) = r.san.strip_prefix("DNS:") {
            if let Some(why) = policy::reserved_dns_name(dns) {
                r.flags.push(why.to_owned());
            } else if service_dns_name(dns) {
                r.flags.push("names an in-cluster Service".to_owned());
            }
        } else if let Some(ip) = r.san.strip_prefix("IP:").and_then(|s| s.parse().ok()) {
            let ip: IpAddr = ip;
            if let Some(why) = policy::reserved_ip(ip) {
                r.flags.push(why.to_owned());
            }
            let ip = policy::canonical_ip(ip);
            if service_ips.iter().any(|s| policy::canonical_ip(*s) == ip) {
                r.flags
                    .push("is the ClusterIP of the API server's Service default/kubernetes".into());
            }
        }
    }

    let mut checks = Vec::new();
    let node_label = node_name.unwrap_or("<none>");
    let on_node = match lookup {
        NodeLookup::Found(_) => {
            let missing: Vec<&str> = reports
                .iter()
                .filter(|r| r.on_node != SanMatch::Matches)
                .map(|r| r.san.as_str())
                .collect();
            if missing.is_empty() {
                ReviewCheck::new(check::SANS_ON_NODE, CheckStatus::Pass, None)
            } else {
                ReviewCheck::new(
                    check::SANS_ON_NODE,
                    CheckStatus::Fail,
                    Some(format!(
                        "not addresses of Node {node_label}: {}",
                        missing.join(", ")
                    )),
                )
            }
        }
        NodeLookup::NotFound => ReviewCheck::new(
            check::SANS_ON_NODE,
            CheckStatus::Fail,
            Some(match node_name {
                Some(n) => format!("Node {n} not found: no addresses to compare the SANs with"),
                None => "the requester is not a node: no Node to compare the SANs with".into(),
            }),
        ),
        NodeLookup::Unreadable(why) => ReviewCheck::new(
            check::SANS_ON_NODE,
            CheckStatus::Fail,
            Some(format!("could not read Node {node_label}: {why}")),
        ),
    };
    checks.push(on_node);

    checks.push(match &facts.nodes {
        Ok(_) => {
            let claimed: Vec<String> = reports
                .iter()
                .filter(|r| !r.other_nodes.is_empty())
                .map(|r| format!("{} is an address of {}", r.san, r.other_nodes.join(", ")))
                .collect();
            if claimed.is_empty() {
                ReviewCheck::new(check::SANS_NOT_ON_OTHER_NODES, CheckStatus::Pass, None)
            } else {
                ReviewCheck::new(
                    check::SANS_NOT_ON_OTHER_NODES,
                    CheckStatus::Fail,
                    Some(claimed.join("; ")),
                )
            }
        }
        Err(why) => ReviewCheck::new(
            check::SANS_NOT_ON_OTHER_NODES,
            CheckStatus::Unknown,
            Some(format!("could not list Nodes: {why}")),
        ),
    });

    let service: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            r.flags
                .iter()
                .find(|f| f.contains("Service"))
                .map(|f| format!("{} {f}", r.san))
        })
        .collect();
    checks.push(if !service.is_empty() {
        ReviewCheck::new(
            check::NO_SERVICE_IDENTITY,
            CheckStatus::Fail,
            Some(service.join("; ")),
        )
    } else if let Err(why) = &facts.api_service_ips {
        ReviewCheck::new(
            check::NO_SERVICE_IDENTITY,
            CheckStatus::Unknown,
            Some(format!(
                "could not read Service default/kubernetes to compare IP SANs: {why}"
            )),
        )
    } else {
        ReviewCheck::new(check::NO_SERVICE_IDENTITY, CheckStatus::Pass, None)
    });

    (reports, checks)
}

impl Assessment {
    pub fn failed(&self) -> impl Iterator<Item = &ReviewCheck> {
        self.checks.iter().filter(|c| c.status == CheckStatus::Fail)
    }

    pub fn passes(&self) -> bool {
        self.failed().next().is_none()
    }

    /// The CHECKS column: `ok`, `ok (1 unknown)` or `2 failed`.
    pub fn checks_summary(&self) -> String {
        let failed = self.failed().count();
        let unknown = self
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Unknown)
            .count();
        match (failed, unknown) {
            (0, 0) => "ok".into(),
            (0, u) => format!("ok ({u} unknown)"),
            (f, _) => format!("{f} failed"),
        }
    }

    /// Failed checks as `name: detail` lines.
    pub fn failed_lines(&self) -> Vec<String> {
        self.failed()
            .map(|c| match &c.detail {
                Some(d) => format!("{}: {d}", c.name),
                None => c.name.to_owned(),
            })
            .collect()
    }

    /// Why `approve` refuses this CSR without `--force`, or `None` when every check passed.
    pub fn refusal(&self) -> Option<String> {
        let lines = self.failed_lines();
        if lines.is_empty() {
            return None;
        }
        let n = lines.len();
        Some(format!(
            "refusing to approve certificate signing request {:?}: {n} check{} failed:\n{}\n\
             (use --force to approve it anyway)",
            self.name,
            if n == 1 { "" } else { "s" },
            lines
                .iter()
                .map(|l| format!("  - {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }

    /// The SANS column: values without their `DNS:`/`IP:` prefix, comma-separated.
    pub fn sans_column(&self) -> String {
        let sans: Vec<String> = match &self.decision.parsed {
            Some(p) => p
                .dns_names
                .iter()
                .cloned()
                .chain(p.ip_addresses.iter().map(|i| i.to_string()))
                .chain(p.email_addresses.iter().cloned())
                .chain(p.uris.iter().cloned())
                .chain(p.other_names.iter().cloned())
                .collect(),
            None => Vec::new(),
        };
        if sans.is_empty() {
            "<none>".into()
        } else {
            sans.join(",")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    pub(crate) fn serving_csr(
        name: &str,
        requester: &str,
        cn_node: &str,
        sans: &[&str],
    ) -> CertificateSigningRequest {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:nodes");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("system:node:{cn_node}"));
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        CertificateSigningRequest {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec {
                request: ByteString(pem.into_bytes()),
                signer_name: "kubernetes.io/kubelet-serving".into(),
                usages: Some(vec!["digital signature".into(), "server auth".into()]),
                username: Some(requester.into()),
                groups: Some(vec!["system:nodes".into(), "system:authenticated".into()]),
                ..Default::default()
            },
            status: None,
        }
    }

    fn addrs(list: &[(&str, &str)]) -> Vec<OwnedAddress> {
        list.iter()
            .map(|(k, a)| OwnedAddress {
                kind: (*k).into(),
                address: (*a).into(),
            })
            .collect()
    }

    fn facts() -> ClusterFacts {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            "n1".to_string(),
            addrs(&[("InternalIP", "10.1.0.1"), ("Hostname", "n1")]),
        );
        nodes.insert(
            "n2".to_string(),
            addrs(&[("InternalIP", "10.1.0.2"), ("Hostname", "n2")]),
        );
        ClusterFacts {
            nodes: Ok(nodes),
            node: BTreeMap::new(),
            api_service_ips: Ok(vec!["10.0.0.1".parse().unwrap()]),
        }
    }

    fn status_of(a: &Assessment, name: &str) -> CheckStatus {
        a.checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name} in {:?}", a.checks))
            .status
    }

    #[test]
    fn valid_serving_csr_passes_everything() {
        let csr = serving_csr("csr-1", "system:node:n1", "n1", &["n1", "10.1.0.1"]);
        let a = assess(&csr, &facts());
        assert!(a.passes(), "{:?}", a.failed_lines());
        assert_eq!(a.checks_summary(), "ok");
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        assert_eq!(a.node_status.as_deref(), Some("found"));
        assert_eq!(a.sans_column(), "n1,10.1.0.1");
        assert!(a.sans.iter().all(|s| s.on_node == SanMatch::Matches));
        assert_eq!(a.refusal(), None);
        // The policy's checks are all there, followed by ours.
        assert!(
            a.checks
                .iter()
                .any(|c| c.name == "common-name-is-requester")
        );
        assert_eq!(status_of(&a, check::SANS_ON_NODE), CheckStatus::Pass);
    }

    #[test]
    fn other_nodes_ip_fails_two_checks_and_is_refused() {
        let csr = serving_csr("csr-2", "system:node:n1", "n1", &["n1", "10.1.0.2"]);
        let a = assess(&csr, &facts());
        assert_eq!(status_of(&a, check::SANS_ON_NODE), CheckStatus::Fail);
        assert_eq!(
            status_of(&a, check::SANS_NOT_ON_OTHER_NODES),
            CheckStatus::Fail
        );
        assert_eq!(a.checks_summary(), "2 failed");
        let ip = a.sans.iter().find(|s| s.san == "IP:10.1.0.2").unwrap();
        assert_eq!(ip.on_node, SanMatch::NotOnNode);
        assert_eq!(ip.other_nodes, vec!["n2".to_string()]);
        let refusal = a.refusal().unwrap();
        assert!(refusal.contains("2 checks failed"), "{refusal}");
        assert!(refusal.contains("sans-on-node: not addresses of Node n1: IP:10.1.0.2"));
        assert!(refusal.contains("--force"));
    }

    #[test]
    fn a_node_copying_a_neighbours_ip_into_its_status_is_still_caught() {
        let mut f = facts();
        if let Ok(nodes) = &mut f.nodes {
            nodes
                .get_mut("n1")
                .unwrap()
                .extend(addrs(&[("InternalIP", "10.1.0.2")]));
        }
        let csr = serving_csr("csr-3", "system:node:n1", "n1", &["10.1.0.2"]);
        let a = assess(&csr, &f);
        assert_eq!(status_of(&a, check::SANS_ON_NODE), CheckStatus::Pass);
        assert_eq!(
            status_of(&a, check::SANS_NOT_ON_OTHER_NODES),
            CheckStatus::Fail
        );
        assert!(!a.passes());
    }

    #[test]
    fn api_server_names_and_service_ip_are_flagged() {
        let csr = serving_csr(
            "csr-4",
            "system:node:n1",
            "n1",
            &[
                "n1",
                "kubernetes.default.svc",
                "web.prod.svc.cluster.local",
                "10.0.0.1",
            ],
        );
        let a = assess(&csr, &facts());
        assert_eq!(status_of(&a, "no-api-server-identity"), CheckStatus::Fail);
        assert_eq!(status_of(&a, check::NO_SERVICE_IDENTITY), CheckStatus::Fail);
        let flagged: Vec<&str> = a
            .sans
            .iter()
            .filter(|s| !s.flags.is_empty())
            .map(|s| s.san.as_str())
            .collect();
        assert_eq!(
            flagged,
            vec![
                "DNS:kubernetes.default.svc",
                "DNS:web.prod.svc.cluster.local",
                "IP:10.0.0.1"
            ]
        );
    }

    #[test]
    fn requester_other_than_cn_fails_policy_check() {
        let csr = serving_csr("csr-5", "system:node:n1", "n2", &["n2", "10.1.0.2"]);
        let a = assess(&csr, &facts());
        assert_eq!(status_of(&a, "common-name-is-requester"), CheckStatus::Fail);
        // Compared against the requester's Node, not the one the CN claims.
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        assert_eq!(status_of(&a, check::SANS_ON_NODE), CheckStatus::Fail);
    }

    #[test]
    fn missing_or_unreadable_node_fails_and_unknowns_do_not() {
        let csr = serving_csr("csr-6", "system:node:n9", "n9", &["n9", "10.1.0.9"]);
        let a = assess(&csr, &facts());
        assert_eq!(a.node_status.as_deref(), Some("not-found"));
        assert!(a.sans.iter().all(|s| s.on_node == SanMatch::NodeNotFound));
        assert_eq!(status_of(&a, check::SANS_ON_NODE), CheckStatus::Fail);

        let mut f = ClusterFacts::default();
        f.node.insert(
            "n9".into(),
            NodeLookup::Unreadable("forbidden: cannot get nodes".into()),
        );
        let a = assess(&csr, &f);
        assert_eq!(
            a.node_status.as_deref(),
            Some("unreadable: forbidden: cannot get nodes")
        );
        assert_eq!(status_of(&a, check::SANS_ON_NODE), CheckStatus::Fail);
        assert_eq!(
            status_of(&a, check::SANS_NOT_ON_OTHER_NODES),
            CheckStatus::Unknown
        );
        assert_eq!(
            status_of(&a, check::NO_SERVICE_IDENTITY),
            CheckStatus::Unknown
        );
        assert_eq!(a.checks_summary(), "1 failed");

        // Found by a single GET while listing failed: unknowns only.
        f.node.insert(
            "n9".into(),
            NodeLookup::Found(addrs(&[("InternalIP", "10.1.0.9"), ("Hostname", "n9")])),
        );
        let a = assess(&csr, &f);
        assert_eq!(a.checks_summary(), "ok (2 unknown)");
        assert!(a.passes());
    }

    #[test]
    fn decided_csrs_are_still_assessed() {
        use k8s_openapi::api::certificates::v1::{
            CertificateSigningRequestCondition, CertificateSigningRequestStatus,
        };
        let mut csr = serving_csr("csr-7", "system:node:n1", "n1", &["n1", "10.1.0.1"]);
        csr.status = Some(CertificateSigningRequestStatus {
            conditions: Some(vec![CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            certificate: None,
        });
        let a = assess(&csr, &facts());
        assert!(!a.checks.is_empty());
        assert!(a.passes());
    }

    #[test]
    fn unknown_signer_is_refused() {
        let mut csr = serving_csr("csr-8", "alice", "n1", &["n1"]);
        csr.spec.signer_name = "example.com/custom".into();
        let a = assess(&csr, &facts());
        assert_eq!(a.class, SignerClass::Other);
        assert_eq!(status_of(&a, check::KNOWN_SIGNER), CheckStatus::Fail);
        assert!(a.refusal().is_some());
    }

    #[test]
    fn service_dns_names() {
        for n in ["a.b.svc", "a.b.svc.cluster.local", "A.B.SVC."] {
            assert!(service_dns_name(n), "{n}");
        }
        for n in ["svc", "svc.example.com", "a.svc", "node-1.example.com"] {
            assert!(!service_dns_name(n), "{n}");
        }
    }
}
