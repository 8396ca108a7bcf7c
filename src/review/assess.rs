//! What a reviewer needs to know about one CSR, computed without I/O: the policy's checks plus the
//! checks only the cluster can answer (is each SAN an address of the requesting Node? does another
//! Node or the API server's Service own it?). `list`, `inspect`, `approve` and `review` all read
//! this one [`Assessment`], so the CHECKS column, the inspect view and the approval refusal can
//! never disagree.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde::Serialize;

use crate::policy::{
    self, CsrFacts, Decision, NodeAddress, ParsedCsr, SanMatch, SarSubresource, SignerClass,
    compare_sans_with_node,
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
    /// Kubelet client CSRs: the requester is the node renewing its own certificate
    /// (`system:node:<CN's name>` in group `system:nodes`) or a bootstrap token (group
    /// `system:bootstrappers`), the two identities csrapproving's recognizers are meant for.
    pub const REQUESTER: &str = "requester";
    /// Kubelet client CSRs: the SubjectAccessReviews the daemon would send allow the requester.
    pub const REQUESTER_AUTHORIZED: &str = "requester-authorized";
}

/// What a reviewer needs for a check that came out unknown, to be able to evaluate it.
pub fn unknown_remedy(check: &str) -> &'static str {
    match check {
        check::SANS_NOT_ON_OTHER_NODES => "`list` on `nodes`",
        check::NO_SERVICE_IDENTITY => {
            "`get` on `services` named \"kubernetes\" in namespace \"default\""
        }
        check::REQUESTER_AUTHORIZED => {
            "`create` on `subjectaccessreviews` (API group authorization.k8s.io)"
        }
        _ => "what the detail above names",
    }
}

const GROUP_NODES: &str = "system:nodes";
const GROUP_BOOTSTRAPPERS: &str = "system:bootstrappers";

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Could not be evaluated (e.g. Nodes not readable, a SubjectAccessReview refused to the
    /// reviewer). Blocks approval exactly as [`CheckStatus::Fail`] does, unless `--force`: a
    /// check nobody could run has not passed.
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

/// One SubjectAccessReview as the daemon would send it: the requester's identity exactly as
/// the CSR records it, and the subresource. Its answer depends on nothing else, so CSRs of one
/// requester share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SarQuestion {
    pub subresource: SarSubresource,
    user: Option<String>,
    uid: Option<String>,
    groups: Option<Vec<String>>,
    extra: Option<BTreeMap<String, Vec<String>>>,
}

impl SarQuestion {
    pub fn of(csr: &CertificateSigningRequest, subresource: SarSubresource) -> Self {
        SarQuestion {
            subresource,
            user: csr.spec.username.clone(),
            uid: csr.spec.uid.clone(),
            groups: csr.spec.groups.clone(),
            extra: csr.spec.extra.clone(),
        }
    }
}

/// What the API server said to one [`SarQuestion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SarAnswer {
    Allowed,
    /// `status.allowed` false; the authorizer's reason (and evaluation error), if any.
    Denied(String),
    /// The review could not be asked or answered (403 to the reviewer, API error, no status).
    Unasked(String),
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
    /// Answers to the SubjectAccessReviews of kubelet client CSRs. A question missing here
    /// was not asked: its check is unknown.
    pub sars: HashMap<SarQuestion, SarAnswer>,
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
            sars: HashMap::new(),
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
        SignerClass::KubeletClient => {
            if let Some(parsed) = decision.parsed.as_ref() {
                checks.push(requester_check(&f, parsed));
                checks.push(authorized_check(csr, &f, parsed, facts));
            }
        }
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

/// The SubjectAccessReviews worth asking for a kubelet client CSR, in the daemon's order: the
/// ones its decision lists, or, when the content already fails, the ones the recognizers would
/// pick (so a reviewer still sees who may ask).
pub fn sar_subresources(csr: &CertificateSigningRequest) -> Vec<SarSubresource> {
    if SignerClass::of(&csr.spec.signer_name) != SignerClass::KubeletClient {
        return Vec::new();
    }
    let f = CsrFacts::from_csr(csr);
    match policy::parse_csr(f.request) {
        Ok(parsed) => policy::recognized_subresources(f.username, &parsed),
        Err(_) => Vec::new(),
    }
}

