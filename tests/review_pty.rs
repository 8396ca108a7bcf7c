//! `tlsboot review` driven through a real pseudo-terminal (rexpect), against its own control
//! plane (a separate test binary, so no other test's CSRs join the queue): approve one, deny
//! one, skip one, force one past failed checks; then `--watch` picks up a CSR created while it
//! waits; a check that could not be evaluated asks for `force` too. Without a terminal,
//! `review` refuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod review_support;

use std::collections::HashMap;
use std::time::Duration;

use review_support::*;

const PROMPT: &str = "Approve, deny, skip or quit? [a/d/s/q]: ";

/// Reads up to the next CSR's prompt and returns the CSR name the view showed.
fn next_csr(p: &mut rexpect::session::PtySession) -> String {
    let (_, m) = p
        .exp_regex(r"Name:\s+[^\r\n]+")
        .unwrap_or_else(|e| panic!("no inspect view: {e}"));
    let name = m.split_whitespace().nth(1).unwrap().to_string();
    p.exp_string(PROMPT)
        .unwrap_or_else(|e| panic!("no prompt for {name}: {e}"));
    name
}

/// Reads up to the next CSR's prompt (`Some(name)`) or the closing summary (`None`, with the
/// summary line stored in `summary`).
fn next_csr_or_summary(
    p: &mut rexpect::session::PtySession,
    summary: &mut String,
) -> Option<String> {
    let (_, m) = p
        .exp_regex(r"Name:\s+[^\r\n]+|approved \d+, denied \d+, skipped \d+")
        .unwrap_or_else(|e| panic!("neither an inspect view nor the summary: {e}"));
    if m.starts_with("approved ") {
        *summary = m;
        return None;
    }
    let name = m.split_whitespace().nth(1).unwrap().to_string();
    p.exp_string(PROMPT)
        .unwrap_or_else(|e| panic!("no prompt for {name}: {e}"));
    Some(name)
}

fn review(cp: &tlsboot_harness::ControlPlane, extra: &[&str]) -> rexpect::session::PtySession {
    let mut cmd = tlsboot_command(cp.kubeconfig_path());
    cmd.arg("review").args(extra);
    rexpect::session::spawn_command(cmd, Some(60_000)).unwrap()
}

