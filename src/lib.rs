//! tlsboot library: every concern in its own module; `main.rs` only dispatches.
//!
//! Dependency direction (arrows point down only):
//! `cli → controller | review | token → cluster → policy`. `policy` imports nothing of ours.

pub mod cli;
pub mod cluster;
pub mod controller;
pub mod policy;
pub mod review;
pub mod telemetry;
pub mod token;
