//! Test support for tlsboot: a **real** control plane (etcd, kube-apiserver,
//! kube-controller-manager built by `controlplane/build.sh`) on loopback, with
//! rcgen-made PKI, kubeconfigs for any identity, kubeadm-style bootstrap
//! tokens, simulated kubelets and real ones (`realkubelet`, with a fake CRI).
//!
//! ```no_run
//! # async fn t() -> Result<(), Box<dyn std::error::Error>> {
//! use tlsboot_harness::ControlPlane;
//! // One control plane per test binary; `None` = binaries missing outside CI (skip).
//! let Some(cp) = ControlPlane::shared().await? else { return Ok(()) };
//! let admin = cp.admin_client()?;
//! # let _ = admin; Ok(()) }
//! ```
//!
//! Processes die with the test process however it ends (see `process`), and
//! their logs are kept (and their path printed) when a test fails.

pub mod balancer;
pub mod binaries;
pub mod controlplane;
pub mod error;
pub mod faultproxy;
pub mod kubeconfig;
pub mod kubelet;
pub mod pki;
mod process;
pub mod realkubelet;
pub mod token;

pub use binaries::{
    Binaries, REQUIRE_ENV, binaries_for_tests, build_binaries, find_binaries, in_ci, on_path,
    skipping_forbidden,
};
pub use controlplane::{
    Component, ControlPlane, Options, SEED_BINDINGS, StartupTimes, apply_seed_rbac, group_binding,
};
pub use error::{Error, Result};
pub use kubeconfig::{Credential, UserKubeconfig};
pub use kubelet::{KubeletOptions, KubeletReport, SimKubelet, Stage};
pub use pki::{Ca, CertAndKey};
pub use process::{ChildProcess, log_tail};
pub use realkubelet::{
    KubeletBinaries, RealKubelet, RealKubeletOptions, build_kubelet_binaries,
    find_kubelet_binaries, kubelet_binaries_for_tests,
};
pub use token::{BootstrapToken, BootstrapTokenOptions, whoami};
