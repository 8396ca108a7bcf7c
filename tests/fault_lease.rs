//! Reliability: someone else edits the leader's Lease while it leads.
//!
//! Anyone with `update` on the Lease can change it under the leader. A change that is not
//! a take-over (a label, an annotation: only a new resourceVersion) must not cost the
//! leadership: the leader's renewal meets a 409, re-reads, finds the Lease still its own
//! and renews. A take-over (another holderIdentity, a fresh renewTime) makes the leader
//! step down *in place*: no exit (a Lease editor could otherwise crash-loop it), no write
//! while the other holder's lease is valid, and it campaigns again and takes the Lease
//! back once that lease has expired.
//!
//! Both tests drive the one Lease the daemon's RBAC allows (`tlsboot-system/
//! tlsboot-controller`) on this binary's shared control plane, so they run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;
mod fault_support;

use std::time::{Duration, Instant};

use controller_support::*;
use fault_support::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use tlsboot_harness::ControlPlane;
use tlsboot_harness::faultproxy::{FaultHandle, Faults, HttpMethod, WriteRecord, approval_target};

const NS: &str = "tlsboot-system";
const LEASE: &str = "tlsboot-controller";

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn leases(cp: &ControlPlane) -> Api<Lease> {
    Api::namespaced(cp.admin_client().unwrap(), NS)
}

/// No Lease left over from an earlier test: the daemon under test creates it at once.
async fn reset_lease(cp: &ControlPlane) {
    match leases(cp).delete(LEASE, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => panic!("deleting Lease {NS}/{LEASE}: {e}"),
    }
}

/// `who`'s writes to the Lease as the proxy saw them, in arrival order.
fn lease_writes(handle: &FaultHandle, who: &str) -> Vec<WriteRecord> {
    handle
        .writes()
        .into_iter()
        .filter(|w| w.identity == who && w.path.contains("/leases/"))
        .collect()
}

/// Files a kubelet client CSR for a new node as the bootstrap identity `boot` and waits
/// until it is Approved (with exactly one condition); returns its name.
async fn approve_one(cp: &ControlPlane, boot: &kube::Client, prefix: &str, d: &Daemon) -> String {
    let name = file_csr(cp, boot, prefix).await;
    let csr = wait_csr(
        cp,
        &name,
        Duration::from_secs(60),
        || d.logs(),
        |c| approved_with(c, NODECLIENT_MSG),
    )
    .await;
    assert_eq!(conditions(&csr).len(), 1, "{:?}", conditions(&csr));
    name
}

async fn file_csr(cp: &ControlPlane, boot: &kube::Client, prefix: &str) -> String {
    let name = cp.unique_name(&format!("node-csr-{prefix}"));
    let node = cp.unique_name(prefix);
    create_client_csr(boot.clone(), &name, &node_client_pem(&node, "system:nodes")).await;
    name
}

/// Writes the Lease as another holder would when taking it over: its identity, a fresh
/// renewTime, `secs` seconds. Retries on 409 (the daemon renews concurrently).
async fn take_lease(cp: &ControlPlane, holder: &str, secs: i32) {
    let api = leases(cp);
    loop {
        let mut lease = api.get(LEASE).await.unwrap();
        let spec = lease.spec.get_or_insert_with(Default::default);
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = Some(holder.to_owned());
        spec.lease_duration_seconds = Some(secs);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        match api.replace(LEASE, &PostParams::default(), &lease).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("taking Lease {NS}/{LEASE} as {holder}: {e}"),
        }
    }
}

