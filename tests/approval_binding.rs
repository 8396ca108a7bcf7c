//! Security: an approval is written only to the object, and for the requester, it was decided
//! for. A CSR deleted and re-created under the same name by someone else between the decision
//! and the write (the write then meets a 409 and re-reads) must not inherit the first
//! requester's SubjectAccessReview or a person's review.
//!
//! Requester A is a bootstrap token (system:bootstrappers, bound to `nodeclient` by the seed
//! RBAC); requester B is a user the admin impersonates, allowed to file CSRs but bound to
//! nothing that approves them. Each scenario goes through the real kube-apiserver behind the
//! harness fault proxy, which holds the first approval PUT (or just counts the PUTs) so the
//! test can prove the conflict/re-read branch ran.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;
mod fault_support;

use std::time::{Duration, Instant};

use controller_support::*;
use fault_support::*;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use tlsboot::cluster::{
    ApprovalDecision, ApprovalError, ApprovalOutcome, ApprovalWrite, write_approval,
};
use tlsboot::policy::{self, CsrFacts, Verdict};
use tlsboot_harness::faultproxy::{
    ApprovalHold, FaultHandle, FaultProxy, Faults, HttpMethod, WriteRecord, approval_target,
    kubeconfig_token,
};
use tlsboot_harness::{ControlPlane, UserKubeconfig};

/// The scenarios share one control plane, and the daemon of one would act on the CSRs of
/// the others: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Requester B: may file CSRs (system:node-bootstrapper), nothing approves its requests.
const INTRUDER: &str = "tlsboot-test-intruder";
const INTRUDER_GROUP: &str = "tlsboot-test:csr-filers";
const NODECLIENT: &str = "nodeclient";

fn uid(csr: &CertificateSigningRequest) -> String {
    csr.metadata.uid.clone().unwrap()
}

