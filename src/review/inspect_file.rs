//! `tlsboot inspect FILE...` (placeholder while the command is written).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct InspectFileArgs {
    /// CSR files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

pub fn run(_args: &InspectFileArgs) -> Result<ExitCode, InspectError> {
    Ok(ExitCode::SUCCESS)
}
