//! `events.recurrence`: an event that pays again after a reset (a daily check-in, weekly
//! missions, a monthly pass), and the periods it divides time into.
//!
//! A period is an interval of the local calendar in the event's timezone: a DAILY period that
//! spans a DST change lasts 23 or 25 hours, and a reset always happens at the same wall-clock
//! time. A reset time that a spring-forward gap skips (02:30 in New York on the second Sunday
//! of March) happens at the first wall-clock time after the gap; one that a fall-back repeats
//! happens at its first occurrence.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::validation::FieldError;

/// How often an event resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecurrencePeriod {
    Daily,
    Weekly,
    Monthly,
}

/// A day of the week, as `resetWeekday` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResetWeekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl ResetWeekday {
    fn weekday(self) -> chrono::Weekday {
        use chrono::Weekday as W;
        match self {
            Self::Monday => W::Mon,
            Self::Tuesday => W::Tue,
            Self::Wednesday => W::Wed,
            Self::Thursday => W::Thu,
            Self::Friday => W::Fri,
            Self::Saturday => W::Sat,
            Self::Sunday => W::Sun,
        }
    }
}

/// Latest `resetDay` of a MONTHLY event: every month has a 28th.
pub const MAX_RESET_DAY: u32 = 28;

/// When an event resets, as stored: `resetWeekday` only for WEEKLY, `resetDay` only for
/// MONTHLY, both filled in with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recurrence {
    /// `DAILY`, `WEEKLY` or `MONTHLY`.
    pub period: RecurrencePeriod,
    /// Local wall-clock time of the reset, `HH:MM`.
    #[serde(with = "hh_mm")]
    #[schema(value_type = String, pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "05:00")]
    pub reset_time: NaiveTime,
    /// Day of a WEEKLY reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_weekday: Option<ResetWeekday>,
    /// Day of the month of a MONTHLY reset, 1 to 28.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 28)]
    pub reset_day: Option<u32>,
}

/// One period of a recurring event: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    /// The reset that opened the period.
    pub start: DateTime<Utc>,
    /// The next reset.
    pub end: DateTime<Utc>,
}

impl Period {
    /// Whether `at` lies in the period.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// `recurrence` as an operator sends it (documented by `schemas::RecurrenceSpec`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecurrenceInput {
    /// `DAILY`, `WEEKLY` or `MONTHLY`.
    pub period: RecurrencePeriod,
    /// Local time of the reset, `HH:MM`; `00:00` when absent.
    pub reset_time: Option<String>,
    /// WEEKLY only; `MONDAY` when absent.
    pub reset_weekday: Option<ResetWeekday>,
    /// MONTHLY only, 1 to 28; 1 when absent.
    pub reset_day: Option<i64>,
}

impl RecurrenceInput {
    /// Validates the input found at `pointer` (e.g. `/recurrence`), reporting every bad member.
    pub fn validate(&self, pointer: &str) -> Result<Recurrence, Vec<FieldError>> {
        let mut errors = Vec::new();
        let reset_time = match self.reset_time.as_deref() {
            None => Some(NaiveTime::MIN),
            Some(text) => hh_mm::parse(text).or_else(|| {
                let message = "must be a local time `HH:MM` from 00:00 to 23:59";
                errors.push(FieldError::new(format!("{pointer}/resetTime"), "invalid", message));
                None
            }),
        };
        let weekly = self.period == RecurrencePeriod::Weekly;
        let monthly = self.period == RecurrencePeriod::Monthly;
        if self.reset_weekday.is_some() && !weekly {
            errors.push(FieldError::new(format!("{pointer}/resetWeekday"), "invalid", "only a WEEKLY event has one"));
        }
        match self.reset_day {
            Some(_) if !monthly => {
                errors.push(FieldError::new(format!("{pointer}/resetDay"), "invalid", "only a MONTHLY event has one"));
            }
            Some(day) if !(1..=i64::from(MAX_RESET_DAY)).contains(&day) => {
                let message = format!("must be from 1 to {MAX_RESET_DAY}, a day every month has");
                errors.push(FieldError::out_of_range(format!("{pointer}/resetDay"), message));
            }
            _ => {}
        }
        match reset_time {
            Some(reset_time) if errors.is_empty() => Ok(Recurrence {
                period: self.period,
                reset_time,
                reset_weekday: weekly.then(|| self.reset_weekday.unwrap_or(ResetWeekday::Monday)),
                reset_day: monthly.then(|| self.reset_day.and_then(|d| u32::try_from(d).ok()).unwrap_or(1)),
            }),
            _ => Err(errors),
        }
    }
}

