//! The instances of one service behind the gateway, and which one gets the next request.
//!
//! A service URL setting may list several instances (`http://e1:8082,http://e2:8082`). Requests
//! go round-robin over the instances believed up. An instance that refuses a connection (or
//! does not accept one within the connect timeout), or fails a request before answering it
//! (the connection reset or closed: a killed process), is believed down for
//! [`Instances::REST_AFTER_REFUSAL`] and skipped meanwhile; after that the next request tries it
//! again, so it is back in the rotation as soon as it answers. A refused connection carried
//! nothing, so the gateway sends the same request to the next instance at once; after a failed
//! request it does so only when a resend is safe (see `crate::proxy`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bestow_core::http::service_base_url;

/// One instance: its base URL and, while it is believed down, until when.
#[derive(Debug)]
struct Instance {
    base: String,
    down_until: Mutex<Option<Instant>>,
}

/// The instances of one service.
#[derive(Debug)]
pub struct Instances {
    all: Vec<Instance>,
    next: AtomicUsize,
}

impl Instances {
    /// How long an instance that refused a connection, or failed a request, is left alone.
    pub const REST_AFTER_REFUSAL: Duration = Duration::from_secs(2);

    /// Parses a comma-separated list of `http://host:port` base URLs (at least one).
    pub fn parse(list: &str) -> Result<Self, String> {
        let all = list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|url| {
                service_base_url(url)
                    .map(|base| Instance { base: base.to_owned(), down_until: Mutex::new(None) })
                    .ok_or_else(|| format!("service URL {url:?} must be http://host:port"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if all.is_empty() {
            return Err("no service URL given".to_owned());
        }
        Ok(Self { all, next: AtomicUsize::new(0) })
    }

    /// How many instances there are.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Always false: there is at least one instance.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The base URLs, in configuration order.
    pub fn bases(&self) -> impl Iterator<Item = &str> {
        self.all.iter().map(|instance| instance.base.as_str())
    }

    /// The instances to try for one request, in order: those believed up, round-robin from the
    /// next one, then those believed down (a last resort when every instance refused lately).
    pub fn order(&self, now: Instant) -> Vec<usize> {
        let count = self.all.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let (up, down): (Vec<usize>, Vec<usize>) =
            (0..count).map(|offset| (start + offset) % count).partition(|&index| self.is_up(index, now));
        up.into_iter().chain(down).collect()
    }

    /// The base URL of instance `index`.
    pub fn base(&self, index: usize) -> &str {
        &self.all[index].base
    }

    /// Records that instance `index` refused a connection or failed a request unanswered.
    pub fn refused(&self, index: usize, now: Instant) {
        *self.lock(index) = Some(now + Self::REST_AFTER_REFUSAL);
    }

    /// Records that instance `index` answered.
    pub fn answered(&self, index: usize) {
        let mut down_until = self.lock(index);
        if down_until.is_some() {
            *down_until = None;
        }
    }

    fn is_up(&self, index: usize, now: Instant) -> bool {
        self.lock(index).is_none_or(|until| now >= until)
    }

    fn lock(&self, index: usize) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // A poisoned lock only means a panic elsewhere mid-update; the value is still usable.
        self.all[index].down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_round_robin_and_skip_an_instance_that_refused() {
        let instances =
            Instances::parse("http://e1:8082, http://e2:8082,http://e3:8082").unwrap_or_else(|e| panic!("{e}"));
        let now = Instant::now();
        let firsts: Vec<usize> = (0..6).map(|_| instances.order(now)[0]).collect();
        assert_eq!(firsts, [0, 1, 2, 0, 1, 2]);

        instances.refused(1, now);
        let orders: Vec<Vec<usize>> = (0..3).map(|_| instances.order(now)).collect();
        assert!(orders.iter().all(|order| order.last() == Some(&1)), "the refusing instance comes last: {orders:?}");
        // After its rest it is tried again, and an answer puts it back for good.
        let later = now + Instances::REST_AFTER_REFUSAL;
        assert!((0..3).any(|_| instances.order(later)[0] == 1));
        instances.answered(1);
        assert!((0..3).any(|_| instances.order(now)[0] == 1));
    }

    #[test]
    fn lists_are_checked_item_by_item() {
        assert!(Instances::parse("http://e1:8082").is_ok_and(|i| i.len() == 1));
        assert!(Instances::parse("http://e1:8082,https://e2").is_err());
        assert!(Instances::parse(" , ").is_err());
    }
}
