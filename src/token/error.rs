//! Errors of the token, rbac and doctor commands. Every variant's message is complete
//! on its own (what was being attempted, then why), because `main` prints it once.

use std::path::PathBuf;

/// Errors from `tlsboot token|rbac|doctor` and the token cleaner.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Bad input, worded exactly as kubeadm words it.
    #[error("{0}")]
    Invalid(String),

    #[error(transparent)]
    Connection(#[from] crate::cluster::ConnectionError),

    /// An API call failed; `action` names it ("creating bootstrap token Secret kube-system/bootstrap-token-abcdef").
    #[error("{action}: {}", describe_kube_error(error))]
    Kube { action: String, error: kube::Error },

    #[error("reading {what} {}: {error}", path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("writing {what} {}: {error}", path.display())]
    WriteFile {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },

    /// The bootstrap kubeconfig could not be completed (no server or CA).
    #[error("building the bootstrap kubeconfig: {0}")]
    Kubeconfig(String),

    #[error("reading the OS random source for a new token: {0}")]
    Random(getrandom::Error),

    /// An RBAC object that would grant more than TLS bootstrapping needs.
    #[error("refusing to apply ClusterRoleBinding {name}: {reason}")]
    UnsafeBinding { name: String, reason: String },

    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),

    #[error("encoding output: {0}")]
    Encode(String),
}

impl TokenError {
    pub(crate) fn kube(action: impl Into<String>, error: kube::Error) -> TokenError {
        TokenError::Kube {
            action: action.into(),
            error,
        }
    }

    /// The API answered with this HTTP status (404, 409, 403, …).
    pub fn api_code(&self) -> Option<u16> {
        match self {
            TokenError::Kube {
                error: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }
}

/// The HTTP status of an API error, if the server answered at all.
pub(crate) fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// A one-line account of a `kube::Error` that says what to do about the common cases,
/// instead of kube's Debug dump of the Status.
pub fn describe_kube_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.code == 401 => format!(
            "unauthorized: the credentials in the kubeconfig were rejected ({})",
            status.message
        ),
        kube::Error::Api(status) if status.code == 403 => {
            format!("forbidden: {}", status.message)
        }
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                String::new()
            } else {
                format!(" ({}, HTTP {})", status.reason, status.code)
            };
            format!("{}{reason}", status.message)
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => format!(
            "cannot reach the Kubernetes API server (is it up, and are --kubeconfig/--context right?): {}",
            crate::cluster::chain_text(error)
        ),
        other => crate::cluster::chain_text(other),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.into(),
            message: message.into(),
            ..kube::core::Status::default()
        }))
    }

    #[test]
    fn api_errors_name_the_action_and_the_cause() {
        let e = TokenError::kube(
            "creating bootstrap token Secret kube-system/bootstrap-token-abcdef",
            api(
                403,
                "Forbidden",
                "secrets is forbidden: User \"bob\" cannot create resource \"secrets\"",
            ),
        );
        assert_eq!(
            e.to_string(),
            "creating bootstrap token Secret kube-system/bootstrap-token-abcdef: forbidden: secrets is forbidden: User \"bob\" cannot create resource \"secrets\""
        );
        assert_eq!(e.api_code(), Some(403));
        let nf = TokenError::kube(
            "deleting x",
            api(404, "NotFound", "secrets \"x\" not found"),
        );
        assert_eq!(
            nf.to_string(),
            "deleting x: secrets \"x\" not found (NotFound, HTTP 404)"
        );
        let unauth = api(401, "Unauthorized", "Unauthorized");
        assert!(describe_kube_error(&unauth).starts_with("unauthorized: the credentials"));
    }
}
