//! `tlsboot-harness bench` end to end at a tiny N: its own control plane, the tlsboot phase
//! only, all three stages (client, serving, renewal): every client and renewal CSR approved
//! exactly once, no serving CSR approved (all queued for review) and every figure present. No
//! timing assertion: this guards the benchmark's plumbing, not the daemon's speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use tlsboot_harness::binaries_for_tests;

const NODES: u64 = 20;

/// The sources cargo builds `bin` from, as its dep-info files list them (paths relative to the
/// workspace `root`): the binary's own crate (`src/main.rs`) and the `tlsboot` library, whose
/// builds for linking write `deps/tlsboot-<hash>.d` files with a line for
/// `libtlsboot-<hash>.rlib` (a clippy check of the test target writes only `.rmeta`, and lists
/// test modules). Test-only modules are not in those, so a change to one does not make the
/// binary stale (cargo does not rebuild it for that either). A file that no longer exists is
/// from an older build and is left out.
fn built_from(root: &Path, bin: &Path) -> Option<Vec<PathBuf>> {
    let deps = bin.parent()?.join("deps");
    let mut sources = vec![root.join("src/main.rs")];
    for entry in std::fs::read_dir(&deps).ok()? {
        let path = entry.ok()?.path();
        if path.extension().is_none_or(|e| e != "d") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // One `<output>: <source> <source> …` line per output of the build; our paths hold
        // no spaces (cargo would escape them).
        for (output, files) in text.lines().filter_map(|l| l.split_once(": ")) {
            let lib = Path::new(output)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libtlsboot-") && n.ends_with(".rlib"));
            if lib {
                sources.extend(files.split_whitespace().map(|f| root.join(f)));
            }
        }
    }
    sources.sort();
    sources.dedup();
    (sources.len() > 1).then_some(sources)
}

/// The daemon binary this test drives, which belongs to another package: cargo does not
/// build it for this one. A workspace `cargo test` builds it (the root crate's integration
/// tests need it). It must be at least as new as every source it was built from (its dep-info
/// says which), or the benchmark would measure old code; the debug build is preferred, the
/// release one is used when only it is fresh.
fn tlsboot_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut stale = Vec::new();
    for profile in ["debug", "release"] {
        let bin = target.join(profile).join("tlsboot");
        let Ok(built) = std::fs::metadata(&bin).and_then(|m| m.modified()) else {
            continue;
        };
        let Some(sources) = built_from(&root, &bin) else {
            stale.push(format!(
                "{} (no dep-info for the tlsboot library)",
                bin.display()
            ));
            continue;
        };
        let newer: Vec<String> = sources
            .iter()
            .filter(|s| {
                std::fs::metadata(s)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t: SystemTime| t > built)
            })
            .map(|s| s.display().to_string())
            .collect();
        if newer.is_empty() {
            return bin;
        }
        stale.push(format!(
            "{} (older than {})",
            bin.display(),
            newer.join(", ")
        ));
    }
    panic!(
        "no up-to-date tlsboot binary under {}: {}; run `cargo build --bin tlsboot` first (a \
         workspace `cargo test` builds it)",
        target.display(),
        if stale.is_empty() {
            "none built".to_string()
        } else {
            format!("stale: {}", stale.join("; "))
        },
    );
}

#[test]
fn bench_tlsboot_phase_small_all_stages() {
    if binaries_for_tests()
        .expect("control-plane binaries")
        .is_none()
    {
        return;
    }
    let bin = tlsboot_bin();
    let out = Command::new(env!("CARGO_BIN_EXE_tlsboot-harness"))
        .args(["bench", "--phases", "tlsboot", "--repetitions", "1"])
        .args(["--nodes", &NODES.to_string(), "--phase-timeout", "120"])
        .arg("--tlsboot-bin")
        .arg(&bin)
        .output()
        .expect("run tlsboot-harness bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // Shown with --nocapture: the table, for a look at the figures.
    eprintln!("{stdout}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_JSON "))
        .unwrap_or_else(|| panic!("no BENCH_JSON line:\n{stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let results = v["results"].as_array().unwrap();
    let stages: Vec<&str> = results
        .iter()
        .map(|r| r["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["client", "serving", "renewal"], "{line}");
    let common = [
        "wall_created_s",
        "latency_ms_p50",
        "latency_ms_p95",
        "latency_ms_p99",
        "latency_ms_max",
        "cpu_s",
        "cpu_ms_per_approval",
        "peak_rss_mib",
        "rss_idle_mib",
        "api_requests_per_csr",
        "approver_requests_per_csr",
    ];
    for r in results {
        let stage = r["stage"].as_str().unwrap();
        assert_eq!(r["phase"], "tlsboot", "{line}");
        assert_eq!(r["nodes"].as_u64(), Some(NODES), "{line}");
        let per_stage: &[&str] = match stage {
            "serving" => &["wall_queued_s", "queued_per_s", "queued_for_review"],
            _ => &["wall_approved_s", "wall_issued_s", "approvals_per_s"],
        };
        for k in common.iter().chain(per_stage) {
            assert!(r[*k].as_f64().is_some(), "{stage}: {k} missing in {line}");
        }
        assert!(r["peak_rss_mib"].as_f64().unwrap() > 0.0, "{line}");
        if stage != "client" {
            // Filed as the node itself (impersonation): requester system:node:<name>.
            assert_eq!(r["filed_as_node"].as_u64(), Some(NODES), "{line}");
        }
        if stage == "serving" {
            // Never approved: every one still without any condition, each queued for review
            // (the daemon's counter) with its AwaitingReview Event seen.
            assert_eq!(r["approved"].as_u64(), Some(0), "{line}");
            assert_eq!(r["approved_once"].as_u64(), Some(0), "{line}");
            assert_eq!(r["untouched"].as_u64(), Some(NODES), "{line}");
            assert!(
                r["queued_for_review"].as_f64().unwrap() >= NODES as f64,
                "{line}"
            );
            assert_eq!(r["review_events_seen"].as_u64(), Some(NODES), "{line}");
        } else {
            // Exactly one condition (Approved) on every CSR: approved once, never twice.
            assert_eq!(r["approved"].as_u64(), Some(NODES), "{stage}: {line}");
            assert_eq!(r["approved_once"].as_u64(), Some(NODES), "{stage}: {line}");
        }
    }
    for stage in ["client", "renewal"] {
        assert!(v["ratios"][stage].is_object(), "no {stage} ratios: {line}");
    }
    assert!(stdout.contains("phase"), "no table:\n{stdout}");
}
