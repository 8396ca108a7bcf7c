//! Every string and name tlsboot copies from upstream Kubernetes, in one place, quoted exactly.
//!
//! Callers compare against these (tests, the controller's log lines, people grepping for an
//! upstream message), so a drift here is a visible bug, not a cosmetic one.

// --- k8s.io/api certificates/v1 types.go (well-known signer names) ---

/// `KubeAPIServerClientKubeletSignerName` — staging/src/k8s.io/api/certificates/v1/types.go
pub const SIGNER_KUBELET_CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// `KubeletServingSignerName` — staging/src/k8s.io/api/certificates/v1/types.go
pub const SIGNER_KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";

/// Condition types — staging/src/k8s.io/api/certificates/v1/types.go
pub const CONDITION_APPROVED: &str = "Approved";
pub const CONDITION_DENIED: &str = "Denied";

// --- pkg/apis/certificates/helpers.go ---

/// `ParseCSR` error when the first PEM block is missing or has another label.
pub const PEM_BLOCK_TYPE_MUST_BE_CSR: &str = "PEM block type must be CERTIFICATE REQUEST";
/// The only PEM label `ParseCSR` accepts.
pub const PEM_LABEL_CSR: &str = "CERTIFICATE REQUEST";
/// `organizationNotSystemNodesErr`
pub const ORGANIZATION_NOT_SYSTEM_NODES: &str = "subject organization is not system:nodes";
/// `commonNameNotSystemNode`
pub const COMMON_NAME_NOT_SYSTEM_NODE: &str =
    "subject common name does not begin with system:node:";
/// `dnsOrIPSANRequiredErr`
pub const DNS_OR_IP_SAN_REQUIRED: &str = "DNS or IP subjectAltName is required";
/// `dnsSANNotAllowedErr`
pub const DNS_SAN_NOT_ALLOWED: &str = "DNS subjectAltNames are not allowed";
/// `emailSANNotAllowedErr`
pub const EMAIL_SAN_NOT_ALLOWED: &str = "Email subjectAltNames are not allowed";
/// `ipSANNotAllowedErr`
pub const IP_SAN_NOT_ALLOWED: &str = "IP subjectAltNames are not allowed";
/// `uriSANNotAllowedErr`
pub const URI_SAN_NOT_ALLOWED: &str = "URI subjectAltNames are not allowed";
/// `fmt.Errorf("usages did not match %v", kubeletClientRequiredUsages.List())` — Go prints the
/// sorted set with `%v`, i.e. space-separated inside brackets.
pub const CLIENT_USAGES_DID_NOT_MATCH: &str =
    "usages did not match [client auth digital signature key encipherment]";
/// Same, for `kubeletServingRequiredUsages`.
pub const SERVING_USAGES_DID_NOT_MATCH: &str =
    "usages did not match [digital signature key encipherment server auth]";

/// The organization both kubelet validators require, as the *only* O (`reflect.DeepEqual`).
pub const ORG_SYSTEM_NODES: &str = "system:nodes";
/// The case-sensitive CN prefix both kubelet validators require (`strings.HasPrefix`).
pub const NODE_USER_PREFIX: &str = "system:node:";

/// `KeyUsage` strings — staging/src/k8s.io/api/certificates/v1/types.go
pub const USAGE_DIGITAL_SIGNATURE: &str = "digital signature";
pub const USAGE_KEY_ENCIPHERMENT: &str = "key encipherment";
pub const USAGE_CLIENT_AUTH: &str = "client auth";
pub const USAGE_SERVER_AUTH: &str = "server auth";

/// `kubeletClientRequiredUsages` and `kubeletClientRequiredUsagesNoRSA` (sets; despite the name,
/// either is accepted for any key type).
pub const KUBELET_CLIENT_USAGE_SETS: [&[&str]; 2] = [
    &[
        USAGE_DIGITAL_SIGNATURE,
        USAGE_KEY_ENCIPHERMENT,
        USAGE_CLIENT_AUTH,
    ],
    &[USAGE_DIGITAL_SIGNATURE, USAGE_CLIENT_AUTH],
];
/// `kubeletServingRequiredUsages` and `kubeletServingRequiredUsagesNoRSA`.
pub const KUBELET_SERVING_USAGE_SETS: [&[&str]; 2] = [
    &[
        USAGE_DIGITAL_SIGNATURE,
        USAGE_KEY_ENCIPHERMENT,
        USAGE_SERVER_AUTH,
    ],
    &[USAGE_DIGITAL_SIGNATURE, USAGE_SERVER_AUTH],
];