impl Recurrence {
    /// The period containing `at`, in calendar `timezone`.
    pub fn period_at(&self, at: DateTime<Utc>, timezone: Tz) -> Period {
        let today = at.with_timezone(&timezone).date_naive();
        let mut start_day = self.latest_reset_day_on_or_before(today);
        if self.reset_on(start_day, timezone) > at {
            start_day = self.previous_reset_day(start_day);
        }
        let end_day = self.next_reset_day(start_day);
        Period { start: self.reset_on(start_day, timezone), end: self.reset_on(end_day, timezone) }
    }

    /// The latest local date on or before `day` on which a reset happens.
    fn latest_reset_day_on_or_before(&self, day: NaiveDate) -> NaiveDate {
        match self.period {
            RecurrencePeriod::Daily => day,
            RecurrencePeriod::Weekly => {
                let wanted = self.reset_weekday.unwrap_or(ResetWeekday::Monday).weekday();
                let back = (7 + day.weekday().num_days_from_monday() - wanted.num_days_from_monday()) % 7;
                day - Days::new(u64::from(back))
            }
            RecurrencePeriod::Monthly => {
                let reset_day = self.reset_day.unwrap_or(1).clamp(1, MAX_RESET_DAY);
                let this_month = day.with_day(reset_day).unwrap_or(day);
                if this_month <= day { this_month } else { this_month - Months::new(1) }
            }
        }
    }

    fn previous_reset_day(&self, day: NaiveDate) -> NaiveDate {
        match self.period {
            RecurrencePeriod::Daily => day - Days::new(1),
            RecurrencePeriod::Weekly => day - Days::new(7),
            RecurrencePeriod::Monthly => day - Months::new(1),
        }
    }

    fn next_reset_day(&self, day: NaiveDate) -> NaiveDate {
        match self.period {
            RecurrencePeriod::Daily => day + Days::new(1),
            RecurrencePeriod::Weekly => day + Days::new(7),
            RecurrencePeriod::Monthly => day + Months::new(1),
        }
    }

    /// The instant of the reset on local date `day`.
    fn reset_on(&self, day: NaiveDate, timezone: Tz) -> DateTime<Utc> {
        let mut local = day.and_time(self.reset_time);
        // A skipped wall-clock time lies in a DST gap: the gap ends at the first minute that
        // exists. Gaps are an hour or less in practice; a day bounds the search.
        for _ in 0..24 * 60 {
            if let Some(instant) = local.and_local_timezone(timezone).earliest() {
                return instant.with_timezone(&Utc);
            }
            local += TimeDelta::minutes(1);
        }
        local.and_utc()
    }
}

