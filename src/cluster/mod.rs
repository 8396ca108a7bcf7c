//! Thin shared client code used by every online command and the daemon: building a
//! `Client` from kubeconfig or in-cluster config, and the one function that writes
//! Approved/Denied conditions (so the condition shape, the conflict retry and the
//! "never a second condition" rule live in exactly one place).

pub mod approval;
mod client;
pub mod kubeconfig;

pub use approval::{
    ApprovalError, ApprovalOutcome, ApprovalWrite, Decision as ApprovalDecision, RequesterField,
    write_approval,
};
pub use client::{Connection, ConnectionError, chain_text, client, client_from, config};
