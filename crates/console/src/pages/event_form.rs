//! The event form: what an operator fills in, turned into the API's JSON body, and the API's
//! validation errors shown back at the fields (and condition-tree nodes) they name.

use bestow_events_domain::condition::{LEAVES, condition_types};
use bestow_events_domain::reward::{DetailMember, RewardType};
use bestow_events_domain::view::EventView;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::api::{Failure, Violation};
use crate::layout;
use crate::session::Staff;

/// Reward rows offered beyond the filled ones (the script adds more).
const BLANK_REWARD_ROWS: usize = 1;
/// Most reward rows read from one form, as the API allows per event.
const MAX_REWARD_ROWS: usize = 20;
/// The format of `<input type="datetime-local">`.
const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M";

/// What the form holds, as text, exactly as typed (so a refused form comes back unchanged).
#[derive(Debug, Default, Clone)]
pub struct EventForm {
    pub event_name: String,
    pub description: String,
    pub start_date: String,
    pub end_date: String,
    pub timezone: String,
    pub grant_policy: String,
    pub conditions: String,
    pub recurrence: String,
    pub tiers: String,
    pub rewards: Vec<RewardRow>,
    /// Who sees the event: audiences included and excluded (none of either: everyone).
    pub audience_include: Vec<String>,
    pub audience_exclude: Vec<String>,
    /// A player in the audience when they first saw or claimed the event stays in.
    pub audience_sticky: bool,
    /// The `ETag` the edit started from (edits only).
    pub version: String,
}

/// An audience the picker offers: its id and name.
#[derive(Debug, Clone)]
pub struct AudienceChoice {
    pub id: String,
    pub name: String,
}

/// One reward of a new event; the detail fields used are those of its type.
#[derive(Debug, Default, Clone)]
pub struct RewardRow {
    pub fields: Map<String, Value>,
}

/// The detail fields each reward type takes, as its description says: (reward type, member).
/// A field is named after its member, which is unique across reward types.
fn detail_fields() -> impl Iterator<Item = (&'static str, &'static DetailMember)> {
    RewardType::ALL.into_iter().flat_map(|reward_type| {
        reward_type.description().details.iter().map(move |member| (reward_type.as_str(), member))
    })
}

