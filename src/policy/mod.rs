//! The policy core: what tlsboot decides about a CSR, and why. Pure — no async, no I/O, no
//! client; k8s-openapi types are read as plain data only.
//!
//! Every caller (the daemon, `tlsboot inspect`, the review commands) goes through [`decide`] and
//! reads the one [`Decision`] it returns. The rules and their upstream sources are listed in
//! `docs/security.md`.

pub mod check;
mod csr;
mod decision;
mod der;
mod facts;
mod kubelet_client;
mod kubelet_serving;
mod names;
mod pem;
mod sar;
pub mod upstream;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use check::Check;
pub use csr::{
    KeyAlgorithm, MAX_REQUEST_BYTES, MAX_RSA_BITS, MIN_RSA_BITS, ParseError, ParsedCsr,
    PublicKeyInfo, RequestedExtension, parse_csr, stage,
};
pub use decision::{Decision, SignerClass, Verdict, decide, decide_with_parse};
pub use facts::CsrFacts;
#[cfg(test)]
pub(crate) use facts::test_status;
pub use kubelet_serving::{NodeAddress, SanMatch, compare_sans_with_node};
pub use names::{
    canonical_ip, normalize_dns_name, reserved_dns_name, reserved_ip, validate_dns1123_subdomain,
};
pub use pem::{Base64Error, PemError, decode_base64, printable_label};
pub use sar::{SarSubresource, recognized_subresources, subject_access_review};
pub use upstream::{REASON_AUTO_APPROVED, SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING};
