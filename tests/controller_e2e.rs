//! The approver daemon end to end: the real `tlsboot controller` binary, running under
//! the ServiceAccount and RBAC of manifests/, against the real kube-apiserver and KCM's
//! signer, with simulated kubelets and hand-made CSRs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;

use std::time::Duration;

use controller_support::*;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Subject};
use kube::api::{Api, PostParams};
use tlsboot_harness::{ControlPlane, KubeletOptions, SimKubelet, Stage};
use tokio::sync::OnceCell;

/// One daemon for this test binary (tests run concurrently and share it).
static DAEMON: OnceCell<Daemon> = OnceCell::const_new();

async fn setup() -> Option<(&'static ControlPlane, &'static Daemon)> {
    let cp = control_plane().await?;
    let d = DAEMON
        .get_or_init(|| async {
            let sa = daemon_identity(cp).await;
            // The kubeconfig file must outlive the daemon: keep it for the whole run.
            let path = sa.path().to_owned();
            std::mem::forget(sa);
            let d = Daemon::start(cp, &path, "tlsboot-e2e", &[]);
            d.wait_ready(Duration::from_secs(60));
            d
        })
        .await;
    Some((cp, d))
}

#[tokio::test(flavor = "multi_thread")]
async fn kubelet_bootstraps_renews_and_its_serving_csr_waits_for_a_person() {
    let Some((cp, d)) = setup().await else { return };
    let (token, boot) = bootstrap(cp).await;
    let mut opts = KubeletOptions::new(cp.unique_name("worker"));
    opts.stop_after = Stage::ClientCertRotated;
    opts.wait_for_serving = false;
    opts.certificate_timeout = Duration::from_secs(60);
    let mut kubelet = SimKubelet::new(boot.config(), opts).unwrap();
    let report = kubelet
        .run()
        .await
        .unwrap_or_else(|e| panic!("{e}\ndaemon log:\n{}", d.logs()));

    let client_csr = get_csr(cp, report.client_csr.as_deref().unwrap()).await;
    assert_eq!(
        client_csr.spec.username.as_deref(),
        Some(token.user().as_str())
    );
    assert!(
        approved_with(&client_csr, NODECLIENT_MSG),
        "{:?}",
        conditions(&client_csr)
    );
    assert_eq!(conditions(&client_csr).len(), 1, "exactly one condition");
    assert!(
        client_csr.status.unwrap().certificate.is_some(),
        "KCM signed it"
    );

    let rotation = get_csr(cp, report.rotation_csr.as_deref().unwrap()).await;
    assert_eq!(
        rotation.spec.username.as_deref(),
        Some(format!("system:node:{}", report.node_name).as_str())
    );
    assert!(
        approved_with(&rotation, SELFNODECLIENT_MSG),
        "{:?}",
        conditions(&rotation)
    );

    let serving_name = report.serving_csr.clone().unwrap();
    let event = wait_event(
        cp,
        &serving_name,
        "AwaitingReview",
        Duration::from_secs(30),
        || d.logs(),
    )
    .await;
    assert!(
        event
            .note
            .unwrap_or_default()
            .contains(&format!("tlsboot approve {serving_name}"))
    );
    let serving = get_csr(cp, &serving_name).await;
    assert!(
        conditions(&serving).is_empty(),
        "serving CSRs are never approved by the daemon: {:?}",
        conditions(&serving)
    );
    // One Event per cause, even after resyncs.
    assert_eq!(events_for(cp, &serving_name).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_csr_explains_itself_then_is_approved_once_rbac_is_fixed() {
    let Some((cp, d)) = setup().await else { return };
    // A joiner identity outside system:bootstrappers: may create CSRs, not nodeclient.
    let group = cp.unique_name("tlsboot-joiners");
    let user = cp.unique_name("joiner");
    let crbs: Api<ClusterRoleBinding> = Api::all(cp.admin_client().unwrap());
    crbs.create(
        &PostParams::default(),
        &bind(
            &format!("{group}-create"),
            "system:node-bootstrapper",
            &group,
        ),
    )
    .await
    .unwrap();
    let joiner = cp.user_kubeconfig(&user, &[&group]).await.unwrap();
    let name = cp.unique_name("node-csr-refused");
    let node = cp.unique_name("node");
    let pem = node_client_pem(&node, "system:nodes");
    create_client_csr(joiner.client().unwrap(), &name, &pem).await;

    let event = wait_event(cp, &name, "NotAuthorized", Duration::from_secs(30), || {
        d.logs()
    })
    .await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains(&user), "{note}");
    assert!(
        note.contains("create certificatesigningrequests/nodeclient"),
        "{note}"
    );
    assert!(
        note.contains("system:certificates.k8s.io:certificatesigningrequests:nodeclient"),
        "{note}"
    );
    assert!(note.contains(&group), "{note}");
    assert!(conditions(&get_csr(cp, &name).await).is_empty());

    crbs.create(
        &PostParams::default(),
        &bind(
            &format!("{group}-nodeclient"),
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            &group,
        ),
    )
    .await
    .unwrap();
    // Backoff is capped at 4 s in these tests; the resync (30 s) is the backstop.
    let csr = wait_csr(
        cp,
        &name,
        Duration::from_secs(40),
        || d.logs(),
        |c| approved_with(c, NODECLIENT_MSG),
    )
    .await;
    assert_eq!(conditions(&csr).len(), 1);
    assert_eq!(
        events_for(cp, &name)
            .await
            .iter()
            .filter(|e| e.reason.as_deref() == Some("NotAuthorized"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_client_csrs_are_never_approved() {
    let Some((cp, d)) = setup().await else { return };
    let boot = bootstrap(cp).await.1.client().unwrap();
    let n = cp.unique_name("bad");
    let cn = format!("system:node:{n}");
    let cases: Vec<(String, String, Vec<&str>)> = vec![
        (
            format!("{n}-masters"),
            csr_pem(&cn, &["system:masters"], &[], true, false),
            vec!["digital signature", "client auth"],
        ),
        (
            format!("{n}-dns-san"),
            csr_pem(&cn, &["system:nodes"], &["evil.example.com"], true, false),
            vec!["digital signature", "client auth"],
        ),
        (
            format!("{n}-ip-san"),
            csr_pem(&cn, &["system:nodes"], &["10.0.0.5"], true, false),
            vec!["digital signature", "client auth"],
        ),
        (
            format!("{n}-usages"),
            csr_pem(&cn, &["system:nodes"], &[], true, true),
            vec![
                "digital signature",
                "key encipherment",
                "client auth",
                "server auth",
            ],
        ),
        (
            format!("{n}-admin-cn"),
            csr_pem("system:admin", &["system:nodes"], &[], true, false),
            vec!["digital signature", "client auth"],
        ),
    ];
    for (name, pem, usages) in &cases {
        create_csr(boot.clone(), name, pem, CLIENT_SIGNER, usages).await;
    }
    // Another node's CN, asked by a node: kube-apiserver's NodeRestriction already
    // refuses to store it (the real rule, not ours), so no approver ever sees it.
    let me = cp.unique_name("n1");
    let other = cp.unique_name("n2");
    let node1 = cp
        .user_kubeconfig(&format!("system:node:{me}"), &["system:nodes"])
        .await
        .unwrap();
    let impostor = format!("{n}-other-node");
    let pem = node_client_pem(&other, "system:nodes");
    let api: Api<k8s_openapi::api::certificates::v1::CertificateSigningRequest> =
        Api::all(node1.client().unwrap());
    let mut obj = create_csr_object(&impostor, &pem, CLIENT_SIGNER, CLIENT_USAGES);
    obj.metadata.name = Some(impostor.clone());
    let err = api.create(&PostParams::default(), &obj).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("can only create a node CSR with CN=system:node:"),
        "{err}"
    );

    // The same content from a non-node requester in group system:nodes reaches the daemon:
    // not "self" (username != CN), and system:nodes has no nodeclient binding.
    let group_member = cp.unique_name("not-a-node");
    let crbs: Api<ClusterRoleBinding> = Api::all(cp.admin_client().unwrap());
    let mut b = bind(
        &format!("{group_member}-create"),
        "system:node-bootstrapper",
        "unused",
    );
    b.subjects = Some(vec![Subject {
        kind: "User".into(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        name: group_member.clone(),
        ..Default::default()
    }]);
    crbs.create(&PostParams::default(), &b).await.unwrap();
    let member = cp
        .user_kubeconfig(&group_member, &["system:nodes"])
        .await
        .unwrap();
    create_client_csr(member.client().unwrap(), &impostor, &pem).await;

    for (name, _, _) in &cases {
        let e = wait_event(cp, name, "InvalidRequest", Duration::from_secs(30), || {
            d.logs()
        })
        .await;
        assert!(!e.note.unwrap_or_default().is_empty());
    }
    wait_event(
        cp,
        &impostor,
        "NotAuthorized",
        Duration::from_secs(30),
        || d.logs(),
    )
    .await;
    // Give any (wrong) approval time to land, across a few backoff rounds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for name in cases.iter().map(|c| c.0.clone()).chain([impostor]) {
        let csr = get_csr(cp, &name).await;
        assert!(
            conditions(&csr).is_empty(),
            "{name} must stay pending without a condition: {:?}",
            conditions(&csr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_health_report_what_happened() {
    let Some((cp, d)) = setup().await else { return };
    // Make at least one approval happen in this test itself.
    let (_token, boot) = bootstrap(cp).await;
    let mut opts = KubeletOptions::new(cp.unique_name("metrics"));
    opts.stop_after = Stage::ClientCertIssued;
    SimKubelet::new(boot.config(), opts)
        .unwrap()
        .run()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));

    assert_eq!(d.get("/healthz").map(|r| r.0), Some(200));
    assert_eq!(d.get("/readyz").map(|r| r.0), Some(200));
    let (code, body) = d.get("/metrics").unwrap();
    assert_eq!(code, 200);
    let approved = d.metric(&format!(
        "tlsboot_csr_decisions_total{{signer=\"{CLIENT_SIGNER}\",outcome=\"approved\"}}"
    ));
    assert!(approved >= 1.0, "approved counter {approved}\n{body}");
    assert!(
        d.metric("tlsboot_subject_access_review_duration_seconds_count") >= 1.0,
        "{body}"
    );
    assert!(
        d.metric("tlsboot_csr_create_to_approved_seconds_count") >= 1.0,
        "{body}"
    );
    assert_eq!(d.metric("tlsboot_leader "), 1.0, "{body}");
    assert!(
        body.contains("tlsboot_csr_pending{signer=\"kubernetes.io/kubelet-serving\"}"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
}