impl EventForm {
    /// Reads the posted pairs; unknown names are ignored.
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut form = EventForm::default();
        let mut rows: Vec<RewardRow> = Vec::new();
        for (name, value) in pairs {
            let value = value.clone();
            match name.as_str() {
                "eventName" => form.event_name = value,
                "description" => form.description = value,
                "startDate" => form.start_date = value,
                "endDate" => form.end_date = value,
                "timezone" => form.timezone = value,
                "grantPolicy" => form.grant_policy = value,
                "conditions" => form.conditions = value,
                "recurrence" => form.recurrence = value,
                "tiers" => form.tiers = value,
                "version" => form.version = value,
                "audienceInclude" if !value.is_empty() => form.audience_include.push(value),
                "audienceExclude" if !value.is_empty() => form.audience_exclude.push(value),
                "audienceSticky" => form.audience_sticky = !value.is_empty(),
                other => {
                    let Some((index, field)) = other.strip_prefix("rewards.").and_then(|rest| rest.split_once('.'))
                    else {
                        continue;
                    };
                    let Ok(index) = index.parse::<usize>() else { continue };
                    if index >= MAX_REWARD_ROWS {
                        continue;
                    }
                    if rows.len() <= index {
                        rows.resize_with(index + 1, RewardRow::default);
                    }
                    rows[index].fields.insert(field.to_owned(), Value::String(value));
                }
            }
        }
        form.rewards = rows.into_iter().filter(|row| !row.is_blank()).collect();
        form
    }

    /// The form filled from an event the API returned, for editing.
    pub fn of_event(event: &EventView, etag: Option<String>) -> Self {
        let local = |at: DateTime<Utc>| match event.timezone.parse::<Tz>() {
            Ok(zone) => at.with_timezone(&zone).format(LOCAL_FORMAT).to_string(),
            Err(_) => at.format(LOCAL_FORMAT).to_string(),
        };
        EventForm {
            event_name: event.event_name.clone(),
            description: event.description.clone(),
            start_date: local(event.start_date),
            end_date: local(event.end_date),
            timezone: event.timezone.clone(),
            grant_policy: super::shown(&event.grant_policy),
            conditions: pretty(&event.conditions),
            recurrence: pretty(&event.recurrence),
            tiers: pretty(&event.tiers),
            rewards: Vec::new(),
            audience_include: ids(event.audience.as_ref().map(|target| &target.include)),
            audience_exclude: ids(event.audience.as_ref().map(|target| &target.exclude)),
            audience_sticky: event.audience.as_ref().is_some_and(|target| target.sticky),
            version: etag.unwrap_or_default(),
        }
    }

    /// The body of `POST /api/v1/events` (`with_rewards`) or `PATCH /api/v1/events/{id}`, or
    /// the fields that are not even well-formed.
    pub fn to_body(&self, with_rewards: bool) -> Result<Value, Vec<Violation>> {
        let mut errors = Vec::new();
        let timezone = if self.timezone.trim().is_empty() { "UTC" } else { self.timezone.trim() };
        let zone = timezone.parse::<Tz>().map_err(|_| violation("/timezone", "is not an IANA time zone name"));
        let mut body = Map::new();
        body.insert("eventName".into(), json!(self.event_name));
        body.insert("description".into(), json!(self.description));
        body.insert("timezone".into(), json!(timezone));
        if !self.grant_policy.is_empty() {
            body.insert("grantPolicy".into(), json!(self.grant_policy));
        }
        match &zone {
            Ok(zone) => {
                for (key, text) in [("startDate", &self.start_date), ("endDate", &self.end_date)] {
                    match to_utc(text, zone) {
                        Ok(at) => {
                            body.insert(key.into(), json!(at.to_rfc3339()));
                        }
                        Err(message) => errors.push(violation(&format!("/{key}"), message)),
                    }
                }
            }
            Err(error) => errors.push(error.clone()),
        }
        for (key, text) in [("conditions", &self.conditions), ("recurrence", &self.recurrence)] {
            match optional_json(text) {
                Ok(value) => {
                    body.insert(key.into(), value);
                }
                Err(message) => errors.push(violation(&format!("/{key}"), &message)),
            }
        }
        match optional_json(&self.tiers) {
            Ok(Value::Null) => {}
            Ok(tiers) => {
                body.insert("tiers".into(), tiers);
            }
            Err(message) => errors.push(violation("/tiers", &message)),
        }
        let audience = if self.audience_include.is_empty() && self.audience_exclude.is_empty() {
            Value::Null
        } else {
            json!({ "include": self.audience_include, "exclude": self.audience_exclude, "sticky": self.audience_sticky })
        };
        body.insert("audience".into(), audience);
        if with_rewards {
            let rewards: Vec<Value> =
                self.rewards.iter().enumerate().map(|(index, row)| row.to_body(index, &mut errors)).collect();
            body.insert("rewards".into(), Value::Array(rewards));
        }
        if errors.is_empty() { Ok(Value::Object(body)) } else { Err(errors) }
    }
}

impl RewardRow {
    fn get(&self, field: &str) -> &str {
        self.fields.get(field).and_then(Value::as_str).unwrap_or_default()
    }

    fn is_blank(&self) -> bool {
        self.fields
            .iter()
            .all(|(name, value)| name == "rewardType" || value.as_str().is_none_or(|v| v.trim().is_empty()))
    }

