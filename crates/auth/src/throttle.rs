//! Login throttling: too many failed logins for one username or from one address within a
//! window, and further attempts are refused with 429 before any password is hashed.
//!
//! Counters are per process and in memory: a restart forgets them, which is acceptable for a
//! brake on guessing (the window is minutes). Split-mode replicas each keep their own.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits of the login throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Failed logins allowed per username within the window.
    pub per_username: usize,
    /// Failed logins allowed per client address within the window.
    pub per_address: usize,
    pub window: Duration,
}

/// Sliding-window failure counters per username and per address.
#[derive(Debug)]
pub struct LoginThrottle {
    settings: ThrottleSettings,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Username(String),
    Address(IpAddr),
}

/// Above this many tracked keys, expired ones are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self { settings, failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds to wait)` when this username or address has used up its failures.
    pub fn check(&self, username: &str, address: Option<IpAddr>) -> Result<(), u64> {
        self.check_at(username, address, Instant::now())
    }

    /// Records a failed login.
    pub fn record_failure(&self, username: &str, address: Option<IpAddr>) {
        self.record_failure_at(username, address, Instant::now());
    }

    /// Forgets the username's failures after a successful login (the address keeps its count,
    /// so one valid account cannot launder guesses against others).
    pub fn record_success(&self, username: &str) {
        self.lock().remove(&Key::Username(username.to_ascii_lowercase()));
    }

    fn check_at(&self, username: &str, address: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let mut failures = self.lock();
        let wait = self
            .keys(username, address)
            .filter_map(|(key, limit)| {
                let times = failures.get_mut(&key)?;
                prune(times, now, self.settings.window);
                (times.len() >= limit).then(|| {
                    let oldest = times.front().copied().unwrap_or(now);
                    (oldest + self.settings.window).saturating_duration_since(now)
                })
            })
            .max();
        match wait {
            Some(wait) => Err(wait.as_secs().max(1)),
            None => Ok(()),
        }
    }

    fn record_failure_at(&self, username: &str, address: Option<IpAddr>, now: Instant) {
        let mut failures = self.lock();
        if failures.len() > SWEEP_ABOVE {
            let window = self.settings.window;
            failures.retain(|_, times| {
                prune(times, now, window);
                !times.is_empty()
            });
        }
        for (key, limit) in self.keys(username, address) {
            let times = failures.entry(key).or_default();
            prune(times, now, self.settings.window);
            times.push_back(now);
            // Only the newest `limit` failures matter to the verdict.
            while times.len() > limit {
                times.pop_front();
            }
        }
    }

    fn keys(&self, username: &str, address: Option<IpAddr>) -> impl Iterator<Item = (Key, usize)> {
        let by_name = (Key::Username(username.to_ascii_lowercase()), self.settings.per_username);
        let by_address = address.map(|ip| (Key::Address(ip), self.settings.per_address));
        std::iter::once(by_name).chain(by_address)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottleSettings { per_username: 3, per_address: 5, window: Duration::from_secs(60) })
    }

    #[test]
    fn the_n_plus_first_failure_is_refused_until_the_window_passes() {
        let t = throttle();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.check_at("Alice", None, start).is_ok());
            t.record_failure_at("alice", None, start);
        }
        assert_eq!(t.check_at("ALICE", None, start), Err(60));
        assert!(t.check_at("bob", None, start).is_ok());
        assert!(t.check_at("alice", None, start + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn addresses_are_limited_across_usernames() {
        let t = throttle();
        let now = Instant::now();
        let ip: IpAddr = [127, 0, 0, 9].into();
        for name in ["a1", "a2", "a3", "a4", "a5"] {
            t.record_failure_at(name, Some(ip), now);
        }
        assert!(t.check_at("someone-else", Some(ip), now).is_err());
        assert!(t.check_at("someone-else", Some([127, 0, 0, 8].into()), now).is_ok());
    }

    #[test]
    fn success_clears_the_username_but_not_the_address() {
        let t = throttle();
        let now = Instant::now();
        let ip: IpAddr = [127, 0, 0, 7].into();
        for _ in 0..3 {
            t.record_failure_at("carol", Some(ip), now);
        }
        t.record_success("carol");
        assert!(t.check_at("carol", None, now).is_ok());
    }
}
