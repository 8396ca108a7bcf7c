//! Commands for people: look at CSRs, explain the policy's verdict, and (later) act on it.

pub mod inspect_file;
