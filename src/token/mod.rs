//! The admin's side of kubelet TLS bootstrapping, for any cluster (kubeadm does it only
//! for its own): bootstrap tokens stored exactly as kubeadm stores them, the kubelet's
//! bootstrap kubeconfig, the three RBAC bindings, the expired-token cleaner the daemon
//! can run, and `doctor`, which says whether a node could join right now.
//!
//! Pure parts (token format and generation, Secret encoding, kubeadm's output and error
//! formats, RBAC objects, doctor's judgement) are separate from the API calls so they
//! are unit-tested without a cluster.

pub mod bootstrap;
pub mod cleaner;
pub mod commands;
pub mod doctor;
mod error;
pub mod gocompat;
pub mod kubeconfig;
pub mod list;
pub mod rbac;

pub use cleaner::run_token_cleaner;
pub use commands::{
    DoctorArgs, RbacArgs, TokenArgs, run_doctor, run_rbac, run_rbac_offline, run_token,
    run_token_offline,
};
pub use error::TokenError;