fn transitions(d: &Daemon) -> f64 {
    d.metric("tlsboot_lease_transitions_total ")
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_edits_while_leading_do_not_cost_the_leadership() {
    let _serial = SERIAL.lock().await;
    let Some((cp, proxy, handle)) = behind_proxy(Faults::default()).await else {
        return;
    };
    reset_lease(cp).await;
    let d = daemon_via_proxy(cp, &proxy, "lease-edited", &[]).await;
    d.wait_ready(Duration::from_secs(60));
    wait_leader(&[&d], Duration::from_secs(30));
    let (_token, boot) = bootstrap_token(cp).await;
    let boot = kube::Client::try_from(boot).unwrap();
    approve_one(cp, &boot, "lease-edit-before", &d).await;
    assert_eq!(transitions(&d), 1.0);

    // Every request of the daemon waits 300 ms at the proxy, and the Lease's labels are
    // changed every 50 ms: between the daemon's read of the Lease and its write, the
    // resourceVersion always moves on, so its renewals are answered 409 Conflict.
    handle.set(|f| f.latency = Duration::from_millis(300));
    let api = leases(cp);
    let conflicts = || {
        lease_writes(&handle, &d.name)
            .iter()
            .filter(|w| w.method == HttpMethod::PUT && w.status == 409)
            .count()
    };
    let started = Instant::now();
    let mut edits = 0u32;
    while conflicts() < 2 {
        assert_running(&d);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no 409 on the daemon's Lease writes after {edits} edits\n{}",
            d.logs()
        );
        edits += 1;
        let labels = serde_json::json!({"metadata": {"labels": {"edited-by": "someone", "edit": edits.to_string()}}});
        api.patch(LEASE, &PatchParams::default(), &Patch::Merge(&labels))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.set(|f| f.latency = Duration::ZERO);
    let edits_stopped = Instant::now();
    eprintln!(
        "{edits} Lease edits in {:?} caused {} conflicts on the daemon's renewals",
        edits_stopped - started,
        conflicts()
    );

    // The next renewal goes through, and leadership never lapsed in between.
    let renewed = Instant::now();
    while !lease_writes(&handle, &d.name)
        .iter()
        .any(|w| w.method == HttpMethod::PUT && w.status == 200 && w.at > edits_stopped)
    {
        assert_running(&d);
        assert!(
            renewed.elapsed() < Duration::from_secs(30),
            "no successful renewal after the edits stopped\n{}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_running(&d);
    assert!(d.is_leader(), "{}", d.logs());
    assert_eq!(
        transitions(&d),
        1.0,
        "leadership lapsed and was regained\n{}",
        d.logs()
    );
    let log = std::fs::read_to_string(d.child.log_path()).unwrap();
    assert!(!log.contains("stepped down"), "{}", d.logs());
    assert_eq!(
        leases(cp)
            .get(LEASE)
            .await
            .unwrap()
            .spec
            .and_then(|s| s.holder_identity),
        Some(d.name.clone())
    );
    // And it keeps approving.
    approve_one(cp, &boot, "lease-edit-after", &d).await;
    assert_running(&d);
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_taken_by_another_holder_makes_the_leader_step_down_without_exiting() {
    let _serial = SERIAL.lock().await;
    let Some((cp, proxy, handle)) = behind_proxy(Faults::default()).await else {
        return;
    };
    reset_lease(cp).await;
    // Short durations keep the test short; the other holder's lease (8 s) is longer than
    // the daemon's own (6 s), so it is what the daemon must wait out.
    const FOREIGN_SECS: i32 = 8;
    let flags = [
        "--leader-elect-lease-duration",
        "6s",
        "--leader-elect-renew-deadline",
        "4s",
        "--leader-elect-retry-period",
        "1s",
    ];
    let d = daemon_via_proxy(cp, &proxy, "lease-taken", &flags).await;
    d.wait_ready(Duration::from_secs(60));
    wait_leader(&[&d], Duration::from_secs(30));
    let (_token, boot) = bootstrap_token(cp).await;
    let boot = kube::Client::try_from(boot).unwrap();
    approve_one(cp, &boot, "lease-taken-before", &d).await;

    // Another holder takes the Lease.
    let taken = Instant::now();
    take_lease(cp, "someone-else", FOREIGN_SECS).await;

    // The daemon steps down and stays up.
    while d.is_leader() {
        assert_running(&d);
        assert!(
            taken.elapsed() < Duration::from_secs(20),
            "still leading 20 s after the Lease was taken\n{}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stepped_down = Instant::now();
    assert_running(&d);
    let log = std::fs::read_to_string(d.child.log_path()).unwrap();
    assert!(
        log.contains("stepped down") && log.contains("someone-else"),
        "no step-down naming the new holder in the log\n{}",
        d.logs()
    );

    // A CSR filed while the other holder's lease is valid is approved only after the
    // daemon holds the Lease again.
    let name = file_csr(cp, &boot, "lease-taken-during").await;
    let filed = Instant::now();
    let csr = wait_csr(
        cp,
        &name,
        Duration::from_secs(60),
        || d.logs(),
        |c| approved_with(c, NODECLIENT_MSG),
    )
    .await;
    assert_eq!(conditions(&csr).len(), 1, "{:?}", conditions(&csr));

    // What the daemon sent, as the proxy saw it. Its taking the Lease back, if it did:
    let writes = handle.writes();
    let mine = |w: &&WriteRecord| w.identity == d.name;
    let reacquired = writes
        .iter()
        .filter(mine)
        .filter(|w| w.path.contains("/leases/") && w.method == HttpMethod::PUT)
        .filter(|w| w.status == 200 && w.at > taken)
        .map(|w| w.at)
        .next();
    let following_until = reacquired.unwrap_or_else(Instant::now);
    // Nothing at all (approval, Event, SubjectAccessReview) while following.
    let while_following: Vec<&WriteRecord> = writes
        .iter()
        .filter(mine)
        .filter(|w| !w.path.contains("/leases/"))
        .filter(|w| w.at >= stepped_down && w.at < following_until)
        .collect();
    assert!(
        while_following.is_empty(),
        "the daemon wrote while another holder's lease was valid: {while_following:#?}"
    );
    let reacquired = reacquired.expect("the daemon took the Lease back");
    assert!(
        filed < reacquired,
        "the CSR must be filed while the daemon follows"
    );
    // It waited out the other holder's lease, counted from when it could first have
    // seen it (no earlier than our write was sent).
    assert!(
        reacquired >= taken + Duration::from_secs(FOREIGN_SECS as u64),
        "took the Lease back {:?} after it was taken; the other holder's lease was {FOREIGN_SECS} s",
        reacquired - taken
    );
    let approvals: Vec<&WriteRecord> = writes
        .iter()
        .filter(|w| approval_target(&w.path) == Some(name.as_str()))
        .collect();
    assert!(!approvals.is_empty());
    assert!(
        approvals
            .iter()
            .all(|w| w.identity == d.name && w.at > reacquired),
        "{name} was written before the daemon held the Lease again: {approvals:#?}"
    );
    assert_running(&d);
    assert!(d.is_leader(), "{}", d.logs());
    assert_eq!(transitions(&d), 2.0, "leader, follower, leader again");
    let holder = leases(cp)
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder, Some(d.name.clone()));
    figure("lease", "taken_to_step_down_s", secs(stepped_down - taken));
    figure("lease", "taken_to_reacquire_s", secs(reacquired - taken));
}
