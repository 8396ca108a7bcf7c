//! A control plane of its own: KCM's csrapproving + tokencleaner, restarts of
//! etcd and kube-apiserver on the same ports and data, and clean teardown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use tlsboot_harness::token::token_secret;
use tlsboot_harness::{
    BootstrapToken, BootstrapTokenOptions, Component, ControlPlane, KubeletOptions, Options,
    SimKubelet, Stage, binaries_for_tests,
};

async fn bootstrap_one(cp: &ControlPlane, node: &str) -> String {
    let token = cp
        .create_bootstrap_token(&BootstrapTokenOptions::default())
        .await
        .unwrap();
    let boot = cp.bootstrap_kubeconfig(&token).await.unwrap();
    let mut opts = KubeletOptions::new(node);
    opts.stop_after = Stage::ClientCertIssued;
    let mut k = SimKubelet::new(boot.config(), opts).unwrap();
    // Nobody approves by hand: KCM's own csrapproving (SAR against the seed RBAC).
    let report = k
        .run()
        .await
        .expect("KCM's approver and signer issue the certificate");
    report.client_csr.unwrap()
}

#[tokio::test]
async fn own_control_plane_approves_restarts_and_cleans_up() {
    let Some(bins) = binaries_for_tests().expect("control-plane binaries") else {
        return;
    };
    let cp = ControlPlane::start(Options {
        binaries: Some(bins),
        csrapproving: true,
        tokencleaner: true,
        seed_rbac: true,
        ..Options::default()
    })
    .await
    .expect("start");
    let t = cp.startup_times();
    eprintln!("start-up: {t:?}");
    let first = bootstrap_one(&cp, "kcm-approved-0").await;

    // tokencleaner deletes an expired token Secret.
    let admin = cp.admin_client().unwrap();
    let secrets = Api::<Secret>::namespaced(admin.clone(), "kube-system");
    let expired = BootstrapToken::generate().unwrap();
    let mut secret = token_secret(&expired, &BootstrapTokenOptions::default());
    secret.data.as_mut().unwrap().insert(
        "expiration".into(),
        ByteString(b"2020-01-01T00:00:00Z".to_vec()),
    );
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while secrets
        .get_opt(&expired.secret_name())
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "tokencleaner did not delete the expired token"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A kubelet waits for its serving certificate (never auto-approved)
    // across the restarts below, as a real one would.
    let token = cp
        .create_bootstrap_token(&BootstrapTokenOptions::default())
        .await
        .unwrap();
    let boot = cp.bootstrap_kubeconfig(&token).await.unwrap();
    let mut waiting =
        SimKubelet::new(boot.config(), KubeletOptions::new("across-restarts")).unwrap();
    waiting.request_client_certificate().await.unwrap();
    waiting.wait_client_certificate().await.unwrap();
    waiting.register_node().await.unwrap();
    let serving = waiting.request_serving_certificate().await.unwrap();
    let waiter = tokio::spawn(async move { waiting.wait_serving_certificate().await });

    // Fault injection: etcd and kube-apiserver come back on the same ports and data.
    let old_etcd = cp.pid(Component::Etcd).unwrap();
    cp.stop(Component::Etcd);
    assert!(!cp.is_running(Component::Etcd));
    assert!(!std::path::Path::new(&format!("/proc/{old_etcd}")).exists());
    cp.start_component(Component::Etcd).await.unwrap();
    cp.wait_ready().await.unwrap();
    let t = Instant::now();
    cp.terminate(Component::ApiServer, Duration::from_secs(3));
    eprintln!(
        "kube-apiserver stopped in {:.1?} after SIGTERM",
        t.elapsed()
    );
    assert!(!cp.is_running(Component::ApiServer));
    cp.start_component(Component::ApiServer).await.unwrap();
    let admin = cp.admin_client().unwrap();
    let csrs = Api::<CertificateSigningRequest>::all(admin);
    assert!(
        csrs.get_opt(&first).await.unwrap().is_some(),
        "data survived the restarts"
    );
    bootstrap_one(&cp, "kcm-approved-1").await;
    common::approve_as(&cp.admin_client().unwrap(), &serving)
        .await
        .unwrap();
    waiter
        .await
        .unwrap()
        .expect("the serving certificate arrives despite the restarts");

    // Teardown leaves nothing behind.
    let pids: Vec<u32> = [
        Component::Etcd,
        Component::ApiServer,
        Component::ControllerManager,
    ]
    .into_iter()
    .map(|c| cp.pid(c).unwrap())
    .collect();
    let dirs = [cp.dir().to_path_buf(), cp.etcd_data_dir().to_path_buf()];
    drop(cp);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} survived"
        );
    }
    for d in dirs {
        assert!(!d.exists(), "{} survived", d.display());
    }
}

#[tokio::test]
async fn a_failed_start_reports_the_process_log() {
    let Some(bins) = binaries_for_tests().expect("control-plane binaries") else {
        return;
    };
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let err = ControlPlane::start(Options {
        binaries: Some(bins),
        etcd_args: vec![format!("--listen-client-urls=http://127.0.0.1:{port}")],
        ..Options::default()
    })
    .await
    .expect_err("etcd cannot bind a taken port");
    let tlsboot_harness::Error::ProcessExited {
        process, log, tail, ..
    } = &err
    else {
        panic!("unexpected error: {err}");
    };
    assert_eq!(*process, "etcd");
    assert!(tail.contains("address already in use"), "{tail}");
    assert!(
        log.exists(),
        "the log named in the error is kept: {}",
        log.display()
    );
    let _ = std::fs::remove_dir_all(log.parent().unwrap().parent().unwrap());
}
