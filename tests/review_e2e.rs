//! `tlsboot list | inspect | approve | deny` against the real control plane, with the real
//! kubectl as the other side: serving CSRs made by a simulated kubelet or by a node identity,
//! signed by KCM's real csrsigning controller once approved.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod review_support;

use std::process::Stdio;
use std::time::Duration;

use review_support::*;
use tlsboot_harness::{BootstrapTokenOptions, KubeletOptions, SimKubelet};

const ADMIN: &str = "tlsboot-admin";

#[tokio::test]
async fn simulated_kubelet_serving_csr_is_listed_inspected_approved_and_issued() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let node = cp.unique_name("kubelet");
    let ip = node_ip(&node);
    let token = cp
        .create_bootstrap_token(&BootstrapTokenOptions::default())
        .await
        .unwrap();
    let bootstrap = cp.bootstrap_kubeconfig(&token).await.unwrap();
    let mut opts = KubeletOptions::new(&node);
    opts.internal_ip = ip;
    let mut kubelet = SimKubelet::new(bootstrap.config(), opts).unwrap();

    // The bootstrap client CSR: nobody auto-approves it here, so approving a named client CSR
    // with tlsboot is part of the path (its checks pass).
    let client_csr = kubelet.request_client_certificate().await.unwrap();
    let listed = tlsboot(cp, &["list", "--signer", "kubelet-client"]).ok();
    let r = row(&listed.stdout, &client_csr).unwrap_or_else(|| panic!("{listed:#?}"));
    assert_eq!(r[3], format!("system:bootstrap:{}", token.id));
    assert_eq!(
        r[4], node,
        "NODE comes from the CN for a bootstrap requester"
    );
    assert_eq!(&r[5..], ["<none>", "ok", "Pending"]);
    let approved = tlsboot(cp, &["approve", &client_csr]).ok();
    assert_eq!(
        approved.stdout,
        format!("certificatesigningrequest.certificates.k8s.io/{client_csr} approved\n")
    );
    kubelet.wait_client_certificate().await.unwrap();
    kubelet.register_node().await.unwrap();
    let serving = kubelet.request_serving_certificate().await.unwrap();

    // list: the pending queue holds the serving CSR with its checks, not the decided client CSR.
    let listed = tlsboot(cp, &["list"]).ok();
    assert!(
        listed.stdout.starts_with(
            "NAME   " // kubectl's tabwriter layout: header first, 3-space gaps
        ),
        "{}",
        listed.stdout
    );
    let header: Vec<&str> = listed
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "NODE",
            "SANS",
            "CHECKS",
            "CONDITION"
        ]
    );
    let r = row(&listed.stdout, &serving).unwrap_or_else(|| panic!("{}", listed.stdout));
    assert_eq!(r[2], SERVING);
    assert_eq!(r[3], format!("system:node:{node}"));
    assert_eq!(r[4], node);
    assert_eq!(r[5], format!("{node},{ip}"));
    assert_eq!(r[6], "ok");
    assert_eq!(r[7], "Pending");
    assert!(
        row(&listed.stdout, &client_csr).is_none(),
        "decided CSRs are not in the queue"
    );
    let all = tlsboot(cp, &["list", "--all", "-o", "name"]).ok();
    for n in [&client_csr, &serving] {
        assert!(
            all.stdout
                .lines()
                .any(|l| l == format!("certificatesigningrequest.certificates.k8s.io/{n}")),
            "{}",
            all.stdout
        );
    }

    // inspect: the SAN comparison with the Node's status.addresses.
    let shown = tlsboot(cp, &["inspect", &serving]).ok();
    let text = &shown.stdout;
    assert!(
        text.contains(&format!("Requestor:          system:node:{node}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Subject alternative names (against Node {node} status.addresses):"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("DNS:{node}")), "{text}");
    let ip_line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("IP:{ip}")))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        ip_line.ends_with(&format!("match (Node {node})")),
        "{ip_line}"
    );
    assert!(text.contains("Key:                ECDSA P-256"), "{text}");
    assert!(text.contains("Garbage collection: in 23h"), "{text}");
    assert!(text.contains("Checks: ok"), "{text}");
    assert!(text.contains("  PASS  sans-on-node\n"), "{text}");

    // approve: tlsboot writes the condition, KCM's signer issues, kubectl sees Approved,Issued.
    let approved = tlsboot(cp, &["approve", &serving]).ok();
    assert_eq!(
        approved.stdout,
        format!("certificatesigningrequest.certificates.k8s.io/{serving} approved\n")
    );
    kubelet.wait_serving_certificate().await.unwrap();
    assert_eq!(kubectl_condition(cp, &serving), "Approved,Issued");
    let conds = conditions(cp, &serving);
    assert_eq!(conds.len(), 1, "{conds:?}");
    assert_eq!(conds[0].0, "Approved");
    assert_eq!(conds[0].1, "TlsbootApprove");
    assert_eq!(
        conds[0].2,
        format!("Approved by {ADMIN} with tlsboot approve.")
    );
    // tlsboot's CONDITION column is kubectl's.
    let all = tlsboot(cp, &["list", "--all"]).ok();
    assert_eq!(row(&all.stdout, &serving).unwrap()[7], "Approved,Issued");
}

