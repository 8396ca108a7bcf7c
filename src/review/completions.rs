//! `tlsboot completions SHELL`: shell completion scripts, for the name the binary was run as
//! (`tlsboot`, or `kubectl-tlsboot` when installed as a kubectl plugin).

use std::process::ExitCode;

use clap::CommandFactory as _;

#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to generate the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the script to stdout.
pub fn run(args: &CompletionsArgs) -> ExitCode {
    let mut cmd = crate::cli::Cli::command();
    // The script completes the executable's own name: `kubectl-tlsboot` for the plugin binary.
    let bin = crate::cli::program_name();
    clap_complete::generate(args.shell, &mut cmd, bin, &mut std::io::stdout());
    ExitCode::SUCCESS
}
