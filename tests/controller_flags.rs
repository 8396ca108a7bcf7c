//! `tlsboot controller` refuses bad leader-election and SAR-cache flags as usage errors
//! (exit 2, like any clap error), before it reads a kubeconfig or connects. No cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

/// Runs `tlsboot controller ARGS` with a kubeconfig that does not exist, so a run that
/// got past the flags would fail differently (exit 1, naming the file).
fn controller(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsboot"))
        .arg("controller")
        .args(["--kubeconfig", "/nonexistent/tlsboot-flags-test.kubeconfig"])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("TLSBOOT_LEADER_ELECT")
        .env_remove("TLSBOOT_LEADER_ELECT_LEASE_DURATION")
        .env_remove("TLSBOOT_LEADER_ELECT_RENEW_DEADLINE")
        .env_remove("TLSBOOT_LEADER_ELECT_RETRY_PERIOD")
        .env_remove("TLSBOOT_SAR_CACHE_TTL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.stdout.is_empty(), "nothing on stdout: {out:?}");
    (out.status.code().unwrap_or(-1), stderr)
}

fn refused(args: &[&str], expect: &str) {
    let (code, stderr) = controller(args);
    assert_eq!(code, 2, "{args:?} must be a usage error:\n{stderr}");
    assert!(
        stderr.contains(expect),
        "{args:?}: expected {expect:?} in:\n{stderr}"
    );
    // clap's own ending, for single-flag and cross-flag errors alike.
    assert!(
        stderr.contains("For more information, try '--help'."),
        "{args:?}: clap's usage-error form:\n{stderr}"
    );
}

#[test]
fn sub_second_lease_duration_is_a_usage_error() {
    refused(
        &["--leader-elect-lease-duration", "1500ms"],
        "--leader-elect-lease-duration (1s 500ms) must be a whole number of seconds",
    );
}

#[test]
fn out_of_range_durations_are_usage_errors() {
    refused(
        &["--leader-elect-lease-duration", "0s"],
        "--leader-elect-lease-duration (0s) must be between 1s and 5m",
    );
    refused(
        &["--leader-elect-lease-duration", "1h"],
        "--leader-elect-lease-duration (1h) must be between 1s and 5m",
    );
    refused(
        &["--leader-elect-retry-period", "0s"],
        "--leader-elect-retry-period (0s) must be between 1ms and 5m",
    );
    refused(
        &["--sar-cache-ttl", "1m"],
        "--sar-cache-ttl (1m) must be at most 10s",
    );
}

#[test]
fn client_go_ordering_rules_are_usage_errors() {
    refused(
        &["--leader-elect-renew-deadline", "15s"],
        "--leader-elect-lease-duration (15s) must be greater than --leader-elect-renew-deadline (15s)",
    );
    refused(
        &["--leader-elect-retry-period", "9s"],
        "--leader-elect-renew-deadline (10s) must be greater than --leader-elect-retry-period (9s) x 1.2",
    );
}

#[test]
fn valid_flags_get_past_parsing() {
    // Fails later, on the kubeconfig, with exit 1: the flags themselves were accepted.
    let (code, stderr) = controller(&[
        "--leader-elect-lease-duration",
        "20s",
        "--leader-elect-renew-deadline",
        "12500ms",
        "--leader-elect-retry-period",
        "2s",
        "--sar-cache-ttl",
        "10s",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("tlsboot-flags-test.kubeconfig"), "{stderr}");
}