    fn to_body(&self, index: usize, errors: &mut Vec<Violation>) -> Value {
        let reward_type = self.get("rewardType");
        let mut details = Map::new();
        for (of_type, member) in detail_fields() {
            let api_field = member.name;
            let text = self.get(api_field).trim();
            if of_type != reward_type || text.is_empty() {
                continue;
            }
            let value = if member.kind.is_numeric() {
                match serde_json::from_str::<serde_json::Number>(text) {
                    Ok(number) => Value::Number(number),
                    Err(_) => {
                        errors.push(violation(&format!("/rewards/{index}/details/{api_field}"), "must be a number"));
                        continue;
                    }
                }
            } else {
                json!(text)
            };
            details.insert(api_field.to_owned(), value);
        }
        let mut reward =
            json!({ "rewardType": reward_type, "rewardName": self.get("rewardName").trim(), "details": details });
        for (field, default) in [("quantityPerUser", Some(1)), ("totalStock", None)] {
            let text = self.get(field).trim();
            let value = if text.is_empty() {
                default.map_or(Value::Null, Value::from)
            } else {
                match text.parse::<i64>() {
                    Ok(number) => Value::from(number),
                    Err(_) => {
                        errors.push(violation(&format!("/rewards/{index}/{field}"), "must be a whole number"));
                        continue;
                    }
                }
            };
            reward[field] = value;
        }
        reward
    }
}

/// Audience ids as text.
fn ids(ids: Option<&Vec<bestow_core::ids::AudienceId>>) -> Vec<String> {
    ids.map(|ids| ids.iter().map(ToString::to_string).collect()).unwrap_or_default()
}

fn violation(pointer: &str, message: &str) -> Violation {
    Violation { pointer: pointer.to_owned(), message: message.to_owned() }
}

/// A member of an API reply as an operator edits it: pretty JSON, members in the order they
/// always had on the form (by name), or nothing for null.
fn pretty<T: Serialize>(member: &Option<T>) -> String {
    match member.as_ref().map(serde_json::to_value) {
        Some(Ok(value)) => serde_json::to_string_pretty(&value).unwrap_or_default(),
        None | Some(Err(_)) => String::new(),
    }
}

fn optional_json(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|error| format!("is not valid JSON: {error}"))
}

/// A wall-clock time in `zone` as UTC; a time skipped by a clock change is refused, a repeated
/// one is its first occurrence (as the API's recurrence does).
fn to_utc(text: &str, zone: &Tz) -> Result<DateTime<Utc>, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is required");
    }
    let local = NaiveDateTime::parse_from_str(text, LOCAL_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| "must be a date and time like 2026-12-24T09:00")?;
    zone.from_local_datetime(&local)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
        .ok_or("does not exist in this time zone (a clock change skips it)")
}

