//! `tlsboot review`: walk the pending kubelet-serving CSRs at a terminal, showing each one's
//! inspect view and asking approve / deny / skip / quit. With `--watch` it then waits for new
//! ones. Without a terminal it refuses: a script should call `approve`/`deny` by name, so what
//! it approves is what it named.

use std::collections::HashSet;
use std::io::{IsTerminal as _, Write};
use std::process::ExitCode;

use futures::StreamExt as _;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::mpsc;

use super::approve::{DecisionRequest, Done, Via, current_user, decide_one};
use super::assess::assess;
use super::error::{ReviewError, report};
use super::format::{resource_name, terminal_safe};
use super::list::sort_queue;
use super::render::review_view;
use super::session::Session;
use crate::cluster::csr_status::awaits_decision;
use crate::cluster::{ApprovalDecision, Connection};
use crate::policy::SIGNER_KUBELET_SERVING;

/// The question asked for each CSR.
pub const PROMPT: &str = "Approve, deny, skip or quit? [a/d/s/q]: ";

#[derive(Debug, Clone, clap::Args)]
pub struct ReviewArgs {
    /// When the queue is empty, wait for new serving CSRs instead of exiting (q + Enter or
    /// Ctrl-D quits).
    #[arg(short, long)]
    pub watch: bool,

    /// Server-side dry run for every decision.
    #[arg(long)]
    pub dry_run: bool,
}

/// One answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Approve,
    Deny,
    Skip,
    Quit,
}

