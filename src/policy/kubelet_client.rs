//! `kubernetes.io/kube-apiserver-client-kubelet`: upstream `ValidateKubeletClientCSR`, in its
//! order and with its strings, then tlsboot's hardening.

use super::check::{self, Check};
use super::csr::ParsedCsr;
use super::names::validate_dns1123_subdomain;
use super::upstream::{
    CLIENT_USAGES_DID_NOT_MATCH, COMMON_NAME_NOT_SYSTEM_NODE, DNS_SAN_NOT_ALLOWED,
    EMAIL_SAN_NOT_ALLOWED, IP_SAN_NOT_ALLOWED, KUBELET_CLIENT_USAGE_SETS, NODE_USER_PREFIX,
    ORG_SYSTEM_NODES, ORGANIZATION_NOT_SYSTEM_NODES, URI_SAN_NOT_ALLOWED,
};

/// `reflect.DeepEqual([]string{"system:nodes"}, Subject.Organization)`: exactly one O, exact case.
pub(super) fn organization_is_system_nodes(parsed: &ParsedCsr) -> bool {
    matches!(parsed.organizations.as_slice(), [o] if o == ORG_SYSTEM_NODES)
}

/// `sets.NewString(usages...).Equal(required)`: order and duplicates do not matter.
pub(super) fn usage_set_equals(usages: &[String], required: &[&str]) -> bool {
    usages.iter().all(|u| required.contains(&u.as_str()))
        && required.iter().all(|r| usages.iter().any(|u| u == r))
}

/// Hardening shared with the serving checks: exactly one CN, and when it is a node CN, a node
/// name Kubernetes would accept. Returns nothing for the node name when the prefix check already
/// failed: there is no node name to judge.
pub(super) fn hardening_checks(parsed: &ParsedCsr, out: &mut Vec<Check>) {
    let n = parsed.common_names.len();
    out.push(Check::rule(check::SINGLE_COMMON_NAME, n == 1, || {
        format!("subject must have exactly one common name, has {n}")
    }));
    if let Some(node) = parsed.go_common_name().strip_prefix(NODE_USER_PREFIX) {
        let verdict = if node.is_empty() {
            Err("the node name after \"system:node:\" is empty".to_owned())
        } else {
            validate_dns1123_subdomain(node)
                .map_err(|msg| format!("node name {node:?} is not valid: {msg}"))
        };
        out.push(match verdict {
            Ok(()) => Check::pass(check::NODE_NAME),
            Err(detail) => Check::fail(check::NODE_NAME, detail),
        });
    }
    let others = &parsed.other_names;
    out.push(Check::rule(check::NO_OTHER_SANS, others.is_empty(), || {
        format!("subjectAltName entries other than DNS/IP/email/URI are not allowed: {others:?}")
    }));
}

pub(super) fn checks(parsed: &ParsedCsr, usages: &[String], out: &mut Vec<Check>) {
    let rule = |name, ok, msg: &'static str| Check::rule(name, ok, || msg.to_owned());
    out.push(rule(
        check::ORGANIZATION,
        organization_is_system_nodes(parsed),
        ORGANIZATION_NOT_SYSTEM_NODES,
    ));
    out.push(rule(
        check::NO_DNS_SANS,
        parsed.dns_names.is_empty(),
        DNS_SAN_NOT_ALLOWED,
    ));
    out.push(rule(
        check::NO_EMAIL_SANS,
        parsed.email_addresses.is_empty(),
        EMAIL_SAN_NOT_ALLOWED,
    ));
    out.push(rule(
        check::NO_IP_SANS,
        parsed.ip_addresses.is_empty(),
        IP_SAN_NOT_ALLOWED,
    ));
    out.push(rule(
        check::NO_URI_SANS,
        parsed.uris.is_empty(),
        URI_SAN_NOT_ALLOWED,
    ));
    out.push(rule(
        check::COMMON_NAME_PREFIX,
        parsed.go_common_name().starts_with(NODE_USER_PREFIX),
        COMMON_NAME_NOT_SYSTEM_NODE,
    ));
    out.push(rule(
        check::USAGES,
        KUBELET_CLIENT_USAGE_SETS
            .iter()
            .any(|set| usage_set_equals(usages, set)),
        CLIENT_USAGES_DID_NOT_MATCH,
    ));
    hardening_checks(parsed, out);
}
