//! One evaluated rule ([`Check`]) and the names of the content checks, in the order they
//! appear in [`super::Decision::checks`]. The parse stages come first (see
//! [`super::stage`]). A leaf of the policy: the rule modules and the decision both use it.

use serde::Serialize;

/// One rule, evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// Why it failed (upstream's string where upstream has one); `None` when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    pub(crate) fn pass(name: &'static str) -> Self {
        Self {
            name,
            passed: true,
            detail: None,
        }
    }

    pub(crate) fn fail(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            passed: false,
            detail: Some(detail.into()),
        }
    }

    pub(crate) fn rule(name: &'static str, ok: bool, detail: impl FnOnce() -> String) -> Self {
        if ok {
            Self::pass(name)
        } else {
            Self::fail(name, detail())
        }
    }
}

// Upstream ValidateKubeletClientCSR / ValidateKubeletServingCSR.
pub const ORGANIZATION: &str = "organization";
pub const DNS_OR_IP_SAN: &str = "dns-or-ip-san";
pub const NO_DNS_SANS: &str = "no-dns-sans";
pub const NO_EMAIL_SANS: &str = "no-email-sans";
pub const NO_IP_SANS: &str = "no-ip-sans";
pub const NO_URI_SANS: &str = "no-uri-sans";
pub const COMMON_NAME_PREFIX: &str = "common-name-prefix";
pub const USAGES: &str = "usages";
// tlsboot hardening.
pub const SINGLE_COMMON_NAME: &str = "single-common-name";
pub const NODE_NAME: &str = "node-name";
pub const NO_OTHER_SANS: &str = "no-other-sans";
pub const REQUESTER_IS_NODE: &str = "requester-is-node";
pub const REQUESTER_IN_NODES_GROUP: &str = "requester-in-nodes-group";
pub const COMMON_NAME_IS_REQUESTER: &str = "common-name-is-requester";
pub const NO_API_SERVER_IDENTITY: &str = "no-api-server-identity";