/// Parses an answer line; `None` asks again.
pub fn parse_answer(line: &str) -> Option<Answer> {
    match line.trim().to_ascii_lowercase().as_str() {
        "a" | "approve" => Some(Answer::Approve),
        "d" | "deny" => Some(Answer::Deny),
        "s" | "skip" | "" => Some(Answer::Skip),
        "q" | "quit" | "exit" => Some(Answer::Quit),
        _ => None,
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub approved: usize,
    pub denied: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl Tally {
    pub fn summary(&self) -> String {
        format!(
            "approved {}, denied {}, skipped {}{}",
            self.approved,
            self.denied,
            self.skipped,
            if self.failed > 0 {
                format!(", failed {}", self.failed)
            } else {
                String::new()
            }
        )
    }
}

pub async fn run(conn: &Connection, args: &ReviewArgs) -> Result<ExitCode, ReviewError> {
    review(conn, args).await
}

/// Lines from stdin, read on a plain thread so the async side can wait for a line and for
/// watch events at once. `None` = EOF.
fn stdin_lines() -> mpsc::UnboundedReceiver<Option<String>> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        loop {
            let mut line = String::new();
            match stdin.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(_) => {
                    if tx.send(Some(line)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

fn prompt(text: &str) -> Result<(), ReviewError> {
    let mut out = std::io::stdout().lock();
    write!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

async fn read_line(input: &mut mpsc::UnboundedReceiver<Option<String>>) -> Option<String> {
    input.recv().await.flatten()
}

enum Flow {
    Continue,
    Quit,
}

async fn review(conn: &Connection, args: &ReviewArgs) -> Result<ExitCode, ReviewError> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Err(ReviewError::NotATerminal);
    }
    let session = Session::connect(conn).await?;
    let user = current_user(&session).await;
    let mut input = stdin_lines();
    let mut tally = Tally::default();
    let mut seen: HashSet<String> = HashSet::new();

    let mut queue = session
        .list_csrs(&[SIGNER_KUBELET_SERVING.to_owned()])
        .await?;
    queue.retain(awaits_decision);
    sort_queue(&mut queue);
    if queue.is_empty() && !args.watch {
        println!("No pending {SIGNER_KUBELET_SERVING} CSRs.");
        return Ok(ExitCode::SUCCESS);
    }
    let total = queue.len();
    for (i, csr) in queue.into_iter().enumerate() {
        let name = csr.metadata.name.clone().unwrap_or_default();
        seen.insert(name.clone());
        println!("\n=== {} of {total} ===", i + 1);
        if let Flow::Quit = one(
            &session,
            &name,
            user.as_deref(),
            args,
            &mut input,
            &mut tally,
        )
        .await?
        {
            println!("{}", tally.summary());
            return Ok(exit(&tally));
        }
    }
    if args.watch {
        watch(
            &session,
            user.as_deref(),
            args,
            &mut input,
            &mut tally,
            &mut seen,
        )
        .await?;
    }
    println!("{}", tally.summary());
    Ok(exit(&tally))
}

fn exit(t: &Tally) -> ExitCode {
    super::error::exit_code(t.failed > 0)
}

async fn watch(
    session: &Session,
    user: Option<&str>,
    args: &ReviewArgs,
    input: &mut mpsc::UnboundedReceiver<Option<String>>,
    tally: &mut Tally,
    seen: &mut HashSet<String>,
) -> Result<(), ReviewError> {
    let cfg =
        watcher::Config::default().fields(&format!("spec.signerName={SIGNER_KUBELET_SERVING}"));
    let mut stream = watcher(session.csrs(), cfg).default_backoff().boxed();
    println!("\nWaiting for new {SIGNER_KUBELET_SERVING} CSRs (q + Enter to quit)...");
    loop {
        tokio::select! {
            line = input.recv() => {
                match line.flatten() {
                    None => return Ok(()),
                    Some(l) if parse_answer(&l) == Some(Answer::Quit) => return Ok(()),
                    Some(_) => println!("Waiting for new CSRs; q + Enter quits."),
                }
            }
            ev = stream.next() => {
                let csr: CertificateSigningRequest = match ev {
                    Some(Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c))) => c,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        eprintln!(
                            "warning: watch interrupted, retrying: {}",
                            crate::cluster::watch_error_text(&e)
                        );
                        continue;
                    }
                    None => return Ok(()),
                };
                let name = csr.metadata.name.clone().unwrap_or_default();
                if !awaits_decision(&csr) || !seen.insert(name.clone()) {
                    continue;
                }
                println!("\n=== new: {} ===", terminal_safe(&name));
                if let Flow::Quit = one(session, &name, user, args, input, tally).await? {
                    return Ok(());
                }
                println!("\nWaiting for new {SIGNER_KUBELET_SERVING} CSRs (q + Enter to quit)...");
            }
        }
    }
}

/// Shows one CSR (fresh from the server, so a decision made elsewhere meanwhile is seen) and
/// acts on the answer.
async fn one(
    session: &Session,
    name: &str,
    user: Option<&str>,
    args: &ReviewArgs,
    input: &mut mpsc::UnboundedReceiver<Option<String>>,
    tally: &mut Tally,
) -> Result<Flow, ReviewError> {
    let csr = match session.get_csr(name).await {
        Ok(c) => c,
        Err(e @ ReviewError::NotFound { .. }) => {
            println!("{}", terminal_safe(&format!("{name}: gone ({e})")));
            return Ok(Flow::Continue);
        }
        Err(e) => return Err(e),
    };
    if !awaits_decision(&csr) {
        println!("{}: decided meanwhile, skipping", terminal_safe(name));
        return Ok(Flow::Continue);
    }
    let facts = session.cluster_facts(std::slice::from_ref(&csr)).await?;
    let a = assess(&csr, &facts);
    print!(
        "{}",
        terminal_safe(&review_view(&csr, &a, jiff::Timestamp::now()))
    );
    let answer = loop {
        prompt(PROMPT)?;
        let Some(line) = read_line(input).await else {
            println!();
            break Answer::Quit;
        };
        match parse_answer(&line) {
            Some(a) => break a,
            None => println!("Please answer a (approve), d (deny), s (skip) or q (quit)."),
        }
    };
    let mut force = false;
    match answer {
        Answer::Quit => return Ok(Flow::Quit),
        Answer::Skip => {
            tally.skipped += 1;
            println!("skipped {}", terminal_safe(name));
            return Ok(Flow::Continue);
        }
        Answer::Approve if !a.passes() => {
            println!("{}", terminal_safe(&a.refusal().unwrap_or_default()));
            prompt("Approve anyway? Type 'force' to approve, anything else skips: ")?;
            let line = read_line(input).await.unwrap_or_default();
            if line.trim() != "force" {
                tally.skipped += 1;
                println!("skipped {}", terminal_safe(name));
                return Ok(Flow::Continue);
            }
            force = true;
        }
        _ => {}
    }
    let deny_reason = if answer == Answer::Deny {
        prompt("Reason for the denial (optional, Enter for none): ")?;
        read_line(input).await.map(|l| l.trim().to_owned())
    } else {
        None
    };
    let (decision, verb) = match answer {
        Answer::Deny => (ApprovalDecision::Deny, "denied"),
        _ => (ApprovalDecision::Approve, "approved"),
    };
    let req = DecisionRequest {
        decision,
        via: Via::Review,
        user,
        force,
        dry_run: args.dry_run,
        reason: deny_reason.as_deref(),
    };
    match decide_one(session, csr, &facts, &req).await {
        Ok(done) => {
            let suffix = if args.dry_run {
                " (server dry run)"
            } else {
                ""
            };
            let already = if matches!(done, Done::Already(_)) {
                " (it already was)"
            } else {
                ""
            };
            println!(
                "{} {verb}{suffix}{already}",
                terminal_safe(&resource_name(name))
            );
            match decision {
                ApprovalDecision::Approve => tally.approved += 1,
                ApprovalDecision::Deny => tally.denied += 1,
            }
        }
        Err(e) => {
            report(&e);
            tally.failed += 1;
        }
    }
    Ok(Flow::Continue)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(parse_answer("a\n"), Some(Answer::Approve));
        assert_eq!(parse_answer(" Approve "), Some(Answer::Approve));
        assert_eq!(parse_answer("d"), Some(Answer::Deny));
        assert_eq!(parse_answer("\n"), Some(Answer::Skip));
        assert_eq!(parse_answer("q"), Some(Answer::Quit));
        assert_eq!(parse_answer("x"), None);
        assert_eq!(parse_answer("force"), None);
    }

    #[test]
    fn tally_summary() {
        let t = Tally {
            approved: 1,
            denied: 1,
            skipped: 1,
            failed: 0,
        };
        assert_eq!(t.summary(), "approved 1, denied 1, skipped 1");
        let t = Tally { failed: 2, ..t };
        assert_eq!(t.summary(), "approved 1, denied 1, skipped 1, failed 2");
    }
}
