//! Pure limits for the transport: a per-address rate limiter and redial backoff.
//!
//! Both take `now` (or a random number) as an argument, so they are tested
//! without clocks or sleeps.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A token bucket per source address, bounding how often nodes nobody approved
/// may be recorded as pending requests.
///
/// Memory is bounded too: at most `addresses_max` addresses are tracked; when a
/// new one arrives at a full table, buckets that have refilled completely are
/// forgotten first (they carry no information), then the least recently used.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: HashMap<IpAddr, Bucket>,
    burst: f64,
    refill_per_sec: f64,
    addresses_max: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// Allows `burst` attempts at once per address, refilling `refill_per_sec`,
    /// tracking at most `addresses_max` addresses.
    pub fn new(burst: u32, refill_per_sec: f64, addresses_max: usize) -> RateLimiter {
        RateLimiter {
            buckets: HashMap::new(),
            burst: f64::from(burst),
            refill_per_sec,
            addresses_max: addresses_max.max(1),
        }
    }

    /// Whether an attempt from `ip` at `now` is allowed (and takes a token if so).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.addresses_max {
            self.evict(now);
        }
        let burst = self.burst;
        let refill = self.refill_per_sec;
        let bucket = self.buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * refill).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn evict(&mut self, now: Instant) {
        let (burst, refill) = (self.burst, self.refill_per_sec);
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * refill < burst
        });
        if self.buckets.len() >= self.addresses_max {
            if let Some(oldest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(ip, _)| *ip)
            {
                self.buckets.remove(&oldest);
            }
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

/// Exponential backoff with jitter for redialing a peer.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `base`, doubles per failure, never above `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            attempt: 0,
            base,
            max,
        }
    }

    /// The wait before the next attempt, given a random number in `[0, 1)`: full
    /// jitter over the upper half, so peers that lost each other at the same
    /// moment do not redial in lockstep.
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(16));
        let ceiling = exp.min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
    }

    /// A success: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills() {
        let mut r = RateLimiter::new(3, 1.0, 100);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(r.allow(ip, t0) && r.allow(ip, t0) && r.allow(ip, t0));
        assert!(!r.allow(ip, t0), "burst spent");
        assert!(!r.allow(ip, t0 + Duration::from_millis(500)));
        assert!(
            r.allow(ip, t0 + Duration::from_millis(1600)),
            "one token back after a second"
        );
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(r.allow(other, t0), "addresses are independent");
    }

    #[test]
    fn the_table_never_grows_past_its_bound() {
        let mut r = RateLimiter::new(1, 0.001, 50);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            r.allow(ip, t0 + Duration::from_millis(u64::from(i)));
            assert!(r.tracked() <= 50);
        }
    }

    #[test]
    fn backoff_grows_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay(1.0)).collect();
        assert_eq!(delays[0], Duration::from_secs(1));
        assert_eq!(delays[1], Duration::from_secs(2));
        assert_eq!(delays[5], Duration::from_secs(32));
        assert_eq!(delays[9], Duration::from_secs(60), "capped");
        assert_eq!(
            b.next_delay(0.0),
            Duration::from_secs(30),
            "jitter keeps at least half"
        );
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_secs(1));
    }
}
