//! Login throttling: too many failed logins for one username or from one address within a
//! window, and further attempts are refused with 429 before any password is hashed.
//!
//! An attempt is counted as a failure when it *begins* (under the lock that checks the limit)
//! and refunded if it succeeds, so that concurrent attempts cannot all pass the check before
//! any of them is recorded: at most `limit` password checks per key and window, however many
//! arrive at once. The same throttle guards password changes, which also check a password.
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

/// A password check in progress, counted as a failure unless it is handed back to
/// [`LoginThrottle::succeeded`].
#[derive(Debug)]
#[must_use = "a successful attempt must be refunded with `succeeded`"]
pub struct Attempt {
    username: String,
    address: Option<IpAddr>,
    at: Instant,
}

/// Above this many tracked keys, expired ones are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self { settings, failures: Mutex::new(HashMap::new()) }
    }

    /// Begins a password check for `username` from `address`, counted as a failure until
    /// [`Self::succeeded`] says otherwise; `Err(seconds to wait)` when either has used up its
    /// failures (then nothing is counted).
    pub fn begin(&self, username: &str, address: Option<IpAddr>) -> Result<Attempt, u64> {
        self.begin_at(username, address, Instant::now())
    }

    /// Refunds a successful attempt and forgets the username's failures (the address keeps
    /// its earlier failures, so one valid account cannot launder guesses against others).
    pub fn succeeded(&self, attempt: Attempt) {
        let mut failures = self.lock();
        failures.remove(&Key::Username(attempt.username));
        if let Some(address) = attempt.address
            && let Some(times) = failures.get_mut(&Key::Address(address))
            && let Some(position) = times.iter().rposition(|t| *t == attempt.at)
        {
            times.remove(position);
        }
    }

    fn begin_at(&self, username: &str, address: Option<IpAddr>, now: Instant) -> Result<Attempt, u64> {
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
        if let Some(wait) = wait {
            return Err(wait.as_secs().max(1));
        }
        self.record_failure_locked(&mut failures, username, address, now);
        Ok(Attempt { username: username.to_ascii_lowercase(), address, at: now })
    }

    fn record_failure_locked(
        &self,
        failures: &mut HashMap<Key, VecDeque<Instant>>,
        username: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) {
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
            assert!(t.begin_at("Alice", None, start).is_ok());
        }
        assert_eq!(t.begin_at("ALICE", None, start).err(), Some(60));
        assert!(t.begin_at("bob", None, start).is_ok());
        assert!(t.begin_at("alice", None, start + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn addresses_are_limited_across_usernames() {
        let t = throttle();
        let now = Instant::now();
        let ip: IpAddr = [127, 0, 0, 9].into();
        for name in ["a1", "a2", "a3", "a4", "a5"] {
            assert!(t.begin_at(name, Some(ip), now).is_ok());
        }
        assert!(t.begin_at("someone-else", Some(ip), now).is_err());
        assert!(t.begin_at("someone-else", Some([127, 0, 0, 8].into()), now).is_ok());
    }

    #[test]
    fn success_clears_the_username_but_not_the_address() {
        let t = throttle();
        let now = Instant::now();
        let ip: IpAddr = [127, 0, 0, 7].into();
        for _ in 0..2 {
            assert!(t.begin_at("carol", Some(ip), now).is_ok());
        }
        let third = t.begin_at("carol", Some(ip), now).unwrap_or_else(|wait| panic!("refused for {wait} s"));
        t.succeeded(third);
        assert!(t.begin_at("carol", None, now).is_ok());
        // Two failures and one refunded success from this address: three more attempts fit.
        for name in ["dave", "erin", "fay"] {
            assert!(t.begin_at(name, Some(ip), now).is_ok(), "{name}");
        }
        assert!(t.begin_at("gus", Some(ip), now).is_err());
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let t = throttle();
        let now = Instant::now();
        // Three attempts begun and not yet finished: a fourth is refused before any check.
        let in_flight: Vec<Attempt> = (0..3).filter_map(|_| t.begin_at("gus", None, now).ok()).collect();
        assert_eq!(in_flight.len(), 3);
        assert!(t.begin_at("gus", None, now).is_err());
    }
}
