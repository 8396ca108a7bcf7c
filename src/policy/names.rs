//! Name rules shared by the kubelet checks: node names, SAN normalisation, and the identities a
//! node must never get a certificate for.

use super::upstream::{
    DNS1123_SUBDOMAIN_ERROR, DNS1123_SUBDOMAIN_MAX_LENGTH, DNS1123_SUBDOMAIN_TOO_LONG,
};
use std::net::IpAddr;

/// `IsDNS1123Subdomain` (apimachinery validation.go): what Kubernetes requires of a Node name.
/// Returns upstream's message on failure.
pub fn validate_dns1123_subdomain(value: &str) -> Result<(), &'static str> {
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        return Err(DNS1123_SUBDOMAIN_TOO_LONG);
    }
    // The regex `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`: dot-separated,
    // non-empty labels of [-a-z0-9] that start and end alphanumeric. No per-label length limit.
    let label_ok = |label: &str| {
        let b = label.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                is_lower_alnum(*f)
                    && is_lower_alnum(*l)
                    && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
            }
            _ => false,
        }
    };
    if value.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(DNS1123_SUBDOMAIN_ERROR)
    }
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A DNS name as compared: ASCII lower case, one trailing dot removed (`Node1.Example.` and
/// `node1.example` are the same host).
pub fn normalize_dns_name(name: &str) -> String {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    trimmed.to_ascii_lowercase()
}

/// An IP as compared: IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is the IPv4 address, as Go treats it.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Why a DNS SAN names something other than a node, or `None` when it does not.
/// `kubernetes`, `kubernetes.default`, `kubernetes.default.svc[.<cluster domain>]` are the API
/// server's in-cluster names; `localhost` and `*.localhost` resolve to loopback (RFC 6761);
/// wildcards cover names the node does not own.
pub fn reserved_dns_name(name: &str) -> Option<&'static str> {
    let n = normalize_dns_name(name);
    if n.contains('*') {
        return Some("is a wildcard");
    }
    if n == "kubernetes"
        || n == "kubernetes.default"
        || n == "kubernetes.default.svc"
        || n.starts_with("kubernetes.default.svc.")
    {
        return Some("names the Kubernetes API server");
    }
    if n == "localhost" || n.ends_with(".localhost") {
        return Some("names localhost");
    }
    None
}

/// Why an IP SAN is not a node address, or `None`.
pub fn reserved_ip(ip: IpAddr) -> Option<&'static str> {
    let ip = canonical_ip(ip);
    if ip.is_loopback() {
        Some("is a loopback address")
    } else if ip.is_unspecified() {
        Some("is the unspecified address")
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_subdomain_matches_upstream() {
        for ok in [
            "n1",
            "worker-1",
            "a.b.c",
            "0",
            "ip-10-0-0-1.ec2.internal",
            &"a".repeat(253),
        ] {
            assert_eq!(validate_dns1123_subdomain(ok), Ok(()), "{ok}");
        }
        // Upstream has no 63-character label limit for subdomains.
        assert_eq!(validate_dns1123_subdomain(&"a".repeat(100)), Ok(()));
        for bad in [
            "", "N1", "-a", "a-", "a..b", ".a", "a.", "a_b", "a b", "é", "a\0",
        ] {
            assert_eq!(
                validate_dns1123_subdomain(bad),
                Err(DNS1123_SUBDOMAIN_ERROR),
                "{bad:?}"
            );
        }
        assert_eq!(
            validate_dns1123_subdomain(&"a".repeat(254)),
            Err(DNS1123_SUBDOMAIN_TOO_LONG)
        );
    }

    #[test]
    fn reserved_names_are_case_and_dot_insensitive() {
        for name in [
            "kubernetes",
            "KUBERNETES.default",
            "kubernetes.default.svc.",
            "kubernetes.default.svc.cluster.local",
            "Kubernetes.Default.Svc.Cluster.Local.",
            "localhost",
            "LocalHost.",
            "foo.localhost",
            "*.example.com",
            "*",
        ] {
            assert!(reserved_dns_name(name).is_some(), "{name}");
        }
        for name in [
            "worker-1",
            "kubernetes-worker",
            "kubernetes.example.com",
            "localhost.example.com",
            "kubernetes.defaults",
        ] {
            assert_eq!(reserved_dns_name(name), None, "{name}");
        }
    }

    #[test]
    fn reserved_ips_include_mapped_loopback() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "::",
        ] {
            assert!(reserved_ip(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["10.0.0.5", "fd00::5", "::ffff:10.0.0.5"] {
            assert_eq!(reserved_ip(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
