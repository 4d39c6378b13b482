//! Token-bucket rate limits, one bucket per key (a client address, a user id).
//!
//! A bucket holds up to `burst` tokens and refills at `per_second`; a request takes one token
//! or is refused with the time until the next one. Buckets that are full again carry no
//! information and are dropped when the map grows, so memory follows the active clients.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shape of a limit. `per_second == 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    pub fn is_off(&self) -> bool {
        self.per_second == 0
    }
}

/// One key's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Self { tokens: f64::from(rate.burst.max(1)), updated: now }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate.per_second)).min(f64::from(rate.burst.max(1)));
        self.updated = now;
    }

    /// Takes a token, or says how long until one is available.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / f64::from(rate.per_second)))
        }
    }

    fn is_full(&self, rate: Rate, now: Instant) -> bool {
        let mut probe = *self;
        probe.refill(rate, now);
        probe.tokens >= f64::from(rate.burst.max(1))
    }
}

/// A shard sweeps its full buckets when it holds more than this many, or more than twice
/// what the last sweep kept: with many active clients sweeps get rarer, not constant.
const SWEEP_ABOVE: usize = 1024;

/// Independent locks, so concurrent requests for different keys rarely wait on each other.
const SHARDS: usize = 16;

#[derive(Debug)]
struct Shard<K> {
    buckets: HashMap<K, Bucket>,
    sweep_above: usize,
}

/// A rate limit per key.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: Rate,
    shards: Box<[Mutex<Shard<K>>]>,
    hasher: RandomState,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub fn new(rate: Rate) -> Self {
        Self::with_shards(rate, SHARDS)
    }

    fn with_shards(rate: Rate, shards: usize) -> Self {
        let shards = (0..shards.max(1))
            .map(|_| Mutex::new(Shard { buckets: HashMap::new(), sweep_above: SWEEP_ABOVE }))
            .collect();
        Self { rate, shards, hasher: RandomState::new() }
    }

    /// Admits one request for `key` at `now`, or returns how long the caller should wait.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.rate.is_off() {
            return Ok(());
        }
        let rate = self.rate;
        let index = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        // A poisoned lock only means another request panicked mid-update; the map is still
        // a valid set of buckets.
        let mut shard = self.shards[index].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if shard.buckets.len() > shard.sweep_above {
            shard.buckets.retain(|_, bucket| !bucket.is_full(rate, now));
            shard.sweep_above = (2 * shard.buckets.len()).max(SWEEP_ABOVE);
        }
        shard.buckets.entry(key.clone()).or_insert_with(|| Bucket::full(rate, now)).take(rate, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate { per_second: 10, burst: 3 };

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let limiter = RateLimiter::new(RATE);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(&"a", start).is_ok());
        }
        let wait = limiter.check(&"a", start).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(limiter.check(&"a", start + Duration::from_millis(100)).is_ok(), "one token per 100 ms");
        assert!(limiter.check(&"a", start + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let limiter = RateLimiter::new(RATE);
        let now = Instant::now();
        for _ in 0..3 {
            limiter.check(&"a", now).unwrap();
        }
        assert!(limiter.check(&"a", now).is_err());
        assert!(limiter.check(&"b", now).is_ok());
    }

    #[test]
    fn a_bucket_never_holds_more_than_its_burst() {
        let limiter = RateLimiter::new(RATE);
        let start = Instant::now();
        limiter.check(&"a", start).unwrap();
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            limiter.check(&"a", later).unwrap();
        }
        assert!(limiter.check(&"a", later).is_err());
    }

    #[test]
    fn a_zero_rate_is_off() {
        let limiter = RateLimiter::new(Rate { per_second: 0, burst: 0 });
        let now = Instant::now();
        assert!((0..1000).all(|_| limiter.check(&"a", now).is_ok()));
    }

    #[test]
    fn full_buckets_are_swept_when_the_map_grows() {
        let limiter = RateLimiter::with_shards(RATE, 1);
        let start = Instant::now();
        for key in 0..=SWEEP_ABOVE {
            limiter.check(&key, start).unwrap();
        }
        limiter.check(&usize::MAX, start + Duration::from_secs(1)).unwrap();
        assert_eq!(limiter.shards[0].lock().unwrap().buckets.len(), 1, "only the newest bucket is not full");
    }

    #[test]
    fn sweeps_get_rarer_while_every_client_is_active() {
        let limiter = RateLimiter::with_shards(RATE, 1);
        let now = Instant::now();
        let active = 3 * SWEEP_ABOVE;
        for key in 0..active {
            limiter.check(&key, now).unwrap();
        }
        // Sweeps at SWEEP_ABOVE + 1 and again at 2 × (SWEEP_ABOVE + 1) kept every bucket.
        let shard = limiter.shards[0].lock().unwrap();
        assert_eq!(shard.buckets.len(), active);
        assert!(shard.sweep_above >= 4 * SWEEP_ABOVE, "next sweep at {}", shard.sweep_above);
    }
}
