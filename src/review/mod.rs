//! Commands for people: look at CSRs, explain the policy's verdict, and (later) act on it.

pub mod inspect_file;
pub mod assess;
pub mod format;
pub mod error;
pub mod session;
