use std::path::PathBuf;
use std::time::Duration;

/// Everything the harness can fail with. Messages name the log file to read
/// whenever a control-plane process is involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "control-plane binaries are missing ({detail}); build them with `controlplane/build.sh` \
         (~20 min the first time) or point TLSBOOT_CONTROLPLANE_BIN at a directory holding \
         etcd, kube-apiserver and kube-controller-manager"
    )]
    BinariesMissing { detail: String },

    #[error(
        "the real kubelet cannot run here ({detail}); build it with `controlplane/build-kubelet.sh` \
         (run by `controlplane/build.sh`; about a minute after the control plane) and run the \
         tests as root (the kubelet runs in a private mount namespace)"
    )]
    KubeletMissing { detail: String },

    #[error("programs the end-to-end tests drive are not on PATH: {detail}; install them")]
    ToolsMissing { detail: String },

    #[error("controlplane/build.sh failed ({status}); its output is above")]
    BuildFailed { status: std::process::ExitStatus },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{process} exited during start-up ({status}); last lines of {log}:\n{tail}")]
    ProcessExited {
        process: &'static str,
        status: String,
        log: PathBuf,
        tail: String,
    },

    #[error("{process} was not ready after {timeout:?} ({last}); log: {log}")]
    NotReady {
        process: &'static str,
        timeout: Duration,
        last: String,
        log: PathBuf,
    },

    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },

    /// Same text as client-go's `csr.WaitForCertificate`.
    #[error("certificate signing request is denied, reason: {reason}, message: {message}")]
    CsrDenied { reason: String, message: String },

    /// Same text as client-go's `csr.WaitForCertificate`.
    #[error("certificate signing request failed, reason: {reason}, message: {message}")]
    CsrFailed { reason: String, message: String },

    #[error("certificate generation: {0}")]
    Pki(#[from] rcgen::Error),

    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),

    #[error("kubeconfig YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),

    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
