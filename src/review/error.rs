//! The review commands' errors, worded for the person at the terminal: what failed, on what, and
//! what to do about it.

use crate::cluster::{ApprovalError, ConnectionError};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(
        "cannot reach the Kubernetes API server at {url}: {detail}\n\
         (check the server address in your kubeconfig, --context, and that the cluster is up)"
    )]
    Unreachable { url: String, detail: String },
    /// kubectl's wording for a missing object (printed after `Error from server (NotFound): `).
    #[error("certificatesigningrequests.certificates.k8s.io \"{name}\" not found")]
    NotFound { name: String },
    /// A 403, with the permission the caller is missing.
    #[error("{0}")]
    Forbidden(String),
    #[error("{what}: {detail}")]
    Api { what: String, detail: String },
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// Checks failed and `--force` was not given; the text lists them.
    #[error("{0}")]
    Refused(String),
    #[error(
        "refusing to approve certificate signing request {name:?}: spec.request cannot be \
         decoded: {reason}\n(tlsboot cannot check a request it cannot decode: deny it with \
         `tlsboot deny {name}`, or read it yourself and use --force)"
    )]
    MalformedRequest { name: String, reason: String },
    #[error(
        "`tlsboot review` is interactive and needs a terminal on stdin and stdout; \
         use `tlsboot list` to see the queue and `tlsboot approve NAME` / `tlsboot deny NAME` to decide"
    )]
    NotATerminal,
    #[error(transparent)]
    InspectFile(#[from] crate::review::inspect_file::InspectError),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    #[error("encoding output: {0}")]
    Encode(String),
    /// An error, then lines that explain what the command made of its arguments.
    #[error("{error}")]
    Noted {
        error: Box<ReviewError>,
        notes: Vec<String>,
    },
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

pub use crate::cluster::chain_text;

/// `e` as kubectl would print it: `Error from server (NotFound): …` for a missing CSR,
/// `error: …` for the rest. `None` for a closed stdout (`| head`): not worth a message.
pub fn message(e: &ReviewError) -> Option<String> {
    use super::format::terminal_safe;
    match e {
        ReviewError::NotFound { .. } => Some(format!(
            "Error from server (NotFound): {}",
            terminal_safe(&e.to_string())
        )),
        ReviewError::Output(io) if io.kind() == std::io::ErrorKind::BrokenPipe => None,
        ReviewError::Noted { error, notes } => {
            let mut text = message(error)?;
            for note in notes {
                text.push('\n');
                text.push_str(note);
            }
            Some(text)
        }
        // Refusals and API messages quote CSR names and SANs: escaped like every CSR string.
        other => Some(format!("error: {}", terminal_safe(&chain_text(other)))),
    }
}

/// One failed item of a command that goes on with the others (kubectl's per-object errors).
/// The command's own error goes back to `main`, which prints it with [`message`].
pub fn report(e: &ReviewError) {
    if let Some(text) = message(e) {
        eprintln!("{text}");
    }
}

/// A command's exit status once every item was tried: failure when any failed.
pub fn exit_code(failed: bool) -> std::process::ExitCode {
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