/// The form. `action` is where it posts; `failure` is what the API (or the form) refused.
pub fn render(
    staff: &Staff,
    action: &str,
    form: &EventForm,
    creating: bool,
    audiences: &[AudienceChoice],
    failure: Option<&Failure>,
) -> Markup {
    let violations: &[Violation] = failure.map_or(&[], |failure| &failure.violations);
    let errors_at = |pointer: &str| field_errors(violations, pointer);
    let condition_errors: Vec<Value> = violations
        .iter()
        .filter(|v| v.pointer.starts_with("/conditions"))
        .map(|v| json!({ "pointer": v.pointer.trim_start_matches("/conditions"), "message": v.message }))
        .collect();
    let blank_rows = if creating { BLANK_REWARD_ROWS.max(usize::from(form.rewards.is_empty()) * 2) } else { 0 };
    html! {
        @if let Some(failure) = failure { (layout::failure(failure)) }
        form.event-form method="post" action=(action) {
            (layout::csrf(staff))
            input type="hidden" name="version" value=(form.version);
            fieldset {
                legend { "Event" }
                label for="eventName" { "Name" }
                input #eventName name="eventName" required maxlength="200" value=(form.event_name);
                (errors_at("/eventName"))
                label for="description" { "Description" }
                textarea #description name="description" rows="3" maxlength="5000" { (form.description) }
                (errors_at("/description"))
                div.row {
                    div {
                        label for="startDate" { "Starts (in the event's time zone)" }
                        input #startDate name="startDate" type="datetime-local" required value=(form.start_date);
                        (errors_at("/startDate"))
                    }
                    div {
                        label for="endDate" { "Ends (in the event's time zone)" }
                        input #endDate name="endDate" type="datetime-local" required value=(form.end_date);
                        (errors_at("/endDate"))
                    }
                    div {
                        label for="timezone" { "Time zone" }
                        input #timezone name="timezone" list="timezones" placeholder="UTC" value=(form.timezone);
                        datalist #timezones {
                            @for zone in ["UTC", "Asia/Seoul", "Asia/Tokyo", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles"] {
                                option value=(zone) {}
                            }
                        }
                        (errors_at("/timezone"))
                    }
                }
                label for="grantPolicy" { "Grant policy" }
                select #grantPolicy name="grantPolicy" {
                    @for (value, label) in [("ALL_OR_NOTHING", "All or nothing: a failed grant takes the others back"), ("PARTIAL_ALLOWED", "Partial allowed: keep what was granted")] {
                        option value=(value) selected[form.grant_policy == value] { (label) }
                    }
                }
                (errors_at("/grantPolicy"))
            }
            fieldset {
                legend { "Conditions" }
                condition-editor data-errors=(Value::Array(condition_errors).to_string()) data-types=(serde_json::to_string(&condition_types().collect::<Vec<_>>()).unwrap_or_default()) data-leaves=(serde_json::to_string(LEAVES).unwrap_or_default()) {
                    label for="conditions" { "Condition tree (JSON; empty for none)" }
                    textarea #conditions name="conditions" rows="6" spellcheck="false" { (form.conditions) }
                }
                (errors_at("/conditions"))
            }
            (audience_picker(form, audiences, violations))
            fieldset {
                legend { "Recurrence and tiers (optional)" }
                label for="recurrence" { "Recurrence (JSON), e.g. {\"period\": \"DAILY\", \"resetTime\": \"05:00\"}" }
                textarea #recurrence name="recurrence" rows="3" spellcheck="false" { (form.recurrence) }
                (errors_at("/recurrence"))
                label for="tiers" { "Tiers (JSON list of {tierId, tierName, conditions, rewards}); instead of rewards" }
                textarea #tiers name="tiers" rows="4" spellcheck="false" { (form.tiers) }
                (errors_at("/tiers"))
            }
            @if creating {
                fieldset.rewards {
                    legend { "Rewards" }
                    (errors_at("/rewards"))
                    @for (index, row) in form.rewards.iter().chain(std::iter::repeat_n(&RewardRow::default(), blank_rows)).enumerate() {
                        (reward_row(index, row, violations))
                    }
                    button.add-reward type="button" data-add-reward { "Add a reward" }
                }
            }
            div.actions {
                button type="submit" { @if creating { "Create event" } @else { "Save changes" } }
            }
        }
    }
}

/// Who sees the event: audiences to include and to exclude, and whether membership sticks.
/// Audiences the form names that are not among `audiences` (older ones) stay chosen, by id.
fn audience_picker(form: &EventForm, audiences: &[AudienceChoice], violations: &[Violation]) -> Markup {
    let chosen = |ids: &[String]| -> Vec<AudienceChoice> {
        let mut offered = audiences.to_vec();
        for id in ids {
            if !offered.iter().any(|choice| &choice.id == id) {
                offered.push(AudienceChoice { id: id.clone(), name: id.clone() });
            }
        }
        offered
    };
    let size = audiences.len().clamp(2, 6);
    html! {
        fieldset.audience {
            legend { "Audience (empty: every player)" }
            div.row {
                div {
                    label for="audienceInclude" { "Shown only to players in any of" }
                    select #audienceInclude name="audienceInclude" multiple size=(size) {
                        @for choice in chosen(&form.audience_include) {
                            option value=(choice.id) selected[form.audience_include.contains(&choice.id)] { (choice.name) }
                        }
                    }
                    (errors_under(violations, "/audience/include"))
                }
                div {
                    label for="audienceExclude" { "Never shown to players in any of" }
                    select #audienceExclude name="audienceExclude" multiple size=(size) {
                        @for choice in chosen(&form.audience_exclude) {
                            option value=(choice.id) selected[form.audience_exclude.contains(&choice.id)] { (choice.name) }
                        }
                    }
                    (errors_under(violations, "/audience/exclude"))
                }
            }
            label.check {
                input type="checkbox" name="audienceSticky" value="true" checked[form.audience_sticky];
                " Sticky: a player in the audience when they first see or claim the event stays in until it ends"
            }
            (field_errors(violations, "/audience"))
            (field_errors(violations, "/audience/sticky"))
            @if audiences.is_empty() { p.hint { "No audiences yet: create them under Audiences." } }
        }
    }
}

