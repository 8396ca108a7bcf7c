//! `tlsboot-harness bench --open-loop`: latency at realistic arrival rates. CSRs arrive at a
//! fixed rate, **evenly spaced** (arrival i is due at `i / rate` seconds), whatever the approver
//! does: each arrival is its own task, so a slow approver meets a growing backlog instead of
//! slowing the kubelets down (an open loop; the burst benchmark is a closed one). Per approver,
//! per kind (bootstrap client CSRs, client renewals) and per rate: create → Approved and
//! create → Issued percentiles, the achieved approval rate, the approver's CPU per 1,000
//! approvals and RSS, and the API server's CPU per 1,000 approvals in the same window.
//!
//! The **knee** of an approver is the highest offered rate whose p99 create → Approved stays
//! under `--p99-limit-ms` (1 s). Once an approver misses it (or leaves CSRs unapproved when the
//! stage's drain time is over), its higher rates are skipped: the curve beyond the knee is a
//! queue growing without bound, and measuring it costs minutes per point.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;

use super::{
    Approver, BenchStage, Env, NODE_GROUPS, Phase, SeenMap, lock, observe, percentile_of,
    proc_status_kib, sample, start_approver, wait_done,
};
use tlsboot_harness::kubelet::{create_csr_as, rotation_csr};
use tlsboot_harness::{Component, KubeletOptions, SimKubelet};

/// One (approver, kind, rate) point.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RatePoint {
    pub approver: &'static str,
    /// `client` (bootstrap) or `renewal`.
    pub kind: &'static str,
    /// Offered CSRs per second.
    pub rate: f64,
    pub csrs: usize,
    /// Whether the point was measured (false: skipped, beyond this approver's knee).
    pub measured: bool,
    /// CSRs approved before the drain deadline.
    pub approved: usize,
    /// Approved CSRs / (last Approved seen − first create answered).
    pub achieved_per_s: Option<f64>,
    /// Create answered → Approved seen, ms; CSRs never approved count as infinitely late,
    /// so a percentile that reaches them is `null`.
    pub approved_ms_p50: Option<f64>,
    pub approved_ms_p90: Option<f64>,
    pub approved_ms_p99: Option<f64>,
    pub approved_ms_max: Option<f64>,
    pub issued_ms_p50: Option<f64>,
    pub issued_ms_p99: Option<f64>,
    /// Approver CPU seconds per 1,000 approvals (not for the in-process ceiling).
    pub approver_cpu_s_per_1k: Option<f64>,
    pub approver_rss_mib: Option<f64>,
    /// kube-apiserver and etcd CPU seconds per 1,000 approvals in the stage's window.
    pub apiserver_cpu_s_per_1k: Option<f64>,
    pub etcd_cpu_s_per_1k: Option<f64>,
    /// Load average (1 min) at the end of the stage.
    pub loadavg_1m: Option<f64>,
    /// The approver's requests per CSR in the window (approval PUTs, SARs, CSR reads,
    /// Events), from kube-apiserver's `apiserver_request_total`; and the whole breakdown.
    pub approver_requests_per_csr: Option<f64>,
    pub api: Option<super::ApiDelta>,
}

fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Files `n` CSRs of `kind` at `rate` per second, evenly spaced from now; returns (name,
/// create answered) per CSR that was created.
async fn arrivals(
    env: &Env<'_>,
    kind: BenchStage,
    prefix: &str,
    n: usize,
    rate: f64,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let t0 = tokio::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        let opts = KubeletOptions::new(format!("{prefix}-{i}"));
        let boot_config = env.boot_config.clone();
        let boot_client = env.boot_client.clone();
        let admin = env.admin.clone();
        set.spawn(async move {
            tokio::time::sleep_until(due).await;
            match kind {
                BenchStage::Client => {
                    let mut k = SimKubelet::with_client(boot_config, boot_client, opts);
                    let name = k.request_client_certificate().await?;
                    let at = k.report().client_csr_created.unwrap_or_else(Instant::now);
                    Ok::<_, anyhow::Error>((name, at))
                }
                _ => {
                    let user = format!("system:node:{}", opts.node_name);
                    let (csr, _key) = rotation_csr(&opts)?;
                    let deadline = Instant::now() + Duration::from_secs(300);
                    let created =
                        create_csr_as(&admin, &user, &NODE_GROUPS, &csr, deadline).await?;
                    let at = Instant::now();
                    let name = created
                        .metadata
                        .name
                        .context("created CSR without a name")?;
                    Ok((name, at))
                }
            }
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        out.push(r.context("an arrival task failed")??);
    }
    Ok(out)
}

/// How long a point's leftover backlog may take to clear before the next point starts.
const BACKLOG_LIMIT: Duration = Duration::from_secs(600);

/// One point: `rate` CSRs/s for `secs` seconds, then up to `drain` for the approver to finish.
#[allow(clippy::too_many_arguments)]
async fn run_point(
    env: &Env<'_>,
    phase: Phase,
    kind: BenchStage,
    rate: f64,
    run: &str,
    approver: &Approver,
    seen: &SeenMap,
) -> anyhow::Result<RatePoint> {
    let a = env.args;
    let n = ((rate * a.stage_secs as f64).round() as usize).max(1);
    let pid = approver.pid();
    let s0 = sample(env, pid).await?;
    let prefix = format!("{run}-{}-{rate}", kind.name());
    let names = arrivals(env, kind, &prefix, n, rate).await?;
    let deadline = Instant::now() + Duration::from_secs(a.drain_secs);
    // Missing approvals are the figure here, not an error.
    let _ = wait_done(seen, &names, deadline, approver).await;
    approver.check_alive()?;
    let s1 = sample(env, pid).await?;
    let api = super::api_delta(&s0.req, &s1.req);
    let rss = pid.and_then(|p| proc_status_kib(p, "VmRSS"));

    let first_created = names.iter().map(|(_, t)| *t).min();
    let (mut approved_ms, mut issued_ms, mut last_approved) = (Vec::new(), Vec::new(), None);
    {
        let m = lock(seen);
        for (name, created) in &names {
            let Some(s) = m.get(name) else { continue };
            if let Some(at) = s.approved {
                approved_ms.push(at.saturating_duration_since(*created).as_secs_f64() * 1e3);
                last_approved = last_approved.max(Some(at));
            }
            if let Some(at) = s.issued {
                issued_ms.push(at.saturating_duration_since(*created).as_secs_f64() * 1e3);
            }
        }
    }
    approved_ms.sort_by(f64::total_cmp);
    issued_ms.sort_by(f64::total_cmp);
    let approved = approved_ms.len();
    if approved < n {
        // A backlog left behind would be the next point's head start: let the approver finish
        // it first (outside this point's figures, which count those CSRs as never approved).
        let t = Instant::now();
        let _ = wait_done(seen, &names, t + BACKLOG_LIMIT, approver).await;
        eprintln!(
            "    {} CSRs left after the drain time; backlog cleared in {:.1} s before the next point",
            n - approved,
            t.elapsed().as_secs_f64()
        );
    }
    let per_1k = |cpu: Option<f64>| {
        cpu.filter(|_| approved > 0)
            .map(|c| c * 1e3 / approved as f64)
    };
    let delta = |i: usize| {
        s1.others
            .get(i)
            .copied()
            .flatten()
            .zip(s0.others.get(i).copied().flatten())
            .map(|(b, a)| b - a)
    };
    Ok(RatePoint {
        approver: phase.name(),
        kind: kind.name(),
        rate,
        csrs: n,
        measured: true,
        approved,
        achieved_per_s: first_created
            .zip(last_approved)
            .map(|(f, l)| approved as f64 / l.saturating_duration_since(f).as_secs_f64().max(1e-3)),
        approved_ms_p50: percentile_of(&approved_ms, n, 50.0),
        approved_ms_p90: percentile_of(&approved_ms, n, 90.0),
        approved_ms_p99: percentile_of(&approved_ms, n, 99.0),
        approved_ms_max: (approved == n)
            .then(|| approved_ms.last().copied())
            .flatten(),
        issued_ms_p50: percentile_of(&issued_ms, n, 50.0),
        issued_ms_p99: percentile_of(&issued_ms, n, 99.0),
        approver_cpu_s_per_1k: per_1k(s0.cpu.zip(s1.cpu).map(|(a, b)| b - a)),
        approver_rss_mib: rss.map(|k| k as f64 / 1024.0),
        apiserver_cpu_s_per_1k: per_1k(delta(0)),
        etcd_cpu_s_per_1k: per_1k(delta(1)),
        loadavg_1m: loadavg(),
        approver_requests_per_csr: Some(
            (api.approval_put + api.sar_create + api.csr_read + api.events) / n as f64,
        ),
        api: Some(api),
    })
}

fn skipped(phase: Phase, kind: BenchStage, rate: f64, stage_secs: u64) -> RatePoint {
    RatePoint {
        approver: phase.name(),
        kind: kind.name(),
        rate,
        csrs: ((rate * stage_secs as f64).round() as usize).max(1),
        measured: false,
        approved: 0,
        achieved_per_s: None,
        approved_ms_p50: None,
        approved_ms_p90: None,
        approved_ms_p99: None,
        approved_ms_max: None,
        issued_ms_p50: None,
        issued_ms_p99: None,
        approver_cpu_s_per_1k: None,
        approver_rss_mib: None,
        apiserver_cpu_s_per_1k: None,
        etcd_cpu_s_per_1k: None,
        loadavg_1m: None,
        approver_requests_per_csr: None,
        api: None,
    }
}

/// Whether a point stays under the latency limit (all approved, p99 below it).
fn within(p: &RatePoint, limit_ms: f64) -> bool {
    p.measured && p.approved == p.csrs && p.approved_ms_p99.is_some_and(|v| v < limit_ms)
}

/// The highest offered rate of `approver`/`kind` whose p99 stays under the limit, looking at
/// rates in increasing order and stopping at the first miss.
pub fn knee(points: &[RatePoint], approver: &str, kind: &str, limit_ms: f64) -> Option<f64> {
    let mut mine: Vec<&RatePoint> = points
        .iter()
        .filter(|p| p.approver == approver && p.kind == kind)
        .collect();
    mine.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    mine.iter()
        .take_while(|p| within(p, limit_ms))
        .last()
        .map(|p| p.rate)
}

async fn run_approver(env: &Env<'_>, phase: Phase, out: &mut Vec<RatePoint>) -> anyhow::Result<()> {
    let a = env.args;
    let run = format!("lat-{}", phase.name());
    let csrs = kube::Api::all(env.admin.clone());
    let seen: SeenMap = Default::default();
    let observer = tokio::spawn(observe(csrs, seen.clone()));
    let approver = start_approver(env, phase, &run)?;
    let result = async {
        let warm = super::create_csrs(env, &format!("{run}-warmup"), 1).await?;
        wait_done(
            &seen,
            &warm,
            Instant::now() + Duration::from_secs(120),
            &approver,
        )
        .await
        .context("warm-up CSR")?;
        for &kind in &a.stages {
            if kind == BenchStage::Serving {
                continue;
            }
            let mut behind = false;
            for &rate in &a.rates {
                if behind {
                    out.push(skipped(phase, kind, rate, a.stage_secs));
                    continue;
                }
                eprintln!(
                    "  {} {}: {rate} CSR/s for {} s",
                    phase.name(),
                    kind.name(),
                    a.stage_secs
                );
                let p = run_point(env, phase, kind, rate, &run, &approver, &seen).await?;
                eprintln!(
                    "    approved {}/{}, achieved {:.1}/s, p50 {} ms, p99 {} ms (load {:.1})",
                    p.approved,
                    p.csrs,
                    p.achieved_per_s.unwrap_or(f64::NAN),
                    fmt_ms(p.approved_ms_p50),
                    fmt_ms(p.approved_ms_p99),
                    p.loadavg_1m.unwrap_or(f64::NAN)
                );
                behind = !within(&p, a.p99_limit_ms);
                out.push(p);
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    approver.stop();
    observer.abort();
    if phase == Phase::Kcm {
        env.cp.start_component(Component::ControllerManager).await?;
    }
    result
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.0}"))
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("—".into(), |v| format!("{v:.prec$}"))
}

/// Each (approver, kind) that has points, in the order they ran.
fn pairs(points: &[RatePoint]) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for p in points {
        if !out.contains(&(p.approver, p.kind)) {
            out.push((p.approver, p.kind));
        }
    }
    out
}

/// The Markdown table of every point, then one line per approver and kind with its knee.
pub fn markdown(points: &[RatePoint], limit_ms: f64) -> String {
    let mut s = String::from(
        "| approver | kind | offered /s | CSRs | approved | achieved /s | p50 ms | p90 ms | p99 ms | max ms | issued p99 ms | approver CPU s /1k | approver RSS MiB | apiserver CPU s /1k | approver req/CSR | load 1m |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for p in points {
        if !p.measured {
            s.push_str(&format!(
                "| {} | {} | {} | {} | skipped (beyond the knee) | | | | | | | | | | | |\n",
                p.approver, p.kind, p.rate, p.csrs
            ));
            continue;
        }
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            p.approver,
            p.kind,
            p.rate,
            p.csrs,
            p.approved,
            fmt_opt(p.achieved_per_s, 1),
            fmt_ms(p.approved_ms_p50),
            fmt_ms(p.approved_ms_p90),
            fmt_ms(p.approved_ms_p99),
            fmt_ms(p.approved_ms_max),
            fmt_ms(p.issued_ms_p99),
            fmt_opt(p.approver_cpu_s_per_1k, 2),
            fmt_opt(p.approver_rss_mib, 1),
            fmt_opt(p.apiserver_cpu_s_per_1k, 2),
            fmt_opt(p.approver_requests_per_csr, 2),
            fmt_opt(p.loadavg_1m, 1),
        ));
    }
    s.push_str(&format!(
        "\nKnee (highest offered rate with p99 < {limit_ms} ms):\n\n"
    ));
    for (approver, kind) in pairs(points) {
        s.push_str(&format!(
            "- {approver} {kind}: {}\n",
            knee(points, approver, kind, limit_ms)
                .map_or("below the lowest rate".into(), |r| format!("{r} CSR/s"))
        ));
    }
    s
}

pub async fn run(env: &Env<'_>) -> anyhow::Result<()> {
    let a = env.args;
    if a.rates.is_empty() || a.rates.iter().any(|r| r.is_nan() || *r <= 0.0) {
        anyhow::bail!("--rates must list rates above 0");
    }
    let load_start = loadavg();
    let mut points = Vec::new();
    for &phase in &a.phases {
        eprintln!("approver {}", phase.name());
        run_approver(env, phase, &mut points)
            .await
            .with_context(|| format!("approver {}", phase.name()))?;
    }
    let load_end = loadavg();
    let table = markdown(&points, a.p99_limit_ms);
    println!("{table}");
    println!(
        "load average (1 min): {} at the start, {} at the end; {} cores",
        fmt_opt(load_start, 2),
        fmt_opt(load_end, 2),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let dir = &a.out_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for kind in ["client", "renewal"] {
        if !points.iter().any(|p| p.kind == kind && p.measured) {
            continue;
        }
        let svg = dir.join(format!("latency-{kind}.svg"));
        super::plot::p99_against_rate(&points, kind, a.p99_limit_ms, &svg)?;
        println!("plot: {}", svg.display());
        let png = svg.with_extension("png");
        match super::plot::p99_against_rate(&points, kind, a.p99_limit_ms, &png) {
            Ok(()) => println!("plot: {}", png.display()),
            Err(e) => eprintln!("no PNG plot: {e:#}"),
        }
    }
    std::fs::write(dir.join("latency.md"), &table)
        .with_context(|| format!("write {}", dir.join("latency.md").display()))?;
    let knees: serde_json::Map<String, serde_json::Value> = pairs(&points)
        .into_iter()
        .map(|(ap, kind)| {
            let v = knee(&points, ap, kind, a.p99_limit_ms);
            (format!("{ap}/{kind}"), json!(v))
        })
        .collect();
    let line = json!({
        "bench": "tlsboot-open-loop",
        "arrivals": "evenly spaced",
        "stage_secs": a.stage_secs,
        "drain_secs": a.drain_secs,
        "p99_limit_ms": a.p99_limit_ms,
        "rates": a.rates,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "knees": knees,
        "points": points,
    });
    println!("BENCH_JSON {line}");
    Ok(())
}

#[cfg(test)]
pub(super) mod tests_support {
    use super::*;

    /// A measured client point of 10 CSRs, all approved, with this p99.
    pub fn point(approver: &'static str, rate: f64, p99: Option<f64>) -> RatePoint {
        RatePoint {
            approver,
            csrs: 10,
            approved: 10,
            approved_ms_p99: p99,
            measured: true,
            ..skipped(Phase::Tlsboot, BenchStage::Client, rate, 1)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn point(approver: &'static str, rate: f64, p99: Option<f64>, approved: usize) -> RatePoint {
        RatePoint {
            approved,
            ..tests_support::point(approver, rate, p99)
        }
    }

    #[test]
    fn knee_is_the_last_rate_before_the_first_miss() {
        let pts = vec![
            point("x", 5.0, Some(100.0), 10),
            point("x", 20.0, Some(900.0), 10),
            point("x", 50.0, Some(1500.0), 10),
            // Under the limit again, but beyond a miss: not the knee.
            point("x", 100.0, Some(200.0), 10),
        ];
        assert_eq!(knee(&pts, "x", "client", 1000.0), Some(20.0));
    }

    #[test]
    fn a_point_with_unapproved_csrs_is_a_miss() {
        let pts = vec![
            point("x", 5.0, Some(10.0), 10),
            point("x", 20.0, Some(10.0), 9),
        ];
        assert_eq!(knee(&pts, "x", "client", 1000.0), Some(5.0));
        assert_eq!(knee(&pts[1..], "x", "client", 1000.0), None);
    }

    #[test]
    fn percentiles_that_reach_unapproved_csrs_are_unknown() {
        let finite: Vec<f64> = (1..=98).map(f64::from).collect();
        assert_eq!(percentile_of(&finite, 100, 50.0), Some(50.0));
        assert_eq!(percentile_of(&finite, 100, 98.0), Some(98.0));
        assert_eq!(percentile_of(&finite, 100, 99.0), None);
        assert_eq!(percentile_of(&[], 0, 99.0), None);
    }
}
