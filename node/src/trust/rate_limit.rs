//! The per-address budget for pending requests.
//!
//! A node nobody approved gets nothing but a line in `labnet peers pending`, and
//! even that line costs a store write. This token bucket bounds how often one
//! source address may cause one, so a flood of fresh keys from one host cannot
//! churn the pending list. It takes `now` as an argument, so it is tested
//! without clocks or sleeps.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