#[tokio::test]
async fn serving_csr_with_another_nodes_ip_is_refused_without_force() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let a = cp.unique_name("node-a");
    let b = cp.unique_name("node-b");
    create_node(cp, &a, node_ip(&a)).await;
    create_node(cp, &b, node_ip(&b)).await;
    let b_ip = node_ip(&b).to_string();
    let csr = node_with_serving_csr(cp, &a, &[&a, &b_ip]).await;

    let listed = tlsboot(cp, &["list", "-o", "wide"]).ok();
    let r = row(&listed.stdout, &csr).unwrap_or_else(|| panic!("{}", listed.stdout));
    assert_eq!(r[6..8], ["2", "failed"]);
    assert_eq!(
        r.last().copied(),
        Some("sans-on-node,sans-not-on-other-nodes")
    );

    let shown = tlsboot(cp, &["inspect", &csr]).ok();
    let line = shown
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("IP:{b_ip}")))
        .unwrap();
    assert!(
        line.ends_with(&format!("NOT ON NODE {a}; also an address of Node {b}")),
        "{line}"
    );

    let refused = tlsboot(cp, &["approve", &csr]).failed();
    assert_eq!(refused.stdout, "");
    assert!(
        refused.stderr.contains(&format!(
            "error: refusing to approve certificate signing request \"{csr}\": 2 checks failed:"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&format!(
            "  - sans-on-node: not addresses of Node {a}: IP:{b_ip}"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&format!(
            "  - sans-not-on-other-nodes: IP:{b_ip} is an address of {b}"
        )),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(kubectl_condition(cp, &csr), "Pending");

    // --dry-run goes through admission without storing; --force then approves and says so.
    let dry = tlsboot(cp, &["approve", &csr, "--force", "--dry-run"]).ok();
    assert_eq!(
        dry.stdout,
        format!("certificatesigningrequest.certificates.k8s.io/{csr} approved (server dry run)\n")
    );
    assert_eq!(kubectl_condition(cp, &csr), "Pending");
    tlsboot(cp, &["approve", &csr, "--force"]).ok();
    let conds = conditions(cp, &csr);
    assert_eq!(conds.len(), 1);
    assert_eq!(
        conds[0].2,
        format!(
            "Approved by {ADMIN} with tlsboot approve. Approved with --force although these \
             checks failed: sans-on-node, sans-not-on-other-nodes."
        )
    );
}

#[tokio::test]
async fn serving_csr_naming_the_api_server_is_refused() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("node-api");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    // The harness's service CIDR is 10.0.0.0/24: the `kubernetes` Service is 10.0.0.1.
    let names = node_with_serving_csr(cp, &n, &[&n, &ip, "kubernetes.default.svc"]).await;
    let service_ip = node_with_serving_csr(cp, &n, &[&n, &ip, "10.0.0.1"]).await;

    let refused = tlsboot(cp, &["approve", &names, &service_ip]).failed();
    assert_eq!(refused.stdout, "");
    let err = &refused.stderr;
    assert!(
        err.contains(
            "  - no-api-server-identity: DNS SAN \"kubernetes.default.svc\" names the Kubernetes API server"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "  - no-service-identity: IP:10.0.0.1 is the ClusterIP of the API server's Service default/kubernetes"
        ),
        "{err}"
    );
    assert_eq!(kubectl_condition(cp, &names), "Pending");
    assert_eq!(kubectl_condition(cp, &service_ip), "Pending");

    let shown = tlsboot(cp, &["inspect", &names]).ok();
    assert!(
        shown.stdout.contains(&format!(
            "DNS:kubernetes.default.svc  NOT ON NODE {n}; FLAGGED: names the Kubernetes API server"
        )),
        "{}",
        shown.stdout
    );
}

#[tokio::test]
async fn approve_after_deny_fails_and_repeats_add_no_condition() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("node-rep");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    // Its checks fail too (the API server's Service IP): the Denied condition must still be
    // what approve reports, as kubectl would.
    let denied = node_with_serving_csr(cp, &n, &[&n, &ip, "10.0.0.1"]).await;
    let twice = node_with_serving_csr(cp, &n, &[&n, &ip]).await;

    let d = tlsboot(cp, &["deny", &denied, "--reason", "not our node"]).ok();
    assert_eq!(
        d.stdout,
        format!("certificatesigningrequest.certificates.k8s.io/{denied} denied\n")
    );
    assert_eq!(
        conditions(cp, &denied),
        vec![(
            "Denied".to_string(),
            "TlsbootDeny".to_string(),
            format!("Denied by {ADMIN} with tlsboot deny. Reason: not our node")
        )]
    );
    // kubectl's error, word for word, from both tools; --force does not override it.
    let ours = tlsboot(cp, &["approve", &denied]).failed();
    let forced = tlsboot(cp, &["approve", &denied, "--force"]).failed();
    assert_eq!(ours.stderr, forced.stderr);
    let theirs = kubectl(cp, &["certificate", "approve", &denied]).failed();
    let expected = format!("error: certificate signing request \"{denied}\" is already Denied");
    assert_eq!(ours.stderr.trim_end(), expected, "{ours:#?}");
    assert_eq!(theirs.stderr.trim_end(), expected, "{theirs:#?}");
    assert_eq!(kubectl_condition(cp, &denied), "Denied");

    // Approve twice (and then kubectl on top): still exactly one condition.
    let first = tlsboot(cp, &["approve", &twice]).ok();
    let second = tlsboot(cp, &["approve", &twice]).ok();
    let line = format!("certificatesigningrequest.certificates.k8s.io/{twice} approved\n");
    assert_eq!(first.stdout, line);
    assert_eq!(
        second.stdout, line,
        "kubectl prints success when already approved"
    );
    assert!(second.stderr.contains("already approved"), "{second:#?}");
    kubectl(cp, &["certificate", "approve", &twice]).ok();
    let conds = conditions(cp, &twice);
    assert_eq!(conds.len(), 1, "{conds:?}");
    assert_eq!(conds[0].1, "TlsbootApprove");
    // Denying an approved CSR is kubectl's opposite-condition error too.
    let deny = tlsboot(cp, &["deny", &twice]).failed();
    assert_eq!(
        deny.stderr.trim_end(),
        format!("error: certificate signing request \"{twice}\" is already Approved")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_approvals_from_two_processes_write_one_condition() {
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    use kube::api::{Api, PostParams};
    use tlsboot_harness::faultproxy::{FaultProxy, Faults, kubeconfig_token};
    let Some(cp) = control_plane().await else {
        return;
    };
    // Both processes talk to kube-apiserver through the fault proxy, which holds every
    // approval PUT for 3 s: both have read the CSR before either write arrives, so the
    // second write meets kube-apiserver's own 409, and the proxy's log shows it. The
    // proxy forwards bearer tokens only: the approver is a ServiceAccount, cluster-admin.
    let ns = cp.unique_name("review-race");
    let sa = cp
        .service_account_kubeconfig(&ns, "approver")
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(cp.admin_client().unwrap())
        .create(
            &PostParams::default(),
            &tlsboot_harness::group_binding(
                &ns,
                "cluster-admin",
                &format!("system:serviceaccounts:{ns}"),
            ),
        )
        .await
        .unwrap();
    let faults = Faults {
        approval_latency: Duration::from_secs(3),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(cp, faults).await.unwrap();
    let token = kubeconfig_token(sa.path()).unwrap();
    let kc = proxy
        .kubeconfig(&cp.dir().join(format!("{ns}.kubeconfig")), &ns, &token)
        .await
        .unwrap();
    let handle = proxy.handle();

    let n = cp.unique_name("node-race");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    for round in 0..4 {
        let csr = node_with_serving_csr(cp, &n, &[&n, &ip]).await;
        // Two real processes started back to back; the one whose write comes second
        // meets a 409, re-reads, and finds the condition already there.
        let spawn = || {
            tlsboot_command(kc.path())
                .args(["approve", &csr])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (p1, p2) = (spawn(), spawn());
        // The proxy runs on this runtime: wait on another thread.
        let (o1, o2) = tokio::task::block_in_place(|| {
            (
                p1.wait_with_output().unwrap(),
                p2.wait_with_output().unwrap(),
            )
        });
        for o in [&o1, &o2] {
            assert!(o.status.success(), "round {round}: {o:?}");
            assert_eq!(
                String::from_utf8_lossy(&o.stdout),
                format!("certificatesigningrequest.certificates.k8s.io/{csr} approved\n")
            );
        }
        let conds = conditions(cp, &csr);
        let approved = conds.iter().filter(|c| c.0 == "Approved").count();
        assert_eq!(approved, 1, "round {round}: {conds:?}");
        assert_eq!(conds.len(), 1, "round {round}: {conds:?}");
        // The conflict path ran: one write accepted, one refused by kube-apiserver itself.
        let writes = handle.approval_requests().remove(&csr).unwrap_or_default();
        let answered = |code: u16| {
            writes
                .iter()
                .filter(|w| w.status == code && !w.injected)
                .count()
        };
        assert_eq!(answered(200), 1, "round {round}: {writes:?}");
        assert_eq!(
            answered(409),
            1,
            "round {round}: no write met a conflict: {writes:?}"
        );
        assert_eq!(writes.len(), 2, "round {round}: {writes:?}");
    }
}

#[tokio::test]
async fn users_without_the_approve_permission_are_told_what_is_missing() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("node-perm");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    let csr = node_with_serving_csr(cp, &n, &[&n, &ip]).await;
    let read = || {
        vec![
            rule(
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
                &["get", "list", "watch"],
                &[],
            ),
            rule(&[""], &["nodes"], &["get", "list"], &[]),
            rule(&[""], &["services"], &["get"], &["kubernetes"]),
        ]
    };

    // Can read, cannot update approval nor approve for the signer.
    let reader = cp.unique_name("reader");
    bind(cp, &reader, read()).await;
    let kc = cp.user_kubeconfig(&reader, &[]).await.unwrap();
    let run = tlsboot_with(kc.path(), &["approve", &csr]).failed();
    let err = &run.stderr;
    assert!(
        err.contains(&format!(
            "error: forbidden: user \"{reader}\" may not approve certificate signing request \"{csr}\" (signer {SERVING}): missing permissions"
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "  - `update` on `certificatesigningrequests/approval` (API group certificates.k8s.io)"
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "  - `approve` on `signers` named \"{SERVING}\" or \"kubernetes.io/*\" (API group certificates.k8s.io)"
        )),
        "{err}"
    );
    assert!(err.contains("server said: "), "{err}");

    // May update approval but not approve for this signer: CertificateApproval admission
    // refuses, and only the signer permission is listed.
    let updater = cp.unique_name("updater");
    let mut rules = read();
    rules.push(rule(
        &["certificates.k8s.io"],
        &["certificatesigningrequests/approval"],
        &["update"],
        &[],
    ));
    rules.push(rule(
        &["certificates.k8s.io"],
        &["signers"],
        &["approve"],
        &["kubernetes.io/kube-apiserver-client-kubelet"],
    ));
    bind(cp, &updater, rules).await;
    let kc = cp.user_kubeconfig(&updater, &[]).await.unwrap();
    let run = tlsboot_with(kc.path(), &["deny", &csr]).failed();
    let err = &run.stderr;
    assert!(err.contains("may not deny"), "{err}");
    assert!(err.contains("missing permission\n"), "{err}");
    assert!(!err.contains("`update` on"), "{err}");
    assert!(
        err.contains(&format!("`approve` on `signers` named \"{SERVING}\"")),
        "{err}"
    );
    assert!(
        err.contains("user not permitted to approve requests with signerName"),
        "the admission plugin's message is kept: {err}"
    );

    // Cannot even read CSRs.
    let nobody = cp.unique_name("nobody");
    let kc = cp.user_kubeconfig(&nobody, &[]).await.unwrap();
    let run = tlsboot_with(kc.path(), &["approve", &csr]).failed();
    assert!(
        run.stderr.contains(&format!(
            "error: forbidden: cannot read certificate signing request \"{csr}\": needs `get` on `certificatesigningrequests`"
        )),
        "{}",
        run.stderr
    );
    let run = tlsboot_with(kc.path(), &["list"]).failed();
    assert!(
        run.stderr
            .contains("error: forbidden: cannot list certificate signing requests: needs `list`"),
        "{}",
        run.stderr
    );
    assert_eq!(kubectl_condition(cp, &csr), "Pending");
}

#[tokio::test]
async fn errors_people_hit_are_explained() {
    let Some(cp) = control_plane().await else {
        return;
    };
    // Not found, alongside a name that works: the others are still done, exit status 1.
    let n = cp.unique_name("node-err");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    let csr = node_with_serving_csr(cp, &n, &[&n, &ip]).await;
    let run = tlsboot(cp, &["approve", "no-such-csr", &csr, "--dry-run"]).failed();
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        "Error from server (NotFound): certificatesigningrequests.certificates.k8s.io \"no-such-csr\" not found"
    );
    assert_eq!(
        run.stdout,
        format!("certificatesigningrequest.certificates.k8s.io/{csr} approved (server dry run)\n")
    );
    let run = tlsboot(cp, &["inspect", "no-such-csr"]).failed();
    assert!(run.stderr.contains("(NotFound)"), "{run:#?}");

    // A request the API server accepts but tlsboot's decoder refuses (ECDSA P-521: Go parses
    // it, tlsboot's allow-list has no P-521), created by the admin.
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/policy/p521.csr.pem"
    ))
    .unwrap();
    let bad = create_csr(
        cp.admin_client().unwrap(),
        &pem,
        SERVING,
        &["digital signature", "server auth"],
    )
    .await;
    let run = tlsboot(cp, &["approve", &bad]).failed();
    assert!(
        run.stderr.contains(&format!(
            "error: refusing to approve certificate signing request \"{bad}\": spec.request cannot be decoded: "
        )),
        "{}",
        run.stderr
    );
    let shown = tlsboot(cp, &["inspect", &bad]).ok();
    assert!(
        shown
            .stdout
            .contains("Request:            CANNOT BE DECODED: "),
        "{}",
        shown.stdout
    );
    let listed = tlsboot(cp, &["list", "-o", "wide"]).ok();
    let r = row(&listed.stdout, &bad).unwrap();
    assert!(r.contains(&"<malformed>"), "{r:?}");
    assert!(
        r.contains(&"public-key"),
        "the failed parse stage is named: {r:?}"
    );

    // Unreachable: a kubeconfig for a port nothing listens on.
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = dir.path().join("dead.kubeconfig");
    let kc = tlsboot_harness::kubeconfig::make_kubeconfig(
        &format!("https://127.0.0.1:{port}"),
        cp.ca_pem(),
        "nobody",
        &tlsboot_harness::Credential::Token("x".into()),
    );
    tlsboot_harness::kubeconfig::write_kubeconfig(&dead, &kc).unwrap();
    let run = tlsboot_with(&dead, &["list"]).failed();
    // (kube-client's own tracing may log the connect error first; ours is the `error:` line.)
    assert!(
        run.stderr.lines().any(|l| l.starts_with(&format!(
            "error: cannot reach the Kubernetes API server at https://127.0.0.1:{port}/: "
        )) && l.contains("Connection refused")),
        "{}",
        run.stderr
    );

    // No kubeconfig at all, and not in a cluster.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tlsboot"))
        .args(["approve", "x"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: no kubeconfig found and not running in a cluster: pass --kubeconfig FILE or set KUBECONFIG"),
        "{err}"
    );
}

/// `list --watch -o name` prints every CSR exactly once: one listed before the watch started
/// (the watch's initial list repeats it), one created after the watch is established (proven by
/// its stderr line, not by waiting), and that one again after it changed (approved: its name
/// line would be the same). Every name on stdout, other tests' CSRs too, appears once.
#[tokio::test]
async fn list_watch_prints_each_csr_once() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("node-watch");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    let before = node_with_serving_csr(cp, &n, &[&n, &ip]).await;
    let mut watch = Watch::spawn(tlsboot_command(cp.kubeconfig_path()).args([
        "list",
        "--watch",
        "--signer",
        "kubelet-serving",
        "-o",
        "name",
    ]));
    watch.wait_for(Stream::Stderr, tlsboot::review::list::WATCHING);
    let after = node_with_serving_csr(cp, &n, &[&n, &ip]).await;
    let name = |csr: &str| format!("certificatesigningrequest.certificates.k8s.io/{csr}");
    watch.wait_for(Stream::Stdout, &name(&after));
    tlsboot(cp, &["approve", &after]).ok();
    // A CSR created after the approval: once it is printed, the approval's event (earlier on
    // the same watch) has been handled too.
    let last = node_with_serving_csr(cp, &n, &[&n, &ip]).await;
    watch.wait_for(Stream::Stdout, &name(&last));
    let stdout = watch.stop();
    for csr in [&before, &after, &last] {
        let times = stdout.iter().filter(|l| **l == name(csr)).count();
        assert_eq!(times, 1, "{csr} printed {times} times; stdout: {stdout:#?}");
    }
    let mut distinct = stdout.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        stdout.len(),
        "a name printed twice: {stdout:#?}"
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// A running `tlsboot … --watch` whose output lines are read as they come; killed when dropped.
struct Watch {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<(Stream, String)>,
    seen: Vec<(Stream, String)>,
}

impl Watch {
    fn spawn(cmd: &mut std::process::Command) -> Watch {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (stream, pipe) in [
            (
                Stream::Stdout,
                Box::new(out) as Box<dyn std::io::Read + Send>,
            ),
            (Stream::Stderr, Box::new(err)),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                use std::io::BufRead as _;
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send((stream, line)).is_err() {
                        return;
                    }
                }
            });
        }
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until `want` arrives on `stream`; fails after 60 s or when the process ends.
    fn wait_for(&mut self, stream: Stream, want: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.0 == stream && line.1 == want;
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(e) => panic!(
                    "no {stream:?} line {want:?} ({e}; exited: {:?}); saw {:#?}",
                    self.child.try_wait(),
                    self.seen
                ),
            }
        }
    }

    /// Kills the process and returns every stdout line it printed.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The readers end at EOF; everything they sent is in the channel.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        self.seen
            .iter()
            .filter(|(s, _)| *s == Stream::Stdout)
            .map(|(_, l)| l.clone())
            .collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn hostile_csr_strings_are_escaped_on_the_terminal() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("node-esc");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    // A clear-screen escape sequence in a DNS SAN (Go's parser accepts any ASCII there), and a
    // right-to-left override in a condition message: neither reaches the terminal raw.
    let csr = node_with_serving_csr(cp, &n, &[&n, &ip, "x\u{1b}[2Jy.example"]).await;
    for args in [
        vec!["list"],
        vec!["inspect", csr.as_str()],
        vec!["approve", csr.as_str()],
    ] {
        let run = tlsboot(cp, &args);
        for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains('\u{1b}'),
                "{args:?} wrote a raw ESC to {what}: {text:?}"
            );
        }
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains("x\\u{1b}[2Jy.example"), "{args:?}: {all}");
    }
    tlsboot(cp, &["deny", &csr, "--reason", "evil\u{202e}txt.exe"]).ok();
    let shown = tlsboot(cp, &["inspect", &csr]).ok();
    assert!(!shown.stdout.contains('\u{202e}'), "{}", shown.stdout);
    assert!(
        shown.stdout.contains("evil\\u{202e}txt.exe"),
        "{}",
        shown.stdout
    );
}