/// The usages the kubelet puts on its *initial bootstrap* CSR for its ECDSA P-256 key —
/// `requestNodeCertificate` in pkg/kubelet/certificate/bootstrap/bootstrap.go (v1.37.2) adds
/// `key encipherment` only for an RSA key (since v1.27, kubernetes/kubernetes#111660). A real
/// v1.37.2 kubelet sends exactly
/// this (tests/kubelet_real_e2e.rs). Older kubelets sent the set with `key encipherment` for
/// every key type; [`KUBELET_CLIENT_USAGE_SETS`] still accepts it, as upstream's validation does.
pub const KUBELET_BOOTSTRAP_USAGES: [&str; 2] = [USAGE_DIGITAL_SIGNATURE, USAGE_CLIENT_AUTH];

/// Group every node identity carries — plugin/pkg/auth/authorizer/node and the node authenticator.
pub const GROUP_SYSTEM_NODES: &str = "system:nodes";

// --- pkg/controller/certificates/approver/sarapprove.go ---

/// `appendApprovalCondition` reason.
pub const REASON_AUTO_APPROVED: &str = "AutoApproved";
/// `recognizers()[0].successMessage` (selfnodeclient).
pub const MESSAGE_SELF_NODE_CLIENT: &str =
    "Auto approving self kubelet client certificate after SubjectAccessReview.";
/// `recognizers()[1].successMessage` (nodeclient).
pub const MESSAGE_NODE_CLIENT: &str =
    "Auto approving kubelet client certificate after SubjectAccessReview.";
/// `recognizers()[*].permission` — the fixed part of each SubjectAccessReview.
pub const SAR_GROUP: &str = "certificates.k8s.io";
pub const SAR_RESOURCE: &str = "certificatesigningrequests";
pub const SAR_VERB: &str = "create";
pub const SAR_SUBRESOURCE_SELF_NODE_CLIENT: &str = "selfnodeclient";
pub const SAR_SUBRESOURCE_NODE_CLIENT: &str = "nodeclient";

/// `handle`: `fmt.Errorf("unable to parse csr %q: %v", csr.Name, err)`.
pub fn unable_to_parse_csr(name: &str, err: &impl std::fmt::Display) -> String {
    format!("unable to parse csr {}: {err}", go_quote(name))
}

/// `handle`: `IgnorableError("recognized csr %q as %v but subject access review was not approved", ...)`.
pub fn recognized_but_not_approved(name: &str, tried: &[&str]) -> String {
    format!(
        "recognized csr {} as [{}] but subject access review was not approved",
        go_quote(name),
        tried.join(" ")
    )
}

// --- staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go ---

/// `DNS1123SubdomainMaxLength`
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// `dns1123SubdomainErrorMsg` followed by the regex and example `RegexError` appends.
pub const DNS1123_SUBDOMAIN_ERROR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
/// `MaxLenError(DNS1123SubdomainMaxLength)`
pub const DNS1123_SUBDOMAIN_TOO_LONG: &str = "must be no more than 253 characters";

/// Go's `%q` for the names we print: a double-quoted string with Go-style escapes. Rust's
/// `escape_debug` matches Go for everything a CSR name can hold (DNS-1123 characters).
fn go_quote(s: &str) -> String {
    format!("\"{}\"", s.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_error_formats() {
        assert_eq!(
            unable_to_parse_csr("csr-x", &PEM_BLOCK_TYPE_MUST_BE_CSR),
            "unable to parse csr \"csr-x\": PEM block type must be CERTIFICATE REQUEST"
        );
        assert_eq!(
            recognized_but_not_approved("csr-x", &["selfnodeclient", "nodeclient"]),
            "recognized csr \"csr-x\" as [selfnodeclient nodeclient] but subject access review was not approved"
        );
    }

    #[test]
    fn usage_error_strings_are_go_sorted_sets() {
        // Go's sets.String.List() sorts; `%v` joins with spaces.
        let mut client: Vec<&str> = KUBELET_CLIENT_USAGE_SETS[0].to_vec();
        client.sort_unstable();
        assert_eq!(
            CLIENT_USAGES_DID_NOT_MATCH,
            format!("usages did not match [{}]", client.join(" "))
        );
        let mut serving: Vec<&str> = KUBELET_SERVING_USAGE_SETS[0].to_vec();
        serving.sort_unstable();
        assert_eq!(
            SERVING_USAGES_DID_NOT_MATCH,
            format!("usages did not match [{}]", serving.join(" "))
        );
    }
}