/// Does the authorizer let `user` in `groups` create `certificatesigningrequests/<sub>`?
async fn may_create(cp: &ControlPlane, user: &str, groups: &[String], sub: &str) -> bool {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            groups: Some(groups.to_vec()),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                subresource: (!sub.is_empty()).then(|| sub.to_owned()),
                verb: Some("create".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SubjectAccessReview>::all(cp.admin_client().unwrap())
        .create(&PostParams::default(), &sar)
        .await
        .unwrap()
        .status
        .is_some_and(|s| s.allowed)
}

/// Lets B file CSRs (and nothing else), and waits until the authorizer says so.
async fn intruder_may_file(cp: &ControlPlane) {
    let crb = bind(
        "tlsboot-test-intruders-file-csrs",
        "system:node-bootstrapper",
        INTRUDER_GROUP,
    );
    Api::<ClusterRoleBinding>::all(cp.admin_client().unwrap())
        .patch(
            "tlsboot-test-intruders-file-csrs",
            &PatchParams::apply("approval-binding-test").force(),
            &Patch::Apply(&crb),
        )
        .await
        .unwrap();
    let groups = [INTRUDER_GROUP.to_owned()];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !may_create(cp, INTRUDER, &groups, "").await {
        assert!(
            Instant::now() < deadline,
            "RBAC never let {INTRUDER} file CSRs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A's valid kubelet client CSR `name` (a fresh bootstrap token; the kubeconfig is kept so
/// its file outlives the test).
async fn file_as_bootstrapper(cp: &ControlPlane, name: &str) -> CertificateSigningRequest {
    let (_token, a) = bootstrap(cp).await;
    let node = cp.unique_name("bind-a");
    let csr = create_client_csr(
        a.client().unwrap(),
        name,
        &node_client_pem(&node, "system:nodes"),
    )
    .await;
    std::mem::forget(a);
    csr
}

/// Deletes `name` and files a valid kubelet client CSR under the same name as B (the admin
/// impersonating it). Returns B's stored CSR.
async fn replace_as_intruder(cp: &ControlPlane, name: &str) -> CertificateSigningRequest {
    let admin = cp.admin_client().unwrap();
    Api::<CertificateSigningRequest>::all(admin.clone())
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    let node = cp.unique_name("bind-b");
    let csr = create_csr_object(
        name,
        &node_client_pem(&node, "system:nodes"),
        CLIENT_SIGNER,
        CLIENT_USAGES,
    );
    // The delete is immediate (CSRs have no finalizers); the create retries only
    // transient errors, e.g. the new RBAC binding not yet in the authorizer's cache.
    tlsboot_harness::kubelet::create_csr_as(
        &admin,
        INTRUDER,
        &[INTRUDER_GROUP],
        &csr,
        Instant::now() + Duration::from_secs(30),
    )
    .await
    .unwrap()
}

/// B's replacement is valid content that RBAC does not authorize, A's original was
/// authorized: the only thing between B and an approval is the binding.
async fn assert_story(
    cp: &ControlPlane,
    a: &CertificateSigningRequest,
    b: &CertificateSigningRequest,
) {
    assert_ne!(uid(a), uid(b), "the replacement is a new object");
    assert_eq!(b.spec.username.as_deref(), Some(INTRUDER));
    for csr in [a, b] {
        assert_eq!(
            policy::decide(&CsrFacts::from_csr(csr)).verdict,
            Verdict::Authorize,
            "both requests are valid kubelet client CSRs"
        );
    }
    let groups = |c: &CertificateSigningRequest| c.spec.groups.clone().unwrap_or_default();
    assert!(
        may_create(
            cp,
            a.spec.username.as_deref().unwrap(),
            &groups(a),
            NODECLIENT
        )
        .await
    );
    assert!(!may_create(cp, INTRUDER, &groups(b), NODECLIENT).await);
}

/// The approval PUTs for `name` the proxy saw, in order.
fn approval_puts(handle: &FaultHandle, name: &str) -> Vec<WriteRecord> {
    handle
        .writes()
        .into_iter()
        .filter(|w| w.method == HttpMethod::PUT && approval_target(&w.path) == Some(name))
        .collect()
}

/// The one approval PUT for `name` was answered 409 by kube-apiserver itself (the stale
/// resourceVersion): the writer went through the re-read branch, and wrote nothing after it.
fn assert_one_real_conflict(handle: &FaultHandle, name: &str) {
    let puts = approval_puts(handle, name);
    let statuses: Vec<(u16, bool)> = puts.iter().map(|w| (w.status, w.injected)).collect();
    assert_eq!(
        statuses,
        [(409, false)],
        "approval PUTs for {name} (status, injected by the proxy)"
    );
}

fn approval_write() -> ApprovalWrite {
    ApprovalWrite {
        decision: ApprovalDecision::Approve,
        reason: policy::REASON_AUTO_APPROVED.into(),
        message: NODECLIENT_MSG.into(),
        force: false,
        dry_run: false,
        max_conflict_retries: 5,
    }
}

/// The daemon's content re-check: whatever the copy, its content alone would be approved.
fn content_recheck(c: &CertificateSigningRequest) -> Result<(), String> {
    match policy::decide(&CsrFacts::from_csr(c)).verdict {
        Verdict::Authorize => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

/// The daemon's ServiceAccount (manifests/rbac.yaml) through `proxy`, as identity `who`.
async fn daemon_client_via(cp: &ControlPlane, proxy: &FaultProxy, who: &str) -> kube::Client {
    let sa = daemon_identity(cp).await;
    let token = kubeconfig_token(sa.path()).unwrap();
    let kc = proxy
        .kubeconfig(&cp.dir().join(format!("{who}.kubeconfig")), who, &token)
        .await
        .unwrap();
    let client = kc.client().unwrap();
    std::mem::forget(kc);
    client
}

#[tokio::test(flavor = "multi_thread")]
async fn write_approval_refuses_a_csr_replaced_under_the_same_name() {
    let _one = SERIAL.lock().await;
    let Some((cp, proxy, handle)) = behind_proxy(Faults::default()).await else {
        return;
    };
    intruder_may_file(cp).await;
    let writer = daemon_client_via(cp, &proxy, "binding-writer").await;
    let name = cp.unique_name("node-csr-bind-write");
    file_as_bootstrapper(cp, &name).await;
    // The copy A's request was decided on.
    let decided = get_csr(cp, &name).await;
    let b = replace_as_intruder(cp, &name).await;
    assert_story(cp, &decided, &b).await;

    let outcome = write_approval(
        &Api::all(writer),
        decided.clone(),
        &approval_write(),
        content_recheck,
        || Ok(()),
    )
    .await
    .unwrap();
    match outcome {
        ApprovalOutcome::Replaced { old_uid, new_uid } => {
            assert_eq!(old_uid, uid(&decided));
            assert_eq!(new_uid, uid(&b));
        }
        ApprovalOutcome::Written(stored) => panic!(
            "B's CSR {name} was written on A's decision: now {:?}",
            conditions(&stored)
        ),
        other => panic!("expected Replaced for {name}, got {other:?}"),
    }
    assert_one_real_conflict(&handle, &name);
    let stored = get_csr(cp, &name).await;
    assert_eq!(uid(&stored), uid(&b));
    assert!(conditions(&stored).is_empty(), "{:?}", conditions(&stored));
}

#[tokio::test(flavor = "multi_thread")]
async fn write_approval_refuses_a_decided_copy_without_uid() {
    let _one = SERIAL.lock().await;
    let Some((cp, proxy, handle)) = behind_proxy(Faults::default()).await else {
        return;
    };
    let writer = daemon_client_via(cp, &proxy, "binding-writer-nouid").await;
    let name = cp.unique_name("node-csr-bind-nouid");
    file_as_bootstrapper(cp, &name).await;
    let mut decided = get_csr(cp, &name).await;
    decided.metadata.uid = None;

    let result = write_approval(
        &Api::all(writer),
        decided,
        &approval_write(),
        content_recheck,
        || Ok(()),
    )
    .await;
    match result {
        Err(
            e @ ApprovalError::MissingUid {
                copy: "decided", ..
            },
        ) => {
            assert_eq!(
                e.to_string(),
                format!(
                    "not approving certificate signing request {name:?}: the decided copy has \
                     no metadata.uid, so the write cannot be bound to the object that was decided"
                )
            );
        }
        Ok(ApprovalOutcome::Written(stored)) => panic!(
            "a copy without uid was written blindly: now {:?}",
            conditions(&stored)
        ),
        other => panic!("expected MissingUid for {name}, got {other:?}"),
    }
    assert!(approval_puts(&handle, &name).is_empty(), "nothing is sent");
    assert!(conditions(&get_csr(cp, &name).await).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn write_approval_still_retries_a_conflict_on_the_same_object() {
    let _one = SERIAL.lock().await;
    let Some((cp, proxy, handle)) = behind_proxy(Faults::default()).await else {
        return;
    };
    let writer = daemon_client_via(cp, &proxy, "binding-writer-same").await;
    let name = cp.unique_name("node-csr-bind-same");
    file_as_bootstrapper(cp, &name).await;
    let decided = get_csr(cp, &name).await;
    // Another writer touches the same object: the decided copy's resourceVersion is stale.
    let label = serde_json::json!({"metadata": {"labels": {"touched": "yes"}}});
    Api::<CertificateSigningRequest>::all(cp.admin_client().unwrap())
        .patch(&name, &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();

    let outcome = write_approval(
        &Api::all(writer),
        decided.clone(),
        &approval_write(),
        content_recheck,
        || Ok(()),
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, ApprovalOutcome::Written(_)),
        "{outcome:?}"
    );
    let statuses: Vec<(u16, bool)> = approval_puts(&handle, &name)
        .iter()
        .map(|w| (w.status, w.injected))
        .collect();
    assert_eq!(statuses, [(409, false), (200, false)]);
    let stored = get_csr(cp, &name).await;
    assert_eq!(uid(&stored), uid(&decided));
    assert!(
        approved_with(&stored, NODECLIENT_MSG),
        "{:?}",
        conditions(&stored)
    );
}

/// Waits for the held approval PUT, failing with `logs` if it never comes.
async fn caught(hold: &ApprovalHold, what: &str, logs: impl Fn() -> String) {
    if tokio::time::timeout(Duration::from_secs(60), hold.arrived())
        .await
        .is_err()
    {
        panic!("{what} never sent its approval PUT\n{}", logs());
    }
}

/// NotAuthorized Events the daemon posted about the object with `uid`.
async fn not_authorized_events(cp: &ControlPlane, uid: &str) -> usize {
    let api: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(cp.admin_client().unwrap(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| {
            e.reason.as_deref() == Some("NotAuthorized")
                && e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_never_approves_a_csr_replaced_between_its_review_and_its_write() {
    let _one = SERIAL.lock().await;
    let name = {
        // Named before the daemon starts, so the hold is armed from its first request on.
        let Some(cp) = control_plane().await else {
            return;
        };
        cp.unique_name("node-csr-bind-daemon")
    };
    let hold = ApprovalHold::new(&name);
    let faults = Faults {
        hold_approval: Some(hold.clone()),
        ..Faults::default()
    };
    let Some((cp, _proxy, handle, d)) =
        one_daemon_behind_proxy(faults, "binding-daemon", &[], Duration::from_secs(60)).await
    else {
        return;
    };

    intruder_may_file(cp).await;
    // A files; the daemon's SubjectAccessReview for A is allowed and its approval PUT is held.
    let a = file_as_bootstrapper(cp, &name).await;
    caught(&hold, "the daemon", || d.logs()).await;
    let b = replace_as_intruder(cp, &name).await;
    assert_story(cp, &a, &b).await;
    hold.release();

    // The new object must get its own decision: B's SubjectAccessReview is refused, so a
    // NotAuthorized Event about B's uid. If B's CSR is approved first, A's decision was used.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let csr = get_csr(cp, &name).await;
        assert!(
            conditions(&csr).is_empty(),
            "B's CSR {name} got {:?} (A's authorization was reused)\ndaemon log:\n{}",
            conditions(&csr),
            d.logs()
        );
        if not_authorized_events(cp, &uid(&b)).await > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no fresh decision (NotAuthorized Event) for B's CSR {name}\ndaemon log:\n{}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_one_real_conflict(&handle, &name);
    let log = std::fs::read_to_string(d.child.log_path()).unwrap();
    assert!(
        log.lines().any(|l| l.contains("deleted and re-created")
            && l.contains(&uid(&a))
            && l.contains(&uid(&b))),
        "the daemon did not log the replacement:\n{}",
        d.logs()
    );
    assert_eq!(
        d.metric(&format!(
            "tlsboot_csr_decisions_total{{signer=\"{CLIENT_SIGNER}\",outcome=\"replaced\"}}"
        )),
        1.0
    );

    // A legitimate CSR from A is still approved, on its own SubjectAccessReview.
    let legit = cp.unique_name("node-csr-bind-legit");
    file_as_bootstrapper(cp, &legit).await;
    wait_csr(
        cp,
        &legit,
        Duration::from_secs(60),
        || d.logs(),
        |c| approved_with(c, NODECLIENT_MSG),
    )
    .await;
    let csr = get_csr(cp, &name).await;
    assert!(conditions(&csr).is_empty(), "{:?}", conditions(&csr));
    assert!(!handle.approvals_accepted().contains_key(&name));
    assert_running(&d);
}

/// A ServiceAccount bound to cluster-admin, as a person reviewing CSRs would be, with a
/// kubeconfig through `proxy` (the proxy forwards bearer tokens only).
async fn reviewer_via(cp: &ControlPlane, proxy: &FaultProxy) -> UserKubeconfig {
    let ns = "tlsboot-test-review";
    let sa_name = "reviewer";
    let sa = cp.service_account_kubeconfig(ns, sa_name).await.unwrap();
    let crb = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some("tlsboot-test-reviewer-admin".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "cluster-admin".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: sa_name.into(),
            namespace: Some(ns.into()),
            ..Default::default()
        }]),
    };
    Api::<ClusterRoleBinding>::all(cp.admin_client().unwrap())
        .patch(
            "tlsboot-test-reviewer-admin",
            &PatchParams::apply("approval-binding-test").force(),
            &Patch::Apply(&crb),
        )
        .await
        .unwrap();
    let token = kubeconfig_token(sa.path()).unwrap();
    proxy
        .kubeconfig(
            &cp.dir().join("reviewer-via-proxy.kubeconfig"),
            "reviewer",
            &token,
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_command_refuses_a_csr_replaced_since_it_was_reviewed() {
    let _one = SERIAL.lock().await;
    let name = {
        let Some(cp) = control_plane().await else {
            return;
        };
        cp.unique_name("node-csr-bind-review")
    };
    let hold = ApprovalHold::new(&name);
    let faults = Faults {
        hold_approval: Some(hold.clone()),
        ..Faults::default()
    };
    let Some((cp, proxy, handle)) = behind_proxy(faults).await else {
        return;
    };
    intruder_may_file(cp).await;
    let reviewer = reviewer_via(cp, &proxy).await;
    let a = file_as_bootstrapper(cp, &name).await;

    // `tlsboot approve` reads A's CSR, judges it, and PUTs: that PUT is held.
    let mut approve = tokio::process::Command::new(env!("CARGO_BIN_EXE_tlsboot"));
    approve
        .arg("--kubeconfig")
        .arg(reviewer.path())
        .args(["approve", &name])
        .env_remove("TLSBOOT_CONTEXT")
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .kill_on_drop(true);
    let mut run = tokio::spawn(approve.output());
    tokio::select! {
        _ = caught(&hold, "tlsboot approve", String::new) => {}
        out = &mut run => panic!("tlsboot approve ended before its write: {out:?}"),
    }
    let b = replace_as_intruder(cp, &name).await;
    assert_story(cp, &a, &b).await;
    hold.release();

    let out = run.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let error = format!(
        "error: certificate signing request {name:?} was deleted and re-created since it was \
         reviewed (reviewed uid {}, now uid {}); nothing was written: review it again",
        uid(&a),
        uid(&b)
    );
    assert!(
        stderr.lines().any(|l| l == error),
        "want {error:?} in stderr:\n{stderr}"
    );
    assert_eq!(stdout, "", "nothing may be reported approved");
    assert_one_real_conflict(&handle, &name);
    let stored = get_csr(cp, &name).await;
    assert_eq!(uid(&stored), uid(&b));
    assert!(conditions(&stored).is_empty(), "{:?}", conditions(&stored));
}
