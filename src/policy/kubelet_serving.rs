//! `kubernetes.io/kubelet-serving`: never auto-approved (upstream neither — the SANs are
//! self-reported). These checks exist for the person deciding: upstream
//! `ValidateKubeletServingCSR` (which the signer enforces anyway), the requester rules from the
//! kubelet TLS bootstrapping docs, and flags for identities no node should hold.

use super::check::{self, Check};
use super::csr::ParsedCsr;
use super::facts::CsrFacts;
use super::kubelet_client::{hardening_checks, organization_is_system_nodes, usage_set_equals};
use super::names::{canonical_ip, normalize_dns_name, reserved_dns_name, reserved_ip};
use super::upstream::{
    COMMON_NAME_NOT_SYSTEM_NODE, DNS_OR_IP_SAN_REQUIRED, EMAIL_SAN_NOT_ALLOWED, GROUP_SYSTEM_NODES,
    KUBELET_SERVING_USAGE_SETS, NODE_USER_PREFIX, ORGANIZATION_NOT_SYSTEM_NODES,
    SERVING_USAGES_DID_NOT_MATCH, URI_SAN_NOT_ALLOWED,
};
use serde::Serialize;
use std::net::IpAddr;

pub(super) fn checks(parsed: &ParsedCsr, facts: &CsrFacts<'_>, out: &mut Vec<Check>) {
    let rule = |name, ok, msg: &'static str| Check::rule(name, ok, || msg.to_owned());
    // Upstream order: O, DNS-or-IP, email, URI, usages, CN prefix.
    out.push(rule(
        check::ORGANIZATION,
        organization_is_system_nodes(parsed),
        ORGANIZATION_NOT_SYSTEM_NODES,
    ));
    out.push(rule(
        check::DNS_OR_IP_SAN,
        !parsed.dns_names.is_empty() || !parsed.ip_addresses.is_empty(),
        DNS_OR_IP_SAN_REQUIRED,
    ));
    out.push(rule(
        check::NO_EMAIL_SANS,
        parsed.email_addresses.is_empty(),
        EMAIL_SAN_NOT_ALLOWED,
    ));
    out.push(rule(
        check::NO_URI_SANS,
        parsed.uris.is_empty(),
        URI_SAN_NOT_ALLOWED,
    ));
    out.push(rule(
        check::USAGES,
        KUBELET_SERVING_USAGE_SETS
            .iter()
            .any(|set| usage_set_equals(facts.usages, set)),
        SERVING_USAGES_DID_NOT_MATCH,
    ));
    out.push(rule(
        check::COMMON_NAME_PREFIX,
        parsed.go_common_name().starts_with(NODE_USER_PREFIX),
        COMMON_NAME_NOT_SYSTEM_NODE,
    ));

    hardening_checks(parsed, out);

    let username = facts.username;
    out.push(Check::rule(
        check::REQUESTER_IS_NODE,
        username
            .strip_prefix(NODE_USER_PREFIX)
            .is_some_and(|n| !n.is_empty()),
        || format!("requester {username:?} is not a node (system:node:<name>)"),
    ));
    out.push(Check::rule(
        check::REQUESTER_IN_NODES_GROUP,
        facts.groups.iter().any(|g| g == GROUP_SYSTEM_NODES),
        || format!("requester is not in group {GROUP_SYSTEM_NODES:?}"),
    ));
    let cn = parsed.go_common_name();
    out.push(Check::rule(
        check::COMMON_NAME_IS_REQUESTER,
        cn == username,
        || format!("subject common name {cn:?} is not the requester {username:?}"),
    ));

    let mut flagged: Vec<String> = Vec::new();
    for name in &parsed.dns_names {
        if let Some(why) = reserved_dns_name(name) {
            flagged.push(format!("DNS SAN {name:?} {why}"));
        }
    }
    for ip in &parsed.ip_addresses {
        if let Some(why) = reserved_ip(*ip) {
            flagged.push(format!("IP SAN {ip} {why}"));
        }
    }
    out.push(Check::rule(
        check::NO_API_SERVER_IDENTITY,
        flagged.is_empty(),
        || flagged.join("; "),
    ));
}

/// One entry of a Node's `status.addresses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAddress<'a> {
    /// `Hostname`, `InternalIP`, `ExternalIP`, `InternalDNS`, `ExternalDNS`.
    pub kind: &'a str,
    pub address: &'a str,
}

/// How one SAN relates to the requesting Node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SanMatch {
    /// The Node reports this name or address.
    Matches,
    /// The Node exists and does not report it.
    NotOnNode,
    /// No Node was given to compare with.
    NodeNotFound,
}

/// Compares each SAN with the Node's addresses the way the kubelet builds them
/// (`addressesToHostnamesAndIPs`): DNS SANs against `Hostname`/`InternalDNS`/`ExternalDNS`
/// (lower-cased, trailing dot ignored), IP SANs against `InternalIP`/`ExternalIP` and IP-valued
/// `Hostname`, compared parsed (so `::ffff:10.0.0.1` equals `10.0.0.1`). Email, URI and other
/// SANs never belong to a node. SANs are returned as `DNS:…`, `IP:…`, `email:…`, `URI:…`.
pub fn compare_sans_with_node(
    parsed: &ParsedCsr,
    node_addresses: Option<&[NodeAddress<'_>]>,
) -> Vec<(String, SanMatch)> {
    let judge = |found: bool| match (node_addresses, found) {
        (None, _) => SanMatch::NodeNotFound,
        (Some(_), true) => SanMatch::Matches,
        (Some(_), false) => SanMatch::NotOnNode,
    };
    let addrs = node_addresses.unwrap_or(&[]);
    let mut out = Vec::new();
    for name in &parsed.dns_names {
        let want = normalize_dns_name(name);
        let found = addrs.iter().any(|a| {
            matches!(a.kind, "Hostname" | "InternalDNS" | "ExternalDNS")
                && a.address.parse::<IpAddr>().is_err()
                && normalize_dns_name(a.address) == want
        });
        out.push((format!("DNS:{name}"), judge(found)));
    }
    for ip in &parsed.ip_addresses {
        let want = canonical_ip(*ip);
        let found = addrs.iter().any(|a| {
            matches!(a.kind, "InternalIP" | "ExternalIP" | "Hostname")
                && a.address
                    .parse::<IpAddr>()
                    .is_ok_and(|have| canonical_ip(have) == want)
        });
        out.push((format!("IP:{ip}"), judge(found)));
    }
    let never = |s: String| (s, judge(false));
    out.extend(
        parsed
            .email_addresses
            .iter()
            .map(|e| never(format!("email:{e}"))),
    );
    out.extend(parsed.uris.iter().map(|u| never(format!("URI:{u}"))));
    out.extend(parsed.other_names.iter().map(|o| never(o.clone())));
    out
}