/// `HH:MM` (de)serialization of a reset time.
mod hh_mm {
    use chrono::{NaiveTime, Timelike};
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn parse(text: &str) -> Option<NaiveTime> {
        let (hours, minutes) = text.split_once(':')?;
        let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|byte| byte.is_ascii_digit());
        if !two_digits(hours) || !two_digits(minutes) {
            return None;
        }
        NaiveTime::from_hms_opt(hours.parse().ok()?, minutes.parse().ok()?, 0)
    }

    pub fn serialize<S: Serializer>(time: &NaiveTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{:02}:{:02}", time.hour(), time.minute()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).ok_or_else(|| de::Error::custom(format!("`{text}` is not a time HH:MM")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn recurrence(value: serde_json::Value) -> Recurrence {
        serde_json::from_value::<RecurrenceInput>(value).unwrap().validate("/recurrence").unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn period(start: &str, end: &str) -> Period {
        Period { start: at(start), end: at(end) }
    }

    #[test]
    fn a_daily_period_runs_from_one_reset_to_the_next() {
        let daily = recurrence(json!({"period": "DAILY", "resetTime": "05:00"}));
        let seoul = chrono_tz::Asia::Seoul;
        let before_reset = daily.period_at(at("2026-03-10T04:59:59+09:00"), seoul);
        assert_eq!(before_reset, period("2026-03-09T05:00:00+09:00", "2026-03-10T05:00:00+09:00"));
        let at_reset = daily.period_at(at("2026-03-10T05:00:00+09:00"), seoul);
        assert_eq!(at_reset, period("2026-03-10T05:00:00+09:00", "2026-03-11T05:00:00+09:00"));
        assert!(at_reset.contains(at("2026-03-11T04:59:59.999+09:00")));
        assert!(!at_reset.contains(at("2026-03-11T05:00:00+09:00")));
    }

    #[test]
    fn a_daily_period_across_dst_changes_is_one_local_day() {
        let daily = recurrence(json!({"period": "DAILY"}));
        let new_york = chrono_tz::America::New_York;
        let spring = daily.period_at(at("2026-03-08T12:00:00-04:00"), new_york);
        assert_eq!(spring, period("2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"));
        assert_eq!(spring.end - spring.start, TimeDelta::hours(23));
        let autumn = daily.period_at(at("2026-11-01T12:00:00-05:00"), new_york);
        assert_eq!(autumn, period("2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"));
        assert_eq!(autumn.end - autumn.start, TimeDelta::hours(25));
    }

    #[test]
    fn a_reset_in_a_dst_gap_happens_when_the_gap_ends_and_in_an_overlap_the_first_time() {
        let new_york = chrono_tz::America::New_York;
        let gap = recurrence(json!({"period": "DAILY", "resetTime": "02:30"}));
        let spring = gap.period_at(at("2026-03-08T12:00:00-04:00"), new_york);
        assert_eq!(spring.start, at("2026-03-08T03:00:00-04:00"));
        let off_the_quarter = recurrence(json!({"period": "DAILY", "resetTime": "02:10"}));
        let spring = off_the_quarter.period_at(at("2026-03-08T12:00:00-04:00"), new_york);
        assert_eq!(spring.start, at("2026-03-08T03:00:00-04:00"), "the gap's end, not 03:10");
        let overlap = recurrence(json!({"period": "DAILY", "resetTime": "01:30"}));
        let autumn = overlap.period_at(at("2026-11-01T12:00:00-05:00"), new_york);
        assert_eq!(autumn.start, at("2026-11-01T01:30:00-04:00"));
    }

    #[test]
    fn weekly_and_monthly_periods() {
        let weekly = recurrence(json!({"period": "WEEKLY"}));
        assert_eq!(weekly.reset_weekday, Some(ResetWeekday::Monday));
        // 2026-03-04 is a Wednesday.
        let week = weekly.period_at(at("2026-03-04T10:00:00Z"), Tz::UTC);
        assert_eq!(week, period("2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z"));
        let sunday = recurrence(json!({"period": "WEEKLY", "resetWeekday": "SUNDAY", "resetTime": "18:00"}));
        let week = sunday.period_at(at("2026-03-08T17:59:00Z"), Tz::UTC);
        assert_eq!(week, period("2026-03-01T18:00:00Z", "2026-03-08T18:00:00Z"));
        let monthly = recurrence(json!({"period": "MONTHLY", "resetDay": 15}));
        let month = monthly.period_at(at("2026-03-04T10:00:00Z"), Tz::UTC);
        assert_eq!(month, period("2026-02-15T00:00:00Z", "2026-03-15T00:00:00Z"));
        let month = monthly.period_at(at("2026-12-20T10:00:00Z"), Tz::UTC);
        assert_eq!(month, period("2026-12-15T00:00:00Z", "2027-01-15T00:00:00Z"));
    }

    #[test]
    fn inputs_are_checked_member_by_member() {
        let errors = |value: serde_json::Value| {
            let input = serde_json::from_value::<RecurrenceInput>(value).unwrap();
            input.validate("/recurrence").unwrap_err().into_iter().map(|e| e.pointer).collect::<Vec<_>>()
        };
        assert_eq!(errors(json!({"period": "DAILY", "resetTime": "24:00"})), ["/recurrence/resetTime"]);
        assert_eq!(errors(json!({"period": "DAILY", "resetTime": "5:00"})), ["/recurrence/resetTime"]);
        assert_eq!(errors(json!({"period": "DAILY", "resetTime": "+5:00"})), ["/recurrence/resetTime"]);
        assert_eq!(errors(json!({"period": "DAILY", "resetWeekday": "MONDAY"})), ["/recurrence/resetWeekday"]);
        assert_eq!(errors(json!({"period": "MONTHLY", "resetDay": 29})), ["/recurrence/resetDay"]);
        assert_eq!(errors(json!({"period": "WEEKLY", "resetDay": 2})), ["/recurrence/resetDay"]);
        assert!(serde_json::from_value::<RecurrenceInput>(json!({"period": "HOURLY"})).is_err());
    }

    #[test]
    fn the_stored_shape_round_trips() {
        let weekly = recurrence(json!({"period": "WEEKLY", "resetTime": "09:30", "resetWeekday": "FRIDAY"}));
        let stored = serde_json::to_value(weekly).unwrap();
        assert_eq!(stored, json!({"period": "WEEKLY", "resetTime": "09:30", "resetWeekday": "FRIDAY"}));
        assert_eq!(serde_json::from_value::<Recurrence>(stored).unwrap(), weekly);
    }
}