/// The one `ROW` cells of `tlsboot list -o wide` for `csr`, run as `kc`.
fn wide_row(kc: &std::path::Path, signer: &str, csr: &str) -> Vec<String> {
    let listed = tlsboot_with(kc, &["list", "--signer", signer, "-o", "wide"]).ok();
    row(&listed.stdout, csr)
        .unwrap_or_else(|| panic!("{csr} not listed: {listed:#?}"))
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// `(status, detail)` of check `name` in `tlsboot inspect NAME -o json`, run as `kc`.
fn json_check(kc: &std::path::Path, csr: &str, name: &str) -> (String, String) {
    let run = tlsboot_with(kc, &["inspect", csr, "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let c = v[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {}", run.stdout));
    (
        c["status"].as_str().unwrap().to_owned(),
        c["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A serving CSR whose every check passes for the admin, as a reviewer who cannot list Nodes:
/// `sans-not-on-other-nodes` is unknown, and that blocks `approve` until `--force`.
#[tokio::test]
async fn unknown_other_nodes_check_blocks_approval_until_forced() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("node-unk-list");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    let csr = node_with_serving_csr(cp, &n, &[&n, &ip]).await;
    assert_eq!(
        wide_row(cp.kubeconfig_path(), "kubelet-serving", &csr)[6],
        "ok"
    );

    let (user, kc) = reviewer(cp, Lacking::ListNodes).await;
    let r = wide_row(kc.path(), "kubelet-serving", &csr);
    assert_eq!(r[6..8], ["1", "unknown"], "{r:?}");
    assert_eq!(r.last().unwrap(), "sans-not-on-other-nodes(unknown)");
    let shown = tlsboot_with(kc.path(), &["inspect", &csr]).ok();
    let line = shown
        .stdout
        .lines()
        .find(|l| l.starts_with("  ????  sans-not-on-other-nodes "))
        .unwrap_or_else(|| panic!("{}", shown.stdout));
    assert!(
        line.ends_with(&format!(
            " could not list Nodes: nodes is forbidden: User \"{user}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        )),
        "{line}"
    );
    assert!(
        shown.stdout.contains(
            "Verdict: 1 check could not be evaluated: `tlsboot approve` refuses it without --force"
        ),
        "{}",
        shown.stdout
    );
    let (status, _) = json_check(kc.path(), &csr, "sans-not-on-other-nodes");
    assert_eq!(status, "unknown");

    let refused = tlsboot_with(kc.path(), &["approve", &csr]).failed();
    let err = &refused.stderr;
    assert_eq!(refused.stdout, "");
    assert!(
        err.contains(&format!(
            "error: refusing to approve certificate signing request \"{csr}\": 1 check could not be evaluated:\n  - sans-not-on-other-nodes (unknown): could not list Nodes: nodes is forbidden: User \"{user}\" cannot list resource \"nodes\""
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "  - sans-not-on-other-nodes: `list` on `nodes`\n(use --force to approve it anyway)"
        ),
        "{err}"
    );
    assert_eq!(kubectl_condition(cp, &csr), "Pending");

    tlsboot_with(kc.path(), &["approve", &csr, "--force"]).ok();
    assert_eq!(
        conditions(cp, &csr),
        vec![(
            "Approved".to_string(),
            "TlsbootApprove".to_string(),
            format!(
                "Approved by {user} with tlsboot approve. Approved with --force although these \
                 checks could not be evaluated: sans-not-on-other-nodes."
            )
        )]
    );
}

/// As a reviewer who cannot read the `default/kubernetes` Service, an IP SAN cannot be compared
/// with its ClusterIP: `no-service-identity` is unknown and blocks until `--force`.
#[tokio::test]
async fn unknown_service_check_blocks_approval_until_forced() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("node-unk-svc");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    let csr = node_with_serving_csr(cp, &n, &[&n, &ip]).await;
    let failing = node_with_serving_csr(cp, &n, &[&n, &ip, "10.9.9.9"]).await;

    let (user, kc) = reviewer(cp, Lacking::GetServices).await;
    let r = wide_row(kc.path(), "kubelet-serving", &csr);
    assert_eq!(r[6..8], ["1", "unknown"], "{r:?}");
    let r = wide_row(kc.path(), "kubelet-serving", &failing);
    assert_eq!(r[6..9], ["1", "failed,", "1"], "{r:?}");
    assert_eq!(
        r.last().unwrap(),
        "sans-on-node,no-service-identity(unknown)"
    );

    let refused = tlsboot_with(kc.path(), &["approve", &csr]).failed();
    assert!(
        refused.stderr.contains(&format!(
            "  - no-service-identity (unknown): could not read Service default/kubernetes to compare IP SANs: services \"kubernetes\" is forbidden: User \"{user}\" cannot get resource \"services\""
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(
            "  - no-service-identity: `get` on `services` named \"kubernetes\" in namespace \"default\""
        ),
        "{}",
        refused.stderr
    );
    let refused = tlsboot_with(kc.path(), &["approve", &failing]).failed();
    assert!(
        refused
            .stderr
            .contains("1 check failed and 1 could not be evaluated:\n  - sans-on-node: "),
        "{}",
        refused.stderr
    );
    assert_eq!(kubectl_condition(cp, &csr), "Pending");
    assert_eq!(kubectl_condition(cp, &failing), "Pending");

    tlsboot_with(kc.path(), &["approve", &csr, &failing, "--force"]).ok();
    assert_eq!(
        conditions(cp, &csr)[0].2,
        format!(
            "Approved by {user} with tlsboot approve. Approved with --force although these checks \
             could not be evaluated: no-service-identity."
        )
    );
    assert_eq!(
        conditions(cp, &failing)[0].2,
        format!(
            "Approved by {user} with tlsboot approve. Approved with --force although these checks \
             failed: sans-on-node; and these checks could not be evaluated: no-service-identity."
        )
    );
}

/// A node renewing its client certificate, as a reviewer who may not create
/// SubjectAccessReviews: what the daemon would be told cannot be known, so
/// `requester-authorized` is unknown and blocks until `--force`.
#[tokio::test]
async fn unknown_subject_access_review_blocks_client_approval_until_forced() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("node-unk-sar");
    let id = node_identity(cp, &n).await;
    let csr = create_client_csr(id.client().unwrap(), &n).await;
    assert_eq!(
        wide_row(cp.kubeconfig_path(), "kubelet-client", &csr)[6],
        "ok"
    );

    let (user, kc) = reviewer(cp, Lacking::CreateSubjectAccessReviews).await;
    let r = wide_row(kc.path(), "kubelet-client", &csr);
    assert_eq!(r[6..8], ["1", "unknown"], "{r:?}");
    assert_eq!(r.last().unwrap(), "requester-authorized(unknown)");
    let (status, detail) = json_check(kc.path(), &csr, "requester-authorized");
    assert_eq!(status, "unknown");
    assert!(
        detail.starts_with(&format!(
            "could not ask whether \"system:node:{n}\" may create certificatesigningrequests/selfnodeclient: subjectaccessreviews.authorization.k8s.io is forbidden: User \"{user}\""
        )),
        "{detail}"
    );
    let (status, _) = json_check(kc.path(), &csr, "requester");
    assert_eq!(status, "pass");

    let refused = tlsboot_with(kc.path(), &["approve", &csr]).failed();
    assert!(
        refused.stderr.contains(&format!(
            "\"{csr}\": 1 check could not be evaluated:\n  - requester-authorized (unknown): could not ask whether"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(
            "  - requester-authorized: `create` on `subjectaccessreviews` (API group authorization.k8s.io)"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(kubectl_condition(cp, &csr), "Pending");

    tlsboot_with(kc.path(), &["approve", &csr, "--force"]).ok();
    assert_eq!(
        conditions(cp, &csr)[0].2,
        format!(
            "Approved by {user} with tlsboot approve. Approved with --force although these checks \
             could not be evaluated: requester-authorized."
        )
    );
}

/// A ServiceAccount asking for a node's client certificate: shown failing `requester` (and
/// `requester-authorized`, as nothing grants it `nodeclient`), refused without `--force`. One
/// that RBAC does grant `nodeclient` (so the daemon would approve it) still fails `requester`.
#[tokio::test]
async fn service_account_asking_for_a_node_client_certificate_is_refused() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let victim = cp.unique_name("node-victim");
    let ns = cp.unique_name("ns");
    let create_csrs = || {
        vec![rule(
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
            &["create"],
            &[],
        )]
    };
    let sa = cp
        .service_account_kubeconfig(&ns, "impostor")
        .await
        .unwrap();
    let sa_user = format!("system:serviceaccount:{ns}:impostor");
    bind(cp, &sa_user, create_csrs()).await;
    let csr = create_client_csr(sa.client().unwrap(), &victim).await;

    let admin = cp.kubeconfig_path();
    let r = wide_row(admin, "kubelet-client", &csr);
    assert_eq!(r[3], sa_user);
    assert_eq!(r[6..8], ["2", "failed"], "{r:?}");
    assert_eq!(r.last().unwrap(), "requester,requester-authorized");
    let shown = tlsboot(cp, &["inspect", &csr]).ok();
    let text = &shown.stdout;
    assert!(
        text.contains(&format!(
            "  FAIL  requester             requester \"{sa_user}\" is neither the node itself (\"system:node:{victim}\" in group \"system:nodes\") nor a bootstrap token (group \"system:bootstrappers\")\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  FAIL  requester-authorized  SubjectAccessReview denies \"{sa_user}\""
        )),
        "{text}"
    );
    assert!(
        text.contains("create certificatesigningrequests/nodeclient"),
        "{text}"
    );
    let (status, _) = json_check(admin, &csr, "requester");
    assert_eq!(status, "fail");

    let refused = tlsboot(cp, &["approve", &csr]).failed();
    assert!(
        refused.stderr.contains(&format!(
            "\"{csr}\": 2 checks failed:\n  - requester: requester \"{sa_user}\" is neither"
        )),
        "{}",
        refused.stderr
    );
    assert_eq!(kubectl_condition(cp, &csr), "Pending");
    tlsboot(cp, &["approve", &csr, "--force"]).ok();
    assert_eq!(
        conditions(cp, &csr)[0].2,
        format!(
            "Approved by {ADMIN} with tlsboot approve. Approved with --force although these checks \
             failed: requester, requester-authorized."
        )
    );

    // RBAC lets this one ask for node client certificates: the SubjectAccessReview allows,
    // the requester is still not one the recognizers are meant for.
    let granted = cp.service_account_kubeconfig(&ns, "granted").await.unwrap();
    let granted_user = format!("system:serviceaccount:{ns}:granted");
    let mut rules = create_csrs();
    rules.push(rule(
        &["certificates.k8s.io"],
        &["certificatesigningrequests/nodeclient"],
        &["create"],
        &[],
    ));
    bind(cp, &granted_user, rules).await;
    let csr = create_client_csr(granted.client().unwrap(), &victim).await;
    let r = wide_row(admin, "kubelet-client", &csr);
    assert_eq!(r[6..8], ["1", "failed"], "{r:?}");
    assert_eq!(r.last().unwrap(), "requester");
    let (status, detail) = json_check(admin, &csr, "requester-authorized");
    assert_eq!(status, "pass");
    assert_eq!(
        detail,
        format!(
            "SubjectAccessReview allows \"{granted_user}\" to create certificatesigningrequests/nodeclient"
        )
    );
    let refused = tlsboot(cp, &["approve", &csr]).failed();
    assert!(
        refused.stderr.contains("1 check failed:\n  - requester: "),
        "{}",
        refused.stderr
    );
    assert_eq!(kubectl_condition(cp, &csr), "Pending");
}

/// The two requesters csrapproving's recognizers are for pass both requester checks and are
/// approved without `--force`: a bootstrap token (`nodeclient`) and a node renewing itself
/// (`selfnodeclient`). (A node asking for another node's name is refused by the API server's
/// NodeRestriction admission already; the unit tests cover it.)
#[tokio::test]
async fn bootstrap_and_renewal_client_csrs_pass_the_requester_checks() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("node-req");
    let token = cp
        .create_bootstrap_token(&BootstrapTokenOptions::default())
        .await
        .unwrap();
    let bootstrap = cp.bootstrap_kubeconfig(&token).await.unwrap();
    let boot = create_client_csr(bootstrap.client().unwrap(), &n).await;
    let id = node_identity(cp, &n).await;
    let renewal = create_client_csr(id.client().unwrap(), &n).await;

    let admin = cp.kubeconfig_path();
    for (csr, sub, kind) in [
        (&boot, "nodeclient", "bootstrap: "),
        (&renewal, "selfnodeclient", "renewal: "),
    ] {
        assert_eq!(wide_row(admin, "kubelet-client", csr)[6], "ok");
        let (status, detail) = json_check(admin, csr, "requester");
        assert_eq!(status, "pass");
        assert!(detail.starts_with(kind), "{detail}");
        let (status, detail) = json_check(admin, csr, "requester-authorized");
        assert_eq!(status, "pass");
        assert!(
            detail.ends_with(&format!("to create certificatesigningrequests/{sub}")),
            "{detail}"
        );
    }
    let shown = tlsboot(cp, &["inspect", &boot]).ok();
    assert!(
        shown.stdout.contains(&format!(
            "  PASS  requester             bootstrap: \"system:bootstrap:{}\" is in group \"system:bootstrappers\"\n",
            token.id
        )),
        "{}",
        shown.stdout
    );

    let approved = tlsboot(cp, &["approve", &boot, &renewal]).ok();
    assert_eq!(
        approved.stdout,
        format!(
            "certificatesigningrequest.certificates.k8s.io/{boot} approved\n\
             certificatesigningrequest.certificates.k8s.io/{renewal} approved\n"
        )
    );
    for csr in [&boot, &renewal] {
        assert_eq!(
            conditions(cp, csr)[0].2,
            format!("Approved by {ADMIN} with tlsboot approve.")
        );
    }
}
