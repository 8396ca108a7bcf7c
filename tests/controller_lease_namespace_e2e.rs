//! `tlsboot controller` with leader election whose Lease namespace does not exist (the
//! newcomer's first run outside a cluster): it says so once, in plain words with the three
//! fixes, and `/readyz` says it too — never a Debug-formatted API error every retry period.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;

use std::time::{Duration, Instant};

use controller_support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_lease_namespace_is_said_once_with_its_fixes() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let ns = cp.unique_name("tlsboot-missing");
    let d = Daemon::start(
        cp,
        cp.kubeconfig_path(),
        "tlsboot-no-namespace",
        &[
            "-v",
            "--leader-elect-resource-namespace",
            &ns,
            "--leader-elect-retry-period",
            "1s",
            "--leader-elect-renew-deadline",
            "5s",
            "--leader-elect-lease-duration",
            "10s",
        ],
    );
    let said = format!("namespace \"{ns}\" does not exist");
    // Wait (bounded, not asserted on) for /readyz to explain, then for the election to have
    // retried several times, so "once" means once across retries.
    let start = Instant::now();
    let readyz = loop {
        match d.get("/readyz") {
            Some((503, body)) if body.contains(&said) => break body,
            _ if start.elapsed() > Duration::from_secs(60) => {
                panic!(
                    "/readyz never named the namespace: {:?}\n{}",
                    d.get("/readyz"),
                    d.logs()
                )
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let log_path = d.child.log_path().to_owned();
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.matches("failed again").count() >= 3 {
            break log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the election did not retry:\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for fix in [
        format!("kubectl create namespace {ns}"),
        "--leader-elect-resource-namespace".to_owned(),
        "--leader-elect=false".to_owned(),
    ] {
        assert!(readyz.contains(&fix), "/readyz lacks {fix:?}: {readyz}");
    }
    // The log is JSON: quotes are escaped there.
    let said_in_log = format!("does not exist, so the Lease {ns}/");
    let loud: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&said_in_log) && !l.contains("\"DEBUG\""))
        .collect();
    assert_eq!(
        loud.len(),
        1,
        "said {} times:\n{}",
        loud.len(),
        loud.join("\n")
    );
    assert!(loud[0].contains("kubectl create namespace"), "{}", loud[0]);
    for debug_form in ["ApiError", "Status {", "ErrorResponse"] {
        assert!(
            !log.contains(debug_form),
            "a Debug-formatted API error reached the log ({debug_form}):\n{log}"
        );
    }
    d.child.kill();
}
