//! tlsboot: parse flags, set up logging, dispatch. Nothing else lives here.

use std::future::Future;
use std::process::ExitCode;

use tlsboot::cli::Command;

/// Online commands run on a tokio runtime; offline ones never start one.
fn block_on<F: Future<Output = anyhow::Result<ExitCode>>>(fut: F) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    runtime.block_on(fut)
}

fn main() -> ExitCode {
    let cli = tlsboot::cli::parse();
    tlsboot::telemetry::init(cli.global.log_format, cli.global.verbose);
    let conn = cli.global.connection();
    // Every command returns its error here; `cli::exit` is the one place that prints it.
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::List(args) => {
            block_on(async move { Ok(tlsboot::review::list::run(&conn, &args).await?) })
        }
        Command::Inspect(args) if !args.needs_cluster() => {
            tlsboot::review::inspect::run_offline(&args).map_err(Into::into)
        }
        Command::Inspect(args) => {
            block_on(async move { Ok(tlsboot::review::inspect::run(&conn, &args).await?) })
        }
        Command::Approve(args) => {
            block_on(async move { Ok(tlsboot::review::approve::run_approve(&conn, &args).await?) })
        }
        Command::Deny(args) => {
            block_on(async move { Ok(tlsboot::review::approve::run_deny(&conn, &args).await?) })
        }
        Command::Review(args) => {
            block_on(async move { Ok(tlsboot::review::interactive::run(&conn, &args).await?) })
        }
        Command::Completions(args) => tlsboot::cli::completions::run(&args).map_err(Into::into),
        Command::Controller(args) => block_on(async move {
            tlsboot::controller::run(conn, *args, tlsboot::cli::token_cleaner()).await?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Token(args) if args.offline() => {
            tlsboot::token::run_token_offline(&args).map_err(Into::into)
        }
        Command::Token(args) => {
            block_on(async move { Ok(tlsboot::token::run_token(&conn, args).await?) })
        }
        Command::Rbac(args) if args.offline() => {
            tlsboot::token::run_rbac_offline(&args).map_err(Into::into)
        }
        Command::Rbac(args) => {
            block_on(async move { Ok(tlsboot::token::run_rbac(&conn, args).await?) })
        }
        Command::Doctor(args) => {
            block_on(async move { Ok(tlsboot::token::run_doctor(&conn, args).await?) })
        }
    };
    tlsboot::cli::exit(result)
}