/// Who may ask for a kubelet client certificate: the node itself renewing (csrapproving's
/// `selfnodeclient` recognizer) or a bootstrap token (`nodeclient`). The daemon leaves this to
/// RBAC; a person approving by hand gets it checked, since RBAC bindings granting `nodeclient`
/// to others are exactly what a reviewer should look at twice.
fn requester_check(f: &CsrFacts<'_>, parsed: &ParsedCsr) -> ReviewCheck {
    let user = f.username;
    let cn = parsed.go_common_name();
    let in_group = |g: &str| f.groups.iter().any(|x| x == g);
    if in_group(GROUP_BOOTSTRAPPERS) {
        return ReviewCheck::new(
            check::REQUESTER,
            CheckStatus::Pass,
            Some(format!(
                "bootstrap: {user:?} is in group {GROUP_BOOTSTRAPPERS:?}"
            )),
        );
    }
    let is_node = node_from_user(user).is_some();
    if is_node && user == cn && in_group(GROUP_NODES) {
        return ReviewCheck::new(
            check::REQUESTER,
            CheckStatus::Pass,
            Some(format!(
                "renewal: node {user:?} (group {GROUP_NODES:?}) asks for its own name"
            )),
        );
    }
    let why = if is_node && user != cn {
        format!(
            "node {user:?} asks for a certificate for {cn:?}: a node may only renew its own \
             (only a bootstrap token, group {GROUP_BOOTSTRAPPERS:?}, may ask for a new node)"
        )
    } else if is_node {
        format!("node {user:?} is not in group {GROUP_NODES:?}")
    } else {
        format!(
            "requester {user:?} is neither the node itself ({cn:?} in group {GROUP_NODES:?}) nor \
             a bootstrap token (group {GROUP_BOOTSTRAPPERS:?})"
        )
    };
    ReviewCheck::new(check::REQUESTER, CheckStatus::Fail, Some(why))
}