/// The messages of the violations at `pointer` or below it.
fn errors_under(violations: &[Violation], pointer: &str) -> Markup {
    html! {
        @for violation in violations.iter().filter(|v| v.pointer == pointer || v.pointer.starts_with(&format!("{pointer}/"))) {
            p.field-error data-pointer=(violation.pointer) { (violation.message) }
        }
    }
}

/// The body of `POST /api/v1/events/{id}/rewards` from a form with one reward row (index 0).
pub fn new_reward_body(pairs: &[(String, String)]) -> Result<Value, Vec<Violation>> {
    let form = EventForm::from_pairs(pairs);
    let row = form.rewards.first().ok_or_else(|| vec![violation("/rewardName", "is required")])?;
    let mut errors = Vec::new();
    let body = row.to_body(0, &mut errors);
    if errors.is_empty() { Ok(body) } else { Err(errors) }
}

/// Fields for one new reward (row 0), for the event page's "Add a reward" form.
pub fn new_reward_fields() -> Markup {
    reward_row(0, &RewardRow::default(), &[])
}

fn reward_row(index: usize, row: &RewardRow, violations: &[Violation]) -> Markup {
    let name = |field: &str| format!("rewards.{index}.{field}");
    let id = |field: &str| format!("reward-{index}-{field}");
    let selected_type = if row.get("rewardType").is_empty() { "POINT" } else { row.get("rewardType") };
    let base = format!("/rewards/{index}");
    html! {
        div.reward-row data-index=(index) {
            div.row {
                div {
                    label for=(id("rewardType")) { "Type" }
                    select id=(id("rewardType")) name=(name("rewardType")) data-reward-type {
                        @for reward_type in RewardType::ALL {
                            option value=(reward_type.as_str()) selected[reward_type.as_str() == selected_type] { (reward_type.as_str()) }
                        }
                    }
                }
                div {
                    label for=(id("rewardName")) { "Reward name" }
                    input id=(id("rewardName")) name=(name("rewardName")) value=(row.get("rewardName"));
                    (field_errors(violations, &format!("{base}/rewardName")))
                }
                div {
                    label for=(id("quantityPerUser")) { "Quantity per player" }
                    input id=(id("quantityPerUser")) name=(name("quantityPerUser")) inputmode="numeric" placeholder="1" value=(row.get("quantityPerUser"));
                    (field_errors(violations, &format!("{base}/quantityPerUser")))
                }
                div {
                    label for=(id("totalStock")) { "Total stock (empty: unlimited)" }
                    input id=(id("totalStock")) name=(name("totalStock")) inputmode="numeric" value=(row.get("totalStock"));
                    (field_errors(violations, &format!("{base}/totalStock")))
                }
            }
            div.row.details {
                @for (of_type, member) in detail_fields() {
                    div data-for-type=(of_type) hidden[of_type != selected_type] {
                        label for=(id(member.name)) { (member.label) }
                        input id=(id(member.name)) name=(name(member.name)) value=(row.get(member.name));
                        (field_errors(violations, &format!("{base}/details/{}", member.name)))
                    }
                }
            }
            (field_errors(violations, &format!("{base}/details")))
        }
    }
}

