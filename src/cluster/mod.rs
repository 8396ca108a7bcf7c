//! The one layer that talks to the API server, used by `controller/`, `review/` and
//! `token/`: building a `Client` from kubeconfig or in-cluster config, reading a failed
//! call ([`ApiError`]), reading a CSR's status ([`csr_status`]), and the one function that
//! writes Approved/Denied conditions (so the condition shape, the conflict retry and the
//! "never a second condition" rule live in exactly one place).

mod api_error;
pub mod approval;
mod client;
pub mod csr_status;
pub mod kubeconfig;

#[cfg(test)]
pub(crate) use api_error::api_answer;
pub use api_error::{ApiError, watch_error_text};
pub use approval::{
    ApprovalError, ApprovalOutcome, ApprovalWrite, Decision as ApprovalDecision, RequesterField,
    write_approval,
};
pub use client::{Connection, ConnectionError, chain_text, client, client_from, config};
