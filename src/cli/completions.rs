//! `tlsboot completions SHELL`: shell completion scripts, for the name the binary was run as
//! (`tlsboot`, or `kubectl-tlsboot` when installed as a kubectl plugin).

use std::io::Write as _;
use std::process::ExitCode;

use clap::CommandFactory as _;

#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to generate the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The script as text.
pub fn script(shell: clap_complete::Shell, bin: &str) -> Vec<u8> {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    // Into a buffer: clap_complete panics when its writer fails (e.g. `| head`).
    clap_complete::generate(shell, &mut cmd, bin, &mut buf);
    buf
}

/// Writes the script to stdout.
pub fn run(args: &CompletionsArgs) -> std::io::Result<ExitCode> {
    // The script completes the executable's own name: `kubectl-tlsboot` for the plugin binary.
    let text = script(args.shell, super::program_name());
    std::io::stdout().lock().write_all(&text)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn scripts_cover_the_review_commands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let s = String::from_utf8(script(shell, "tlsboot")).unwrap();
            for sub in ["list", "inspect", "approve", "deny", "review", "all-valid"] {
                assert!(s.contains(sub), "{shell:?} script lacks {sub}");
            }
        }
        let s = String::from_utf8(script(clap_complete::Shell::Bash, "kubectl-tlsboot")).unwrap();
        assert!(s.contains("-o default kubectl-tlsboot\n"), "{s}");
    }

    #[test]
    fn cli_definition_is_consistent() {
        // Catches clashing flags between flattened Args structs (e.g. two `-o`) before a user does.
        crate::cli::Cli::command().debug_assert();
    }
}
