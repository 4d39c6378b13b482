//! How an external call (condition facts, grant, revoke) ended, and the retry policy of its
//! transient failures.

use chrono::TimeDelta;

/// Outcome of an external call (condition facts, grant, revoke).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    Succeeded,
    /// Timeout, connection error, 5xx: worth another attempt.
    Transient(String),
    /// 4xx or a business refusal: another attempt would fail the same way.
    Permanent(String),
}

/// Retry policy of transient failures: exponential backoff with jitter, bounded attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: TimeDelta,
    pub max_delay: TimeDelta,
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1` (1-based `attempt` just failed); `jitter` in [0, 1)
    /// spreads retries of many requests over the second half of the backoff window.
    pub fn delay(&self, attempt: u32, jitter: f64) -> TimeDelta {
        let exponent = attempt.saturating_sub(1).min(20);
        let full =
            self.base_delay.num_milliseconds().saturating_mul(1_i64 << exponent).min(self.max_delay.num_milliseconds());
        let jittered = (full as f64) * (0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        TimeDelta::milliseconds(jittered as i64)
    }

    /// Whether another attempt is allowed after `attempts` attempts.
    pub fn allows_another(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: TimeDelta::milliseconds(100),
            max_delay: TimeDelta::seconds(1),
        };
        assert_eq!(p.delay(1, 1.0), TimeDelta::milliseconds(100));
        assert_eq!(p.delay(3, 1.0), TimeDelta::milliseconds(400));
        assert_eq!(p.delay(9, 1.0), TimeDelta::seconds(1));
        assert_eq!(p.delay(3, 0.0), TimeDelta::milliseconds(200));
    }
}