#[tokio::test]
async fn review_at_a_terminal_approves_denies_skips_and_watches() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("pty-node");
    let other = cp.unique_name("pty-other");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    create_node(cp, &other, node_ip(&other)).await;
    let other_ip = node_ip(&other).to_string();

    let mut plan: HashMap<String, &str> = HashMap::new();
    plan.insert(node_with_serving_csr(cp, &n, &[&n, &ip]).await, "approve");
    plan.insert(node_with_serving_csr(cp, &n, &[&n, &ip]).await, "deny");
    plan.insert(node_with_serving_csr(cp, &n, &[&n, &ip]).await, "skip");
    plan.insert(
        node_with_serving_csr(cp, &n, &[&n, &other_ip]).await,
        "force",
    );

    let cp_ref = cp;
    let plan_in = plan.clone();
    // rexpect blocks; keep it off the async runtime's thread.
    let summary = tokio::task::spawn_blocking(move || {
        let mut p = review(cp_ref, &[]);
        // Whatever review shows until its summary is answered and recorded, so that a CSR
        // shown twice (or one never shown) is seen below rather than hidden by a fixed count.
        let mut done = Vec::new();
        let mut summary = String::new();
        while let Some(name) = next_csr_or_summary(&mut p, &mut summary) {
            assert!(
                done.len() <= 2 * plan_in.len(),
                "review keeps showing CSRs: {done:?}"
            );
            let action = plan_in
                .get(&name)
                .unwrap_or_else(|| panic!("review showed a CSR we did not make: {name}"));
            match *action {
                "approve" => {
                    p.send_line("a").unwrap();
                    p.exp_string(&format!(
                        "certificatesigningrequest.certificates.k8s.io/{name} approved"
                    ))
                    .unwrap();
                }
                "deny" => {
                    p.send_line("d").unwrap();
                    p.exp_string("Reason for the denial (optional, Enter for none): ")
                        .unwrap();
                    p.send_line("not one of ours").unwrap();
                    p.exp_string(&format!(
                        "certificatesigningrequest.certificates.k8s.io/{name} denied"
                    ))
                    .unwrap();
                }
                "skip" => {
                    // A wrong key asks again; then skip.
                    p.send_line("x").unwrap();
                    p.exp_string("Please answer a (approve), d (deny), s (skip) or q (quit).")
                        .unwrap();
                    p.exp_string(PROMPT).unwrap();
                    p.send_line("s").unwrap();
                    p.exp_string(&format!("skipped {name}")).unwrap();
                }
                "force" => {
                    p.send_line("a").unwrap();
                    p.exp_string("2 checks failed:").unwrap();
                    p.exp_string("  - sans-on-node: ").unwrap();
                    p.exp_string("Approve anyway? Type 'force' to approve, anything else skips: ")
                        .unwrap();
                    p.send_line("force").unwrap();
                    p.exp_string(&format!(
                        "certificatesigningrequest.certificates.k8s.io/{name} approved"
                    ))
                    .unwrap();
                }
                other => panic!("unknown action {other}"),
            }
            done.push(name);
        }
        p.exp_eof().unwrap();
        (summary, done)
    })
    .await
    .unwrap();
    // Every CSR was shown once: the names shown, without repeats, are exactly the plan's.
    let shown: std::collections::BTreeSet<&String> = summary.1.iter().collect();
    let planned: std::collections::BTreeSet<&String> = plan.keys().collect();
    assert_eq!(shown, planned, "shown {:?}", summary.1);
    assert_eq!(
        shown.len(),
        summary.1.len(),
        "a CSR was shown twice: {:?}",
        summary.1
    );
    assert_eq!(summary.0, "approved 2, denied 1, skipped 1");

    for (name, action) in &plan {
        let conds = conditions(cp, name);
        match *action {
            "approve" => {
                assert_eq!(conds.len(), 1, "{conds:?}");
                assert_eq!(conds[0].0, "Approved");
                assert_eq!(conds[0].1, "TlsbootApprove");
                assert_eq!(conds[0].2, "Approved by tlsboot-admin with tlsboot review.");
            }
            "force" => {
                assert_eq!(conds[0].0, "Approved");
                assert!(conds[0].2.contains("--force although these checks failed: sans-on-node, sans-not-on-other-nodes"), "{conds:?}");
            }
            "deny" => {
                assert_eq!(
                    conds,
                    vec![(
                        "Denied".to_string(),
                        "TlsbootDeny".to_string(),
                        "Denied by tlsboot-admin with tlsboot review. Reason: not one of ours"
                            .to_string()
                    )]
                );
            }
            _ => assert!(conds.is_empty(), "skipped CSR was changed: {conds:?}"),
        }
    }
    // KCM signs what was approved.
    let approved: Vec<String> = plan
        .iter()
        .filter(|(_, a)| **a == "approve")
        .map(|(n, _)| n.clone())
        .collect();
    eventually(
        "the approved CSR to be issued",
        Duration::from_secs(30),
        || kubectl_condition(cp, &approved[0]) == "Approved,Issued",
    )
    .await;
    let skipped = plan
        .iter()
        .find(|(_, a)| **a == "skip")
        .map(|(n, _)| n.clone())
        .unwrap();
    assert_eq!(kubectl_condition(cp, &skipped), "Pending");

    // --watch: the skipped CSR comes first; then a CSR created while it waits is shown.
    let n2 = n.clone();
    let ip2 = ip.clone();
    let skipped2 = skipped.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watcher = tokio::task::spawn_blocking(move || {
        let mut p = review(cp_ref, &["--watch"]);
        assert_eq!(next_csr(&mut p), skipped2);
        p.send_line("s").unwrap();
        p.exp_string("Waiting for new kubernetes.io/kubelet-serving CSRs (q + Enter to quit)...")
            .unwrap();
        tx.send(()).unwrap();
        let (_, m) = p.exp_regex(r"=== new: \S+ ===").unwrap();
        let name = next_csr(&mut p);
        assert!(m.contains(&name), "{m} vs {name}");
        p.send_line("a").unwrap();
        p.exp_string(&format!(
            "certificatesigningrequest.certificates.k8s.io/{name} approved"
        ))
        .unwrap();
        p.exp_string("Waiting for new").unwrap();
        p.send_line("q").unwrap();
        let (_, summary) = p
            .exp_regex(r"approved \d+, denied \d+, skipped \d+")
            .unwrap();
        p.exp_eof().unwrap();
        (name, summary)
    });
    tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let fresh = node_with_serving_csr(cp, &n2, &[&n2, &ip2]).await;
    let (shown, summary) = watcher.await.unwrap();
    assert_eq!(shown, fresh);
    assert_eq!(summary, "approved 1, denied 0, skipped 1");
    assert_eq!(conditions(cp, &fresh)[0].0, "Approved");

    // A reviewer who cannot read the API server's Service: `no-service-identity` is unknown,
    // and approving asks for the word `force` exactly as for a failed check.
    tlsboot(cp, &["deny", &skipped]).ok();
    let unknown = node_with_serving_csr(cp, &n, &[&n, &ip]).await;
    let (user, kc) = reviewer(cp, Lacking::GetServices).await;
    let kc_path = kc.path().to_path_buf();
    let expected = unknown.clone();
    tokio::task::spawn_blocking(move || {
        for answer in ["no", "force"] {
            let mut cmd = tlsboot_command(&kc_path);
            cmd.arg("review");
            let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
            p.exp_string("  ????  no-service-identity  could not read Service default/kubernetes")
                .unwrap();
            p.exp_string(PROMPT).unwrap();
            p.send_line("a").unwrap();
            p.exp_string(&format!(
                "refusing to approve certificate signing request \"{expected}\": 1 check could not be evaluated:"
            ))
            .unwrap();
            p.exp_string("  - no-service-identity (unknown): ").unwrap();
            p.exp_string("Approve anyway? Type 'force' to approve, anything else skips: ")
                .unwrap();
            p.send_line(answer).unwrap();
            let summary = if answer == "force" {
                p.exp_string(&format!(
                    "certificatesigningrequest.certificates.k8s.io/{expected} approved"
                ))
                .unwrap();
                "approved 1, denied 0, skipped 0"
            } else {
                p.exp_string(&format!("skipped {expected}")).unwrap();
                "approved 0, denied 0, skipped 1"
            };
            p.exp_string(summary).unwrap();
            p.exp_eof().unwrap();
        }
    })
    .await
    .unwrap();
    assert_eq!(
        conditions(cp, &unknown),
        vec![(
            "Approved".to_string(),
            "TlsbootApprove".to_string(),
            format!(
                "Approved by {user} with tlsboot review. Approved with --force although these \
                 checks could not be evaluated: no-service-identity."
            )
        )]
    );
}

#[tokio::test]
async fn review_without_a_terminal_refuses_and_points_to_approve_and_deny() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let out = tlsboot_command(cp.kubeconfig_path())
        .arg("review")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "error: `tlsboot review` is interactive and needs a terminal on stdin and stdout; use \
         `tlsboot list` to see the queue and `tlsboot approve NAME` / `tlsboot deny NAME` to decide"
    );
}
