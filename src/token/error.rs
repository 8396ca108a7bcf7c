//! Errors of the token, rbac and doctor commands. Every variant's message is complete
//! on its own (what was being attempted, then why), because `main` prints it once.

use std::path::PathBuf;

use crate::cluster::ApiError;

/// Errors from `tlsboot token|rbac|doctor` and the token cleaner.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Bad input, worded exactly as kubeadm words it.
    #[error("{0}")]
    Invalid(String),

    #[error(transparent)]
    Connection(#[from] crate::cluster::ConnectionError),

    /// An API call failed; `action` names it ("creating bootstrap token Secret kube-system/bootstrap-token-abcdef").
    #[error("{action}: {}", ApiError::of(error).explained())]
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
            TokenError::Kube { error, .. } => ApiError::of(error).code(),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    use crate::cluster::api_answer as api;

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
    }
}
