//! `tlsboot controller` flags (with env fallbacks) and their validated form.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::lease::{self, LeaseConfig, default_identity};

/// The longest `--sar-cache-ttl`. A cached "allowed" answer keeps approving CSRs of that
/// requester for up to the TTL after the RoleBinding granting it was removed: a revoked
/// bootstrap group must stop getting certificates within seconds, as it does with
/// kube-controller-manager (one SubjectAccessReview per CSR).
pub const MAX_SAR_CACHE_TTL: Duration = Duration::from_secs(10);

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?}: {e} (examples: 500ms, 15s, 5m)"))
}

// Range checks live in the value parsers so clap refuses a bad value as a usage error
// (exit 2), before anything connects.

fn parse_lease_duration(s: &str) -> Result<Duration, String> {
    lease::check_lease_duration(parse_duration(s)?).map_err(|e| e.to_string())
}

fn parse_renew_deadline(s: &str) -> Result<Duration, String> {
    lease::check_period("--leader-elect-renew-deadline", parse_duration(s)?)
        .map_err(|e| e.to_string())
}

fn parse_retry_period(s: &str) -> Result<Duration, String> {
    lease::check_period("--leader-elect-retry-period", parse_duration(s)?)
        .map_err(|e| e.to_string())
}

fn parse_sar_cache_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > MAX_SAR_CACHE_TTL {
        return Err(format!(
            "--sar-cache-ttl ({}) must be at most {}: a cached answer keeps approving a \
             requester that long after its RoleBinding is removed",
            lease::show(d),
            lease::show(MAX_SAR_CACHE_TTL)
        ));
    }
    Ok(d)
}

/// Raw flags. Validated once into [`Config`]; nothing else reads these.
#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    /// Elect a leader on a Lease so only one replica writes (set false for a single replica).
    #[arg(long, env = "TLSBOOT_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub leader_elect: bool,
    /// How long followers wait before taking over an unrenewed lease: whole seconds,
    /// 1s..=5m (written to the Lease as leaseDurationSeconds).
    #[arg(long, env = "TLSBOOT_LEADER_ELECT_LEASE_DURATION", default_value = "15s", value_parser = parse_lease_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps acting without a successful renewal (must be < lease duration
    /// and > 1.2 x retry period, client-go's rules).
    #[arg(long, env = "TLSBOOT_LEADER_ELECT_RENEW_DEADLINE", default_value = "10s", value_parser = parse_renew_deadline)]
    pub leader_elect_renew_deadline: Duration,
    /// Interval between lease acquire/renew attempts (1.2 x it must be < renew deadline).
    #[arg(long, env = "TLSBOOT_LEADER_ELECT_RETRY_PERIOD", default_value = "2s", value_parser = parse_retry_period)]
    pub leader_elect_retry_period: Duration,
    /// Name of the Lease.
    #[arg(
        long,
        env = "TLSBOOT_LEADER_ELECT_RESOURCE_NAME",
        default_value = "tlsboot-controller"
    )]
    pub leader_elect_resource_name: String,
    /// Namespace of the Lease (in a Pod: its own namespace via POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "tlsboot-system")]
    pub leader_elect_resource_namespace: String,
    /// Leader-election identity (default: <hostname>_<random>).
    #[arg(long, env = "TLSBOOT_IDENTITY")]
    pub identity: Option<String>,

    /// CSRs reconciled in parallel, in total (one worker pool serves both kubelet signers).
    #[arg(long, env = "TLSBOOT_CONCURRENCY", default_value_t = 32)]
    pub concurrency: u16,
    /// Client-side request rate limit in requests/s (0 = unlimited; KCM uses 20).
    #[arg(long, env = "TLSBOOT_KUBE_API_QPS", default_value_t = 0.0)]
    pub kube_api_qps: f64,
    /// Burst above --kube-api-qps (KCM uses 30).
    #[arg(long, env = "TLSBOOT_KUBE_API_BURST", default_value_t = 0)]
    pub kube_api_burst: u32,

    /// Decide and log, write nothing (no approvals, denials or Events).
    #[arg(long, env = "TLSBOOT_DRY_RUN")]
    pub dry_run: bool,
    /// Deny kubelet client CSRs whose content is invalid (upstream only ignores them).
    #[arg(long, env = "TLSBOOT_DENY_INVALID")]
    pub deny_invalid: bool,
    /// Re-examine every CSR this often (a CSR whose RBAC was fixed later gets approved).
    #[arg(long, env = "TLSBOOT_RESYNC_PERIOD", default_value = "5m", value_parser = parse_duration)]
    pub resync_period: Duration,
    /// First retry delay after a refused SubjectAccessReview; doubles per attempt.
    #[arg(long, env = "TLSBOOT_BACKOFF_BASE", default_value = "200ms", value_parser = parse_duration)]
    pub backoff_base: Duration,
    /// Retry delay cap (upstream: 1000s; the resync also retries).
    #[arg(long, env = "TLSBOOT_BACKOFF_MAX", default_value = "5m", value_parser = parse_duration)]
    pub backoff_max: Duration,

    /// How long a SubjectAccessReview answer is reused for the same requester and
    /// subresource (0 = ask for every CSR, like kube-controller-manager; at most 10s, so
    /// a removed RoleBinding stops approvals promptly).
    #[arg(long, env = "TLSBOOT_SAR_CACHE_TTL", default_value = "1s", value_parser = parse_sar_cache_ttl)]
    pub sar_cache_ttl: Duration,
    /// Events one requester may cause per minute (beyond: logged only), so a flood of
    /// junk CSRs from one token cannot become an Event storm.
    #[arg(
        long,
        env = "TLSBOOT_EVENTS_PER_REQUESTER_PER_MINUTE",
        default_value_t = 30
    )]
    pub events_per_requester_per_minute: u32,

    /// While leading, delete expired bootstrap-token Secrets in kube-system (KCM's
    /// tokencleaner semantics). Needs list/watch/delete on Secrets in kube-system.
    #[arg(long, env = "TLSBOOT_CLEAN_EXPIRED_TOKENS")]
    pub clean_expired_tokens: bool,

    /// Address for /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "TLSBOOT_METRICS_BIND_ADDRESS",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_bind_address: SocketAddr,
    /// On SIGTERM/SIGINT, how long in-flight reconciles may take before we exit anyway.
    #[arg(long, env = "TLSBOOT_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