/// The daemon's SubjectAccessReviews, as answered to the reviewer: tried in the daemon's order,
/// the first allowed passes; an answer that could not be had stops there (the daemon would
/// retry, not move on) and is unknown; all denied fails.
fn authorized_check(
    csr: &CertificateSigningRequest,
    f: &CsrFacts<'_>,
    parsed: &ParsedCsr,
    facts: &ClusterFacts,
) -> ReviewCheck {
    let permission =
        |s: SarSubresource| format!("create certificatesigningrequests/{}", s.as_str());
    let mut denied = Vec::new();
    for sub in policy::recognized_subresources(f.username, parsed) {
        match facts.sars.get(&SarQuestion::of(csr, sub)) {
            Some(SarAnswer::Allowed) => {
                return ReviewCheck::new(
                    check::REQUESTER_AUTHORIZED,
                    CheckStatus::Pass,
                    Some(format!(
                        "SubjectAccessReview allows {:?} to {}",
                        f.username,
                        permission(sub)
                    )),
                );
            }
            Some(SarAnswer::Denied(reason)) => denied.push(if reason.is_empty() {
                permission(sub)
            } else {
                format!("{} ({reason})", permission(sub))
            }),
            Some(SarAnswer::Unasked(why)) => {
                return ReviewCheck::new(
                    check::REQUESTER_AUTHORIZED,
                    CheckStatus::Unknown,
                    Some(format!(
                        "could not ask whether {:?} may {}: {why}",
                        f.username,
                        permission(sub)
                    )),
                );
            }
            None => {
                return ReviewCheck::new(
                    check::REQUESTER_AUTHORIZED,
                    CheckStatus::Unknown,
                    Some(format!(
                        "SubjectAccessReview for {:?} to {} was not asked",
                        f.username,
                        permission(sub)
                    )),
                );
            }
        }
    }
    ReviewCheck::new(
        check::REQUESTER_AUTHORIZED,
        CheckStatus::Fail,
        Some(format!(
            "SubjectAccessReview denies {:?} (groups {:?}): {}; the daemon would not approve it",
            f.username,
            f.groups,
            denied.join(", ")
        )),
    )
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
    } else if let Err(why) = &facts.api_service_ips
        && !parsed.ip_addresses.is_empty()
    {
        // Only IP SANs are compared with the Service: without one there is nothing unknown.
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

    /// Checks that could not be evaluated; they block approval like failed ones.
    pub fn unknown(&self) -> impl Iterator<Item = &ReviewCheck> {
        self.checks
            .iter()
            .filter(|c| c.status == CheckStatus::Unknown)
    }

    /// Every check passed: nothing failed and nothing is unknown. Only then may a CSR be
    /// approved without `--force`.
    pub fn passes(&self) -> bool {
        self.checks.iter().all(|c| c.status == CheckStatus::Pass)
    }

    /// The CHECKS column: `ok`, `2 failed`, `1 unknown` or `2 failed, 1 unknown`.
    pub fn checks_summary(&self) -> String {
        let failed = self.failed().count();
        let unknown = self.unknown().count();
        match (failed, unknown) {
            (0, 0) => "ok".into(),
            (0, u) => format!("{u} unknown"),
            (f, 0) => format!("{f} failed"),
            (f, u) => format!("{f} failed, {u} unknown"),
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

    /// Unknown checks as `name (unknown): detail` lines.
    pub fn unknown_lines(&self) -> Vec<String> {
        self.unknown()
            .map(|c| match &c.detail {
                Some(d) => format!("{} (unknown): {d}", c.name),
                None => format!("{} (unknown)", c.name),
            })
            .collect()
    }

    /// Everything that keeps this CSR from approval: failed lines, then unknown ones.
    pub fn blocking_lines(&self) -> Vec<String> {
        let mut lines = self.failed_lines();
        lines.extend(self.unknown_lines());
        lines
    }

    /// Why `approve` refuses this CSR without `--force`, or `None` when every check passed.
    pub fn refusal(&self) -> Option<String> {
        if self.passes() {
            return None;
        }
        let failed = self.failed().count();
        let unknown: Vec<&ReviewCheck> = self.unknown().collect();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let counted = match (failed, unknown.len()) {
            (f, 0) => format!("{f} check{} failed", plural(f)),
            (0, u) => format!("{u} check{} could not be evaluated", plural(u)),
            (f, u) => format!(
                "{f} check{} failed and {u} could not be evaluated",
                plural(f)
            ),
        };
        let mut text = format!(
            "refusing to approve certificate signing request {:?}: {counted}:",
            self.name
        );
        for l in self.blocking_lines() {
            text.push_str("\n  - ");
            text.push_str(&l);
        }
        if !unknown.is_empty() {
            text.push_str(
                "\na check that could not be evaluated blocks approval like a failed one; \
                 to evaluate it you need (or, if the API server failed, retry):",
            );
            for c in &unknown {
                text.push_str(&format!("\n  - {}: {}", c.name, unknown_remedy(c.name)));
            }
        }
        text.push_str("\n(use --force to approve it anyway)");
        Some(text)
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

    /// What the cluster said: these Nodes with their `(kind, address)` pairs, no Service IPs.
    pub(crate) fn node_facts(nodes: &[(&str, &[(&str, &str)])]) -> ClusterFacts {
        ClusterFacts {
            nodes: Ok(nodes
                .iter()
                .map(|(name, list)| ((*name).to_owned(), addrs(list)))
                .collect()),
            api_service_ips: Ok(vec![]),
            ..ClusterFacts::default()
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
            sars: HashMap::new(),
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
    fn missing_or_unreadable_node_fails_and_unknowns_block() {
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
        assert_eq!(a.checks_summary(), "1 failed, 2 unknown");

        // Found by a single GET while listing failed: unknowns only, and they still block.
        f.node.insert(
            "n9".into(),
            NodeLookup::Found(addrs(&[("InternalIP", "10.1.0.9"), ("Hostname", "n9")])),
        );
        let a = assess(&csr, &f);
        assert_eq!(a.checks_summary(), "2 unknown");
        assert_eq!(a.failed().count(), 0);
        assert!(!a.passes());
        let refusal = a.refusal().unwrap();
        assert!(
            refusal.contains(
                "refusing to approve certificate signing request \"csr-6\": 2 checks could not be evaluated:"
            ),
            "{refusal}"
        );
        assert!(
            refusal.contains(
                "  - sans-not-on-other-nodes (unknown): could not list Nodes: not looked up"
            ),
            "{refusal}"
        );
        assert!(
            refusal.contains("  - no-service-identity: `get` on `services` named \"kubernetes\""),
            "{refusal}"
        );
        assert!(
            refusal.ends_with("(use --force to approve it anyway)"),
            "{refusal}"
        );
    }

    #[test]
    fn service_check_is_unknown_only_for_ip_sans() {
        let mut f = facts();
        f.api_service_ips = Err("services \"kubernetes\" is forbidden".into());
        let dns_only = serving_csr("csr-d", "system:node:n1", "n1", &["n1"]);
        let a = assess(&dns_only, &f);
        assert_eq!(status_of(&a, check::NO_SERVICE_IDENTITY), CheckStatus::Pass);
        assert!(a.passes(), "{:?}", a.blocking_lines());
        let with_ip = serving_csr("csr-i", "system:node:n1", "n1", &["n1", "10.1.0.1"]);
        let a = assess(&with_ip, &f);
        assert_eq!(
            status_of(&a, check::NO_SERVICE_IDENTITY),
            CheckStatus::Unknown
        );
        assert_eq!(a.checks_summary(), "1 unknown");
        assert_eq!(
            a.blocking_lines(),
            vec![
                "no-service-identity (unknown): could not read Service default/kubernetes to \
                 compare IP SANs: services \"kubernetes\" is forbidden"
                    .to_string()
            ]
        );
    }

    pub(crate) fn client_csr(
        name: &str,
        requester: &str,
        groups: &[&str],
        cn_node: &str,
    ) -> CertificateSigningRequest {
        let mut csr = serving_csr(name, requester, cn_node, &[]);
        csr.spec.signer_name = policy::SIGNER_KUBELET_CLIENT.into();
        csr.spec.usages = Some(vec!["digital signature".into(), "client auth".into()]);
        csr.spec.groups = Some(groups.iter().map(|g| g.to_string()).collect());
        csr
    }

    fn allow_all(csr: &CertificateSigningRequest) -> ClusterFacts {
        let mut f = facts();
        for sub in sar_subresources(csr) {
            f.sars.insert(SarQuestion::of(csr, sub), SarAnswer::Allowed);
        }
        f
    }

    fn detail_of(a: &Assessment, name: &str) -> String {
        a.checks
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.detail.clone())
            .unwrap_or_default()
    }

    #[test]
    fn client_requesters_the_recognizers_are_for_pass() {
        let boot = client_csr(
            "node-csr-1",
            "system:bootstrap:abcdef",
            &["system:bootstrappers", "system:authenticated"],
            "n1",
        );
        let renew = client_csr(
            "csr-r",
            "system:node:n1",
            &["system:nodes", "system:authenticated"],
            "n1",
        );
        for csr in [&boot, &renew] {
            let a = assess(csr, &allow_all(csr));
            assert_eq!(status_of(&a, check::REQUESTER), CheckStatus::Pass);
            assert_eq!(
                status_of(&a, check::REQUESTER_AUTHORIZED),
                CheckStatus::Pass
            );
            assert!(a.passes(), "{:?}", a.blocking_lines());
            assert_eq!(a.checks_summary(), "ok");
        }
        // The daemon's order: the node renewing itself is asked selfnodeclient first.
        assert_eq!(
            sar_subresources(&renew),
            vec![SarSubresource::SelfNodeClient, SarSubresource::NodeClient]
        );
        assert_eq!(sar_subresources(&boot), vec![SarSubresource::NodeClient]);
        let a = assess(&renew, &allow_all(&renew));
        assert!(
            detail_of(&a, check::REQUESTER_AUTHORIZED)
                .ends_with("to create certificatesigningrequests/selfnodeclient"),
            "{a:?}"
        );
    }

    #[test]
    fn other_client_requesters_fail_the_requester_check() {
        let cases = [
            (
                "system:serviceaccount:ns:sa",
                vec!["system:serviceaccounts", "system:authenticated"],
                "n1",
                "requester \"system:serviceaccount:ns:sa\" is neither the node itself",
            ),
            (
                "system:node:n1",
                vec!["system:nodes", "system:authenticated"],
                "n2",
                "node \"system:node:n1\" asks for a certificate for \"system:node:n2\"",
            ),
            (
                "system:node:n1",
                vec!["system:authenticated"],
                "n1",
                "node \"system:node:n1\" is not in group \"system:nodes\"",
            ),
            (
                "alice",
                vec!["system:nodes", "system:authenticated"],
                "n1",
                "requester \"alice\" is neither",
            ),
        ];
        for (user, groups, cn, why) in cases {
            let csr = client_csr("c", user, &groups, cn);
            // Even a SubjectAccessReview that allows (a binding granting nodeclient to them)
            // does not make these requesters right.
            let a = assess(&csr, &allow_all(&csr));
            assert_eq!(status_of(&a, check::REQUESTER), CheckStatus::Fail, "{user}");
            assert!(detail_of(&a, check::REQUESTER).contains(why), "{a:?}");
            assert_eq!(a.checks_summary(), "1 failed");
            assert!(a.refusal().unwrap().contains("  - requester: "));
        }
    }

    #[test]
    fn sar_answers_decide_requester_authorized_in_the_daemons_order() {
        let csr = client_csr(
            "csr-r",
            "system:node:n1",
            &["system:nodes", "system:authenticated"],
            "n1",
        );
        let selfq = SarQuestion::of(&csr, SarSubresource::SelfNodeClient);
        let nodeq = SarQuestion::of(&csr, SarSubresource::NodeClient);

        // Not asked at all: unknown, never a pass.
        let a = assess(&csr, &facts());
        assert_eq!(
            status_of(&a, check::REQUESTER_AUTHORIZED),
            CheckStatus::Unknown
        );
        assert!(!a.passes());

        // selfnodeclient denied, nodeclient allowed: pass (the daemon tries both).
        let mut f = facts();
        f.sars
            .insert(selfq.clone(), SarAnswer::Denied("no binding".into()));
        f.sars.insert(nodeq.clone(), SarAnswer::Allowed);
        let a = assess(&csr, &f);
        assert_eq!(
            status_of(&a, check::REQUESTER_AUTHORIZED),
            CheckStatus::Pass
        );

        // Both denied: fail, naming both permissions.
        f.sars
            .insert(nodeq.clone(), SarAnswer::Denied(String::new()));
        let a = assess(&csr, &f);
        assert_eq!(
            status_of(&a, check::REQUESTER_AUTHORIZED),
            CheckStatus::Fail
        );
        let d = detail_of(&a, check::REQUESTER_AUTHORIZED);
        assert!(
            d.contains(
                "create certificatesigningrequests/selfnodeclient (no binding), create certificatesigningrequests/nodeclient"
            ),
            "{d}"
        );

        // The first review could not be asked: unknown, even though the second would allow
        // (the daemon stops and retries there too).
        f.sars.insert(
            selfq,
            SarAnswer::Unasked("subjectaccessreviews is forbidden (Forbidden, 403)".into()),
        );
        f.sars.insert(nodeq, SarAnswer::Allowed);
        let a = assess(&csr, &f);
        assert_eq!(
            status_of(&a, check::REQUESTER_AUTHORIZED),
            CheckStatus::Unknown
        );
        assert_eq!(a.checks_summary(), "1 unknown");
        let refusal = a.refusal().unwrap();
        assert!(
            refusal.contains("  - requester-authorized (unknown): could not ask whether \"system:node:n1\" may create certificatesigningrequests/selfnodeclient: subjectaccessreviews is forbidden"),
            "{refusal}"
        );
        assert!(
            refusal.contains(
                "  - requester-authorized: `create` on `subjectaccessreviews` (API group authorization.k8s.io)"
            ),
            "{refusal}"
        );
    }

    #[test]
    fn serving_csrs_get_no_requester_authorized_check() {
        let csr = serving_csr("csr-s", "system:node:n1", "n1", &["n1", "10.1.0.1"]);
        assert!(sar_subresources(&csr).is_empty());
        let a = assess(&csr, &facts());
        assert!(
            a.checks
                .iter()
                .all(|c| c.name != check::REQUESTER_AUTHORIZED)
        );
        assert!(a.passes());
    }

    #[test]
    fn decided_csrs_are_still_assessed() {
        let mut csr = serving_csr("csr-7", "system:node:n1", "n1", &["n1", "10.1.0.1"]);
        csr.status = Some(policy::test_status(&[("Approved", "True")], None));
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