/// The messages of the violations at exactly `pointer`, beside its field.
fn field_errors(violations: &[Violation], pointer: &str) -> Markup {
    html! {
        @for violation in violations.iter().filter(|v| v.pointer == pointer) {
            p.field-error data-pointer=(violation.pointer) { (violation.message) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::submitted;

    #[test]
    fn a_filled_form_becomes_the_api_body_in_the_events_time_zone() {
        let form = EventForm::from_pairs(&submitted(&[
            ("eventName", "Winter login"),
            ("startDate", "2026-12-24T09:00"),
            ("endDate", "2026-12-31T23:59"),
            ("timezone", "Asia/Seoul"),
            ("grantPolicy", "ALL_OR_NOTHING"),
            ("conditions", r#"{"type":"LOGIN_STREAK","days":7}"#),
            ("rewards.0.rewardType", "POINT"),
            ("rewards.0.rewardName", "Points"),
            ("rewards.0.points", "100"),
            ("rewards.0.itemId", "ignored: not an item"),
            ("rewards.1.rewardType", "COUPON"),
            ("rewards.1.rewardName", "Coupon"),
            ("rewards.1.couponCode", "WINTER"),
            ("rewards.1.discountRate", "0.1"),
            ("rewards.1.totalStock", "50"),
            ("rewards.2.rewardType", "ITEM"),
        ]));
        let body = form.to_body(true).expect("well-formed");
        assert_eq!(body["startDate"], "2026-12-24T00:00:00+00:00");
        assert_eq!(body["conditions"]["days"], 7);
        assert_eq!(body["recurrence"], Value::Null);
        assert!(body.get("tiers").is_none());
        let rewards = body["rewards"].as_array().expect("rewards");
        assert_eq!(rewards.len(), 2, "the blank third row is dropped");
        assert_eq!(rewards[0]["details"], json!({ "points": 100 }));
        assert_eq!(rewards[0]["totalStock"], Value::Null);
        assert_eq!(rewards[1]["details"], json!({ "couponCode": "WINTER", "discountRate": 0.1 }));
        assert_eq!(rewards[1]["totalStock"], 50);
        assert_eq!(rewards[1]["quantityPerUser"], 1);
    }

    #[test]
    fn malformed_fields_are_named_without_calling_the_api() {
        let form = EventForm::from_pairs(&submitted(&[
            ("eventName", "x"),
            ("startDate", "tomorrow"),
            ("endDate", "2026-03-08T02:30"),
            ("timezone", "America/New_York"),
            ("conditions", "{not json"),
            ("rewards.0.rewardType", "POINT"),
            ("rewards.0.rewardName", "P"),
            ("rewards.0.points", "many"),
        ]));
        let errors = form.to_body(true).expect_err("malformed");
        let pointers: Vec<&str> = errors.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(pointers, ["/startDate", "/endDate", "/conditions", "/rewards/0/details/points"]);
        assert!(errors[1].message.contains("clock change"));
    }

    #[test]
    fn an_event_fills_the_form_in_its_own_time_zone() {
        let event: EventView = serde_json::from_value(json!({
            "eventName": "E", "description": "", "timezone": "Asia/Seoul", "grantPolicy": "PARTIAL_ALLOWED",
            "startDate": "2026-12-24T00:00:00Z", "endDate": "2026-12-25T00:00:00Z",
            "conditions": {"type": "LEVEL_REACHED", "level": 10}, "recurrence": null,
            "id": "e1", "status": "DRAFT", "rewards": [], "tiers": null, "createdBy": "op", "version": 3,
            "createdAt": "2026-12-01T00:00:00Z", "updatedAt": "2026-12-01T00:00:00Z",
        }))
        .expect("an event as the API sends it");
        let form = EventForm::of_event(&event, Some("\"3\"".to_owned()));
        assert_eq!(form.start_date, "2026-12-24T09:00");
        assert!(form.conditions.contains("LEVEL_REACHED"));
        assert_eq!(form.recurrence, "");
        assert_eq!(form.version, "\"3\"");
    }

    #[test]
    fn reward_rows_past_the_limit_are_not_read() {
        let form =
            EventForm::from_pairs(&submitted(&[("rewards.999999999.rewardName", "x"), ("rewards.x.rewardName", "y")]));
        assert!(form.rewards.is_empty());
    }
}