/// Validated daemon configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub lease: Option<LeaseConfig>,
    pub identity: String,
    pub concurrency: u16,
    pub kube_api_qps: f64,
    pub kube_api_burst: u32,
    pub dry_run: bool,
    pub deny_invalid: bool,
    pub resync_period: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub sar_cache_ttl: Duration,
    pub events_per_requester_per_minute: u32,
    pub clean_expired_tokens: bool,
    pub metrics_bind_address: SocketAddr,
    pub shutdown_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid controller configuration: {0}")]
pub struct ConfigError(String);

impl ControllerArgs {
    /// The checks that involve several flags, for the command line to refuse them as a
    /// usage error (exit 2) before anything starts; each flag alone was checked by clap.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Config::try_from(self.clone()).map(drop)
    }
}

impl TryFrom<ControllerArgs> for Config {
    type Error = ConfigError;

    fn try_from(a: ControllerArgs) -> Result<Self, Self::Error> {
        // Destructured so a new flag cannot be forgotten here.
        let ControllerArgs {
            leader_elect,
            leader_elect_lease_duration,
            leader_elect_renew_deadline,
            leader_elect_retry_period,
            leader_elect_resource_name,
            leader_elect_resource_namespace,
            identity,
            concurrency,
            kube_api_qps,
            kube_api_burst,
            dry_run,
            deny_invalid,
            resync_period,
            backoff_base,
            backoff_max,
            sar_cache_ttl,
            events_per_requester_per_minute,
            clean_expired_tokens,
            metrics_bind_address,
            shutdown_timeout,
        } = a;
        let identity = identity.unwrap_or_else(default_identity);
        let lease = if leader_elect {
            let l = LeaseConfig {
                name: leader_elect_resource_name,
                namespace: leader_elect_resource_namespace,
                identity: identity.clone(),
                lease_duration: leader_elect_lease_duration,
                renew_deadline: leader_elect_renew_deadline,
                retry_period: leader_elect_retry_period,
            };
            l.validate().map_err(|e| ConfigError(e.to_string()))?;
            Some(l)
        } else {
            None
        };
        if concurrency == 0 {
            return Err(ConfigError("--concurrency must be at least 1".into()));
        }
        if !kube_api_qps.is_finite() || kube_api_qps < 0.0 {
            return Err(ConfigError(
                "--kube-api-qps must be >= 0 (0 = unlimited)".into(),
            ));
        }
        if kube_api_qps > 0.0 && kube_api_burst == 0 {
            return Err(ConfigError(
                "--kube-api-burst must be >= 1 when --kube-api-qps is set".into(),
            ));
        }
        if resync_period < Duration::from_secs(1) {
            return Err(ConfigError("--resync-period must be at least 1s".into()));
        }
        if backoff_base.is_zero() || backoff_max < backoff_base {
            return Err(ConfigError(
                "--backoff-base must be > 0 and <= --backoff-max".into(),
            ));
        }
        Ok(Config {
            lease,
            identity,
            concurrency,
            kube_api_qps,
            kube_api_burst,
            dry_run,
            deny_invalid,
            resync_period,
            backoff_base,
            backoff_max,
            sar_cache_ttl,
            events_per_requester_per_minute,
            clean_expired_tokens,
            metrics_bind_address,
            shutdown_timeout,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ControllerArgs,
    }

    fn parse(args: &[&str]) -> Result<Config, String> {
        let t = T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Config::try_from(t.a).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_match_client_go() {
        let c = parse(&[]).unwrap();
        let l = c.lease.unwrap();
        assert_eq!(l.lease_duration, Duration::from_secs(15));
        assert_eq!(l.renew_deadline, Duration::from_secs(10));
        assert_eq!(l.retry_period, Duration::from_secs(2));
        assert!(!c.dry_run && !c.deny_invalid);
    }

    #[test]
    fn leader_elect_false_disables_lease() {
        assert!(parse(&["--leader-elect=false"]).unwrap().lease.is_none());
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        let e = parse(&["--leader-elect-renew-deadline", "20s"]).unwrap_err();
        assert!(e.contains("--leader-elect-lease-duration"), "{e}");
        let e = parse(&["--kube-api-qps", "20"]).unwrap_err();
        assert!(e.contains("--kube-api-burst"), "{e}");
        let e = parse(&["--resync-period", "soon"]).unwrap_err();
        assert!(e.contains("invalid duration"), "{e}");
        let e = parse(&["--concurrency", "0"]).unwrap_err();
        assert!(e.contains("--concurrency"), "{e}");
    }

    #[test]
    fn lease_duration_is_whole_seconds_within_range() {
        // Truncated to leaseDurationSeconds, 1500ms would become 1 s on the Lease while
        // our own fence ran on 1.5 s: a follower could act while we still write.
        for bad in ["1500ms", "500ms", "15s 1ns"] {
            let e = parse(&["--leader-elect-lease-duration", bad]).unwrap_err();
            assert!(
                e.contains("must be a whole number of seconds"),
                "{bad}: {e}"
            );
        }
        for bad in ["0s", "301s", "1h"] {
            let e = parse(&["--leader-elect-lease-duration", bad]).unwrap_err();
            assert!(e.contains("must be between 1s and 5m"), "{bad}: {e}");
        }
        let c = parse(&[
            "--leader-elect-lease-duration",
            "5m",
            "--leader-elect-renew-deadline",
            "4m",
            "--leader-elect-retry-period",
            "30s",
        ])
        .unwrap();
        assert_eq!(c.lease.unwrap().lease_duration, Duration::from_secs(300));
        // Sub-second renew deadline and retry period are fine: they are never written.
        let c = parse(&[
            "--leader-elect-lease-duration",
            "3s",
            "--leader-elect-renew-deadline",
            "2500ms",
            "--leader-elect-retry-period",
            "500ms",
        ])
        .unwrap();
        assert_eq!(c.lease.unwrap().renew_deadline, Duration::from_millis(2500));
    }

    #[test]
    fn periods_are_positive_and_bounded() {
        let e = parse(&["--leader-elect-retry-period", "0s"]).unwrap_err();
        assert!(
            e.contains("--leader-elect-retry-period (0s) must be between"),
            "{e}"
        );
        let e = parse(&["--leader-elect-renew-deadline", "10m"]).unwrap_err();
        assert!(
            e.contains("--leader-elect-renew-deadline (10m) must be between"),
            "{e}"
        );
    }

    #[test]
    fn client_go_ordering_rules_hold() {
        let e = parse(&["--leader-elect-renew-deadline", "15s"]).unwrap_err();
        assert!(
            e.contains("--leader-elect-lease-duration (15s) must be greater than --leader-elect-renew-deadline (15s)"),
            "{e}"
        );
        // client-go: renewDeadline must be greater than retryPeriod*JitterFactor (1.2).
        let e = parse(&["--leader-elect-retry-period", "9s"]).unwrap_err();
        assert!(
            e.contains("--leader-elect-renew-deadline (10s) must be greater than --leader-elect-retry-period (9s) x 1.2"),
            "{e}"
        );
        assert!(parse(&["--leader-elect-retry-period", "8s"]).is_ok());
        // Not checked without election: the flags are unused then.
        assert!(parse(&["--leader-elect=false", "--leader-elect-retry-period", "9s"]).is_ok());
    }

    #[test]
    fn sar_cache_ttl_is_bounded() {
        let e = parse(&["--sar-cache-ttl", "11s"]).unwrap_err();
        assert!(
            e.contains("--sar-cache-ttl (11s) must be at most 10s"),
            "{e}"
        );
        let e = parse(&["--sar-cache-ttl", "1h"]).unwrap_err();
        assert!(e.contains("must be at most 10s"), "{e}");
        assert_eq!(
            parse(&["--sar-cache-ttl", "10s"]).unwrap().sar_cache_ttl,
            MAX_SAR_CACHE_TTL
        );
        assert_eq!(
            parse(&["--sar-cache-ttl", "0s"]).unwrap().sar_cache_ttl,
            Duration::ZERO
        );
        assert_eq!(parse(&[]).unwrap().sar_cache_ttl, Duration::from_secs(1));
    }
}
