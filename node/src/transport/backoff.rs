//! Redial backoff: how long to wait before dialing a lost peer again.
//!
//! Pure: the caller passes the random number, so the schedule is tested without
//! clocks or sleeps.

use std::time::Duration;

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
