//! The per-address budget for pending requests.
//!
//! A node nobody approved gets nothing but a line in `labnet peers pending`, and
//! even that line costs a store write. This token bucket bounds how often one
//! source address may cause one, so a flood of fresh keys from one host cannot
//! churn the pending list. It takes `now` as an argument, so it is tested
//! without clocks or sleeps.
//!
//! What counts as "one source" ([`budget_key`]): an IPv4 address by itself,
//! but an IPv6 address by its /64 ([`IPV6_PREFIX_LEN`]). A single IPv6 host
//! is routinely given a whole /64 and can pick any of its 2^64 addresses, so
//! a budget per IPv6 address would be no budget at all.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

/// The IPv6 prefix that shares one budget. /64 is the smallest block a
/// network hands out to one link or host (RFC 4291's interface identifier is
/// the other 64 bits, chosen freely by the host, e.g. for privacy addresses),
/// so anything finer lets one machine mint fresh budgets at will.
pub const IPV6_PREFIX_LEN: u32 = 64;

/// The source a budget belongs to: an IPv4 address as it is (also when it
/// arrives IPv4-mapped on a dual-stack socket), an IPv6 address cut to its
/// [`IPV6_PREFIX_LEN`]-bit prefix.
pub fn budget_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = u128::MAX << (128 - IPV6_PREFIX_LEN);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

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

    /// Whether an attempt from `ip` at `now` is allowed (and takes a token if
    /// so). Every address of one IPv6 /64 draws on the same bucket.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let ip = budget_key(ip);
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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A limiter whose buckets never refill, so a test counts the burst
    /// alone, and the instant it starts from.
    fn without_refill(burst: u32) -> (RateLimiter, Instant) {
        (RateLimiter::new(burst, 0.0, 100), Instant::now())
    }

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

    /// The attack: one IPv6 host owns a /64 and rotates through its
    /// addresses so that every attempt finds a fresh bucket.
    #[test]
    fn addresses_rotated_within_one_ipv6_slash_64_share_one_budget() {
        let (mut r, t0) = without_refill(2);
        assert!(r.allow(ip("2001:db8:1:2::1"), t0));
        assert!(r.allow(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), t0));
        assert!(
            !r.allow(ip("2001:db8:1:2:abcd::7"), t0),
            "a third address of the same /64 finds the budget spent"
        );
        assert_eq!(r.tracked(), 1, "one bucket for the whole /64");
        assert!(
            r.allow(ip("2001:db8:1:3::1"), t0),
            "the neighbouring /64 has its own budget"
        );
    }

    #[test]
    fn ipv4_addresses_keep_a_budget_each_also_when_mapped_into_ipv6() {
        let (mut r, t0) = without_refill(1);
        assert!(r.allow(ip("192.0.2.1"), t0));
        assert!(
            !r.allow(ip("::ffff:192.0.2.1"), t0),
            "the same IPv4 address arriving on a dual-stack socket is the same source"
        );
        assert!(
            r.allow(ip("192.0.2.2"), t0),
            "IPv4 is per address, not per subnet"
        );
    }

    #[test]
    fn budget_keys_cut_ipv6_to_its_slash_64() {
        assert_eq!(
            budget_key(ip("2001:db8:aa:bb:1:2:3:4")),
            ip("2001:db8:aa:bb::")
        );
        assert_eq!(budget_key(ip("198.51.100.9")), ip("198.51.100.9"));
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
