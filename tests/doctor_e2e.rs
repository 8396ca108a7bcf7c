//! `tlsboot doctor` on a real control plane without any TLS-bootstrap RBAC: it reports
//! the missing bindings and approver, a kubelet is indeed refused; after `rbac apply`
//! and with the `tlsboot controller` daemon running a node joins, and doctor is green.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod token_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use tlsboot_harness::{
    ChildProcess, ControlPlane, Error, KubeletOptions, Options, SimKubelet, Stage,
    binaries_for_tests,
};
use token_support::*;

fn statuses(json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn kubelet_from(path: &std::path::Path, node: &str, stop_after: Stage) -> SimKubelet {
    let kc = kube::config::Kubeconfig::read_from(path).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    let mut opts = KubeletOptions::new(node);
    opts.stop_after = stop_after;
    opts.certificate_timeout = Duration::from_secs(60);
    SimKubelet::new(config, opts).unwrap()
}

#[tokio::test]
async fn doctor_finds_missing_rbac_then_a_node_joins_after_rbac_apply_and_the_daemon() {
    // Its own control plane: the shared one comes with the seed bindings applied.
    let Some(bins) = binaries_for_tests().unwrap() else {
        return;
    };
    let cp = ControlPlane::start(Options {
        binaries: Some(bins),
        seed_rbac: false,
        ..Options::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // 1. Bare cluster: doctor fails, naming each missing binding and the fix.
    let run = tlsboot(&cp, &["doctor"]);
    eprintln!("doctor on a bare cluster:\n{}", run.stdout);
    assert_eq!(run.code, 1, "{run:#?}");
    for name in [
        "rbac/node-bootstrapper",
        "rbac/nodeclient",
        "rbac/selfnodeclient",
    ] {
        assert!(
            run.stdout.contains(&format!("[FAIL] {name}")),
            "{name}:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("fix: tlsboot rbac apply"),
        "{}",
        run.stdout
    );
    let run = tlsboot(&cp, &["doctor", "-o", "json"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        statuses(&run.stdout),
        pairs(&[
            ("rbac/node-bootstrapper", "fail"),
            ("rbac/nodeclient", "fail"),
            ("rbac/selfnodeclient", "fail"),
            // KCM runs with --leader-elect=false here: no Lease at all.
            ("approver", "fail"),
            ("tokens", "warn"),
            ("csr/pending", "ok"),
            ("csr/unissued", "ok"),
            ("csr/serving", "ok"),
        ])
    );

    // 2. And indeed: a kubelet with a valid token cannot even create its CSR.
    let boot = dir.path().join("bootstrap-kubelet.conf");
    tlsboot(
        &cp,
        &[
            "token",
            "create",
            "--print-kubeconfig",
            boot.to_str().unwrap(),
        ],
    )
    .ok();
    let refused = eventually(
        "the new token to authenticate",
        Duration::from_secs(30),
        || {
            let boot = boot.clone();
            let node = cp.unique_name("refused");
            async move {
                let mut k = kubelet_from(&boot, &node, Stage::ClientCsrCreated).await;
                match k.request_client_certificate().await {
                    Err(Error::Kube(kube::Error::Api(s))) if s.code == 401 => None,
                    other => Some(other),
                }
            }
        },
    )
    .await;
    match refused {
        Err(Error::Kube(kube::Error::Api(s))) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("expected 403 creating the CSR, got {other:?}"),
    }

    // 3. rbac apply + the approver daemon: a node joins with the same kubeconfig.
    tlsboot(&cp, &["rbac", "apply"]).ok();
    let admin = cp.admin_client().unwrap();
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("tlsboot-system".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tlsboot"));
    cmd.arg("--kubeconfig").arg(cp.kubeconfig_path()).args([
        "controller",
        "--metrics-bind-address",
        "127.0.0.1:0",
    ]);
    let daemon = ChildProcess::spawn("tlsboot", cmd, &cp.dir().join("logs/tlsboot.log")).unwrap();
    let node = cp.unique_name("joined");
    let report = kubelet_from(&boot, &node, Stage::ClientCertIssued)
        .await
        .run()
        .await
        .unwrap_or_else(|e| panic!("{e}\ndaemon log:\n{}", daemon.log_tail(50)));
    assert!(report.client_issued.is_some());

    // 4. doctor is green now (the daemon holds its Lease).
    let run = eventually("doctor to pass", Duration::from_secs(30), || async {
        let run = tlsboot(&cp, &["doctor"]);
        (run.code == 0).then_some(run)
    })
    .await;
    eprintln!("doctor on a ready cluster:\n{}", run.stdout);
    assert!(!run.stdout.contains("[FAIL]"), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "system:node-bootstrapper is bound to group system:bootstrappers (ClusterRoleBinding tlsboot:node-bootstrapper)"
        ),
        "{}",
        run.stdout
    );
    let json = tlsboot(&cp, &["doctor", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["ready"], true);
    assert!(
        statuses(&json.stdout).iter().all(|(_, s)| s == "ok"),
        "{}",
        json.stdout
    );
    daemon.terminate(Duration::from_secs(10));
}
