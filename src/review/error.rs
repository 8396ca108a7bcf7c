//! The review commands' errors, worded for the person at the terminal: what failed, on what, and
//! what to do about it.

use crate::cluster::{ApprovalError, ConnectionError};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(
        "cannot reach the Kubernetes API server at {url}: {source}\n\
         (check the server address in your kubeconfig, --context, and that the cluster is up)"
    )]
    Unreachable {
        url: String,
        #[source]
        source: kube::Error,
    },
    /// kubectl's wording for a missing object.
    #[error(
        "Error from server (NotFound): certificatesigningrequests.certificates.k8s.io \"{name}\" not found"
    )]
    NotFound { name: String },
    /// A 403, with the permission the caller is missing.
    #[error("{0}")]
    Forbidden(String),
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// Checks failed and `--force` was not given; the text lists them.
    #[error("{0}")]
    Refused(String),
    #[error(
        "certificate signing request {name:?}: spec.request cannot be decoded: {reason}\n\
         (the request bytes are malformed; deny it with `tlsboot deny {name}`)"
    )]
    MalformedRequest { name: String, reason: String },
    #[error(
        "`tlsboot review` is interactive and needs a terminal on stdin and stdout; \
         use `tlsboot list` to see the queue and `tlsboot approve NAME` / `tlsboot deny NAME` to decide"
    )]
    NotATerminal,
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    InspectFile(#[from] crate::review::inspect_file::InspectError),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    #[error("encoding output: {0}")]
    Encode(String),
}

impl From<serde_json::Error> for ReviewError {
    fn from(e: serde_json::Error) -> Self {
        ReviewError::Encode(e.to_string())
    }
}

impl From<serde_yaml_ng::Error> for ReviewError {
    fn from(e: serde_yaml_ng::Error) -> Self {
        ReviewError::Encode(e.to_string())
    }
}
