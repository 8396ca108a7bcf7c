//! Commands for people: look at CSRs, explain the policy's verdict, and (later) act on it.

pub mod approve;
pub mod assess;
pub mod error;
pub mod format;
pub mod inspect;
pub mod inspect_file;
pub mod interactive;
pub mod list;
pub mod render;
pub mod session;
