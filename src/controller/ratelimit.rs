//! Client-side request rate limit (token bucket), like client-go's `--kube-api-qps` /
//! `--kube-api-burst`. Applied to every request the reconciler makes (SARs, approval
//! writes, Events); watches are long-lived and not counted.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Pure token bucket: how long the caller must wait for one token.
#[derive(Debug)]
pub struct Bucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(qps: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Bucket {
            qps,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token, returning how long to wait before using it (zero when one was
    /// available). Tokens may go negative: waiters queue in arrival order.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
    }

    pub fn take(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.qps)
        }
    }
}

impl Bucket {
    /// Takes a token only if one is available now (never queues).
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Shared limiter; `qps <= 0` means unlimited.
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Option<Mutex<Bucket>>,
}

impl RateLimiter {
    pub fn new(qps: f64, burst: u32) -> Self {
        RateLimiter {
            bucket: (qps > 0.0).then(|| Mutex::new(Bucket::new(qps, burst, Instant::now()))),
        }
    }

    pub async fn acquire(&self) {
        if let Some(bucket) = &self.bucket {
            let wait = bucket.lock().await.take(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(20.0, 30, t0);
        for _ in 0..30 {
            assert_eq!(b.take(t0), Duration::ZERO);
        }
        // The 31st waits one token's time (50 ms at 20 qps), the 32nd two.
        assert_eq!(b.take(t0), Duration::from_millis(50));
        assert_eq!(b.take(t0), Duration::from_millis(100));
    }

    #[test]
    fn tokens_refill_but_never_beyond_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, 2, t0);
        b.take(t0);
        b.take(t0);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(b.take(later), Duration::ZERO);
        assert_eq!(b.take(later), Duration::ZERO);
        assert!(b.take(later) > Duration::ZERO);
    }

    #[test]
    fn try_take_never_goes_into_debt() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1.0, 2, t0);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_secs(1)));
    }

    /// `qps <= 0` disables the limit (the daemon's `--kube-api-qps 0`): a thousand requests
    /// never sleep. Time is paused, so a limiter that did sleep would still finish at once;
    /// the virtual clock is what tells.
    #[tokio::test(start_paused = true)]
    async fn zero_qps_is_unlimited() {
        for qps in [0.0, -1.0] {
            let l = RateLimiter::new(qps, 0);
            let t0 = Instant::now();
            for _ in 0..1000 {
                l.acquire().await;
            }
            assert_eq!(Instant::now() - t0, Duration::ZERO, "qps {qps} slept");
        }
    }

    /// The other side of the measurement above: a limited limiter does sleep, on the virtual
    /// clock, exactly as long as its bucket says.
    #[tokio::test(start_paused = true)]
    async fn a_limited_limiter_sleeps_on_the_virtual_clock() {
        let l = RateLimiter::new(10.0, 1);
        let t0 = Instant::now();
        for _ in 0..11 {
            l.acquire().await;
        }
        // One from the burst, then ten at 100 ms each.
        assert_eq!(Instant::now() - t0, Duration::from_secs(1));
    }
}
