//! Live-ops event types over HTTP: a daily check-in, a 7-day attendance calendar, a weekly
//! mission, purchase milestones, daily resets across DST changes, and the player's event
//! screen (`GET /api/v1/me/events`) for each. Resets are reached by moving the server's clock
//! (`TestApp::clock`, each test app's own, so tests may share a process), never by waiting.

use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixtures::app_with;
use crate::helpers::{TestApp, pointers, problem};

/// Moves the server's clock (that app's alone) forward to `at`.
fn travel_to(app: &TestApp, at: DateTime<Utc>) {
    let by = at - app.clock.now();
    assert!(by >= TimeDelta::zero(), "the clock only moves forward: {at}");
    app.clock.travel(by);
}

/// The next instant after the server's now whose wall-clock time in `zone` is `time`.
fn next_local(app: &TestApp, zone: Tz, time: NaiveTime) -> DateTime<Utc> {
    let now = app.clock.now();
    let today = now.with_timezone(&zone).date_naive();
    (0..3)
        .filter_map(|days| zone.from_local_datetime(&(today + TimeDelta::days(days)).and_time(time)).earliest())
        .map(|at| at.with_timezone(&Utc))
        .find(|at| *at > now)
        .unwrap()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An instant the server sent.
fn instant(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str().map(|text| text.parse().unwrap())
}

/// A screen entry's `currentPeriod`.
fn period(screen: &Value) -> (DateTime<Utc>, DateTime<Utc>) {
    let period = &screen["currentPeriod"];
    (instant(&period["start"]).unwrap(), instant(&period["end"]).unwrap())
}

fn points(name: &str, stock: i64) -> Value {
    json!({ "rewardType": "POINT", "rewardName": name, "details": { "points": 10 },
            "quantityPerUser": 1, "totalStock": stock })
}

/// Creates and activates an event from `body` (window: a week ago to a month ahead unless set).
async fn live_event(app: &TestApp, admin: &str, mut body: Value) -> Value {
    let now = app.clock.now();
    let defaults = [
        ("eventName", json!("live-ops")),
        ("startDate", json!(rfc3339(now - TimeDelta::days(7)))),
        ("endDate", json!(rfc3339(now + TimeDelta::days(30)))),
    ];
    for (key, value) in defaults {
        if body.get(key).is_none() {
            body[key] = value;
        }
    }
    let response = app.post("/api/v1/events", Some(admin), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let event: Value = response.json().await.unwrap();
    let path = format!("/api/v1/events/{}/status", event["id"].as_str().unwrap());
    let response = app.send_json(Method::PUT, &path, Some(admin), &json!({ "status": "ACTIVE" })).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    event
}

/// Claims `tier` (or the event's only tier) and waits for the final request.
async fn claim(app: &TestApp, token: &str, event: &Value, tier: Option<&str>) -> Value {
    let (status, body) = try_claim(app, token, event, tier).await;
    assert!(matches!(status.as_u16(), 201 | 202), "{status}: {body}");
    let request_id = body["requestId"].as_str().unwrap();
    for _ in 0..200 {
        let request = app.get_json(&format!("/api/v1/claims/{request_id}"), Some(token)).await;
        let status: bestow_events::domain::saga::ClaimStatus = request["status"].as_str().unwrap().parse().unwrap();
        if status.is_final() {
            return request;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("claim {request_id} never became final");
}

/// The claim of `tier` (or the event's only tier) as `token`, ready to send.
fn claim_request(app: &TestApp, token: &str, event: &Value, tier: Option<&str>) -> reqwest::RequestBuilder {
    let path = format!("/api/v1/events/{}/claims", event["id"].as_str().unwrap());
    let request = app.request(Method::POST, &path, Some(token));
    match tier {
        Some(tier) => request.json(&json!({ "tierId": tier })),
        None => request,
    }
}

async fn try_claim(app: &TestApp, token: &str, event: &Value, tier: Option<&str>) -> (StatusCode, Value) {
    let response = claim_request(app, token, event, tier).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Reports activities of `user_id` as the admin.
async fn report(app: &TestApp, admin: &str, user_id: &str, activities: &[(&str, DateTime<Utc>, Value)]) {
    let activities: Vec<Value> = activities
        .iter()
        .map(|(kind, at, attributes)| {
            json!({ "userId": user_id, "type": kind, "occurredAt": rfc3339(*at), "attributes": attributes })
        })
        .collect();
    let response = app.post("/api/v1/activities", Some(admin), &json!({ "activities": activities })).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{}", response.text().await.unwrap());
}

/// The player's event screen entry of `event`.
async fn screen(app: &TestApp, token: &str, event: &Value) -> Value {
    let response = app.get("/api/v1/me/events?limit=100", Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().iter().find(|item| item["id"] == event["id"]).cloned().unwrap_or_else(|| {
        panic!("{} not on the screen: {page}", event["id"]);
    })
}

fn claimable(screen: &Value) -> Vec<bool> {
    screen["tiers"].as_array().unwrap().iter().map(|tier| tier["claimable"].as_bool().unwrap()).collect()
}

async fn app() -> TestApp {
    app_with(None, |_| {}).await
}

async fn mongo_app() -> TestApp {
    app_with(None, crate::mongo::on_mongodb).await
}

/// Runs `scenario` as two tests: on SQLite, and on MongoDB.
macro_rules! on_both_stores {
    ($on_sqlite:ident, $on_mongodb:ident, $scenario:ident) => {
        #[tokio::test]
        async fn $on_sqlite() {
            $scenario(app().await).await;
        }

        #[tokio::test]
        async fn $on_mongodb() {
            $scenario(mongo_app().await).await;
        }
    };
}

on_both_stores!(
    a_daily_check_in_pays_once_a_day_and_again_after_the_reset,
    a_daily_check_in_pays_once_a_day_and_again_after_the_reset_on_mongodb,
    daily_check_in
);

/// DAILY at 05:00 in Seoul, no conditions.
async fn daily_check_in(app: TestApp) {
    let seoul = chrono_tz::Asia::Seoul;
    let five = NaiveTime::from_hms_opt(5, 0, 0).unwrap();
    // A minute before a reset, so both sides of it are a short clock move apart.
    let reset = next_local(&app, seoul, five);
    travel_to(&app, reset - TimeDelta::minutes(1));
    let admin = app.admin_token().await;
    let (_, player) = app.user_with_roles("checker", &["USER"]).await;
    let body = json!({ "timezone": "Asia/Seoul", "recurrence": { "period": "DAILY", "resetTime": "05:00" },
                       "rewards": [points("daily coins", 1000)] });
    let event = live_event(&app, &admin, body).await;
    assert_eq!(event["recurrence"], json!({ "period": "DAILY", "resetTime": "05:00" }));
    assert_eq!(event["tiers"], Value::Null);

    let before = screen(&app, &player, &event).await;
    assert_eq!(period(&before), (reset - TimeDelta::days(1), reset));
    assert_eq!(instant(&before["nextResetAt"]), Some(reset));
    assert_eq!(before["tiers"][0]["tierId"], Value::Null);
    assert_eq!(before["tiers"][0]["claim"], Value::Null);
    assert_eq!(claimable(&before), [true]);

    let first = claim(&app, &player, &event, None).await;
    assert_eq!(first["status"], "SUCCESS_ALL_GRANTED", "{first}");
    assert_eq!(instant(&first["periodStart"]), Some(reset - TimeDelta::days(1)));
    assert_eq!(first["tierId"], Value::Null);
    let again = claim(&app, &player, &event, None).await;
    assert_eq!(again["status"], "VALIDATION_FAILED_ALREADY_CLAIMED", "{again}");
    let after_claim = screen(&app, &player, &event).await;
    assert_eq!(claimable(&after_claim), [false]);
    assert_eq!(after_claim["tiers"][0]["claim"]["requestId"], again["requestId"]);

    travel_to(&app, reset + TimeDelta::seconds(1));
    let next_day = screen(&app, &player, &event).await;
    assert_eq!(claimable(&next_day), [true], "the reset makes the event claimable again");
    assert_eq!(next_day["tiers"][0]["claim"], Value::Null);
    let second = claim(&app, &player, &event, None).await;
    assert_eq!(second["status"], "SUCCESS_ALL_GRANTED", "{second}");
    assert_eq!(instant(&second["periodStart"]), Some(reset));
    assert_eq!(claimable(&screen(&app, &player, &event).await), [false]);
    let wallet = app.get_json("/api/v1/wallet/me", Some(&player)).await;
    assert_eq!(wallet["points"], 20, "{wallet}");
}

on_both_stores!(
    an_attendance_calendar_pays_each_day_reached_once,
    an_attendance_calendar_pays_each_day_reached_once_on_mongodb,
    attendance_calendar
);

/// One event, 7 tiers: `LOGIN_DAYS` 1…7 over the event window.
async fn attendance_calendar(app: TestApp) {
    let admin = app.admin_token().await;
    let (player_id, player) = app.user_with_roles("attendee", &["USER"]).await;
    let tiers: Vec<Value> = (1..=7)
        .map(|day| {
            json!({ "tierId": format!("day-{day}"), "tierName": format!("Day {day}"),
                    "conditions": { "type": "LOGIN_DAYS", "days": day },
                    "rewards": [points(&format!("day {day} coins"), 100)] })
        })
        .collect();
    let event = live_event(&app, &admin, json!({ "tiers": tiers })).await;
    assert_eq!(event["rewards"], json!([]));
    assert_eq!(event["tiers"].as_array().unwrap().len(), 7);
    let now = app.clock.now();
    let logins: Vec<(&str, DateTime<Utc>, Value)> =
        [3, 2, 1].iter().map(|days| ("LOGIN", now - TimeDelta::days(*days), json!({}))).collect();
    report(&app, &admin, &player_id, &logins).await;

    let before = screen(&app, &player, &event).await;
    assert_eq!(before["nextResetAt"], Value::Null);
    assert_eq!(period(&before).0, instant(&event["startDate"]).unwrap());
    assert_eq!(claimable(&before), [true, true, true, false, false, false, false]);
    assert_eq!(
        before["tiers"][3]["progress"],
        json!({ "type": "LOGIN_DAYS", "met": false, "current": 3, "target": 4 })
    );

    // A tiered event needs the tier, and only its own.
    let (status, body) = try_claim(&app, &player, &event, None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("TIER_REQUIRED")), "{body}");
    let (status, body) = try_claim(&app, &player, &event, Some("day-8")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("TIER_NOT_FOUND")), "{body}");

    for day in 1..=3 {
        let request = claim(&app, &player, &event, Some(&format!("day-{day}"))).await;
        assert_eq!(request["status"], "SUCCESS_ALL_GRANTED", "day {day}: {request}");
        assert_eq!(request["tierId"], format!("day-{day}"));
        assert_eq!(request["periodStart"], Value::Null);
        assert_eq!(request["rewardsToProcess"].as_array().unwrap().len(), 1, "only the tier's rewards");
    }
    let fourth = claim(&app, &player, &event, Some("day-4")).await;
    assert_eq!(fourth["status"], "CONDITION_NOT_MET", "{fourth}");
    let first_again = claim(&app, &player, &event, Some("day-1")).await;
    assert_eq!(first_again["status"], "VALIDATION_FAILED_ALREADY_CLAIMED", "{first_again}");

    let after = screen(&app, &player, &event).await;
    assert_eq!(claimable(&after), [false; 7]);
    let statuses: Vec<&str> =
        after["tiers"].as_array().unwrap().iter().map(|t| t["claim"]["status"].as_str().unwrap_or("-")).collect();
    assert_eq!(
        statuses,
        [
            "VALIDATION_FAILED_ALREADY_CLAIMED",
            "SUCCESS_ALL_GRANTED",
            "SUCCESS_ALL_GRANTED",
            "CONDITION_NOT_MET",
            "-",
            "-",
            "-"
        ]
    );
    // Each tier's stock moved once.
    let event = app.get_json(&format!("/api/v1/events/{}", event["id"].as_str().unwrap()), Some(&admin)).await;
    let remaining: Vec<i64> = event["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tier| tier["rewards"][0]["remainingStock"].as_i64().unwrap())
        .collect();
    assert_eq!(remaining, [99, 99, 99, 100, 100, 100, 100]);
    // A key names one claim: reusing it for another tier is refused.
    let key = first_again["requestId"].as_str().unwrap();
    let reused = claim_request(&app, &player, &event, Some("day-2")).header("idempotency-key", key);
    assert_eq!(reused.send().await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_weekly_mission_counts_only_this_weeks_matches() {
    let app = app().await;
    // A Wednesday noon, so "this week" has room for matches before now.
    let mut wednesday = next_local(&app, Tz::UTC, NaiveTime::from_hms_opt(12, 0, 0).unwrap());
    while wednesday.weekday() != Weekday::Wed {
        wednesday += TimeDelta::days(1);
    }
    travel_to(&app, wednesday);
    let monday = wednesday - TimeDelta::hours(60);
    let admin = app.admin_token().await;
    let (player_id, player) = app.user_with_roles("mission", &["USER"]).await;
    let body = json!({
        "startDate": rfc3339(wednesday - TimeDelta::days(21)),
        "recurrence": { "period": "WEEKLY", "resetWeekday": "MONDAY", "resetTime": "00:00" },
        "conditions": { "type": "ACTIVITY_COUNT", "activityType": "MATCH_PLAYED", "count": 5 },
        "rewards": [points("weekly chest", 100)],
    });
    let event = live_event(&app, &admin, body).await;
    let last_week: Vec<_> = (1..=5).map(|n| ("MATCH_PLAYED", monday - TimeDelta::hours(n), json!({}))).collect();
    let this_week: Vec<_> = (1..=2).map(|n| ("MATCH_PLAYED", monday + TimeDelta::hours(n), json!({}))).collect();
    report(&app, &admin, &player_id, &last_week).await;
    report(&app, &admin, &player_id, &this_week).await;

    let view = screen(&app, &player, &event).await;
    assert_eq!(period(&view), (monday, monday + TimeDelta::days(7)));
    assert_eq!(view["tiers"][0]["progress"]["current"], 2, "last week's matches do not count: {view}");
    assert_eq!(claimable(&view), [false]);
    let path = format!("/api/v1/events/{}/eligibility", event["id"].as_str().unwrap());
    let preview = app.get_json(&path, Some(&player)).await;
    assert_eq!(preview["conditions"]["current"], 2, "{preview}");
    let refused = claim(&app, &player, &event, None).await;
    assert_eq!(refused["status"], "CONDITION_NOT_MET", "{refused}");

    let more: Vec<_> = (3..=5).map(|n| ("MATCH_PLAYED", monday + TimeDelta::hours(n), json!({}))).collect();
    report(&app, &admin, &player_id, &more).await;
    assert_eq!(claimable(&screen(&app, &player, &event).await), [true]);
    let paid = claim(&app, &player, &event, None).await;
    assert_eq!(paid["status"], "SUCCESS_ALL_GRANTED", "{paid}");

    // Next week starts from zero again.
    travel_to(&app, monday + TimeDelta::days(7) + TimeDelta::hours(1));
    let next_week = screen(&app, &player, &event).await;
    assert_eq!(next_week["tiers"][0]["progress"]["current"], 0);
    assert_eq!(claimable(&next_week), [false]);
}

#[tokio::test]
async fn purchase_milestones_each_pay_once() {
    let app = app().await;
    let admin = app.admin_token().await;
    let (player_id, player) = app.user_with_roles("spender", &["USER"]).await;
    let milestone = |amount: u32| {
        json!({ "tierId": format!("spend-{amount}"), "tierName": format!("Spend {amount}"),
                "conditions": { "type": "PURCHASE_TOTAL", "amount": amount },
                "rewards": [points(&format!("{amount} bonus"), 1)] })
    };
    let body = json!({ "tiers": [milestone(10), milestone(50), milestone(100)] });
    let event = live_event(&app, &admin, body).await;
    let now = app.clock.now();
    report(&app, &admin, &player_id, &[("PURCHASE", now - TimeDelta::hours(2), json!({ "amount": 60 }))]).await;
    assert_eq!(claimable(&screen(&app, &player, &event).await), [true, true, false]);

    let ten = claim(&app, &player, &event, Some("spend-10")).await;
    assert_eq!(ten["status"], "SUCCESS_ALL_GRANTED", "{ten}");
    let fifty = claim(&app, &player, &event, Some("spend-50")).await;
    assert_eq!(fifty["status"], "SUCCESS_ALL_GRANTED", "{fifty}");
    let hundred = claim(&app, &player, &event, Some("spend-100")).await;
    assert_eq!(hundred["status"], "CONDITION_NOT_MET", "{hundred}");
    assert_eq!(claim(&app, &player, &event, Some("spend-10")).await["status"], "VALIDATION_FAILED_ALREADY_CLAIMED");

    report(&app, &admin, &player_id, &[("PURCHASE", now - TimeDelta::hours(1), json!({ "amount": 40 }))]).await;
    assert_eq!(claimable(&screen(&app, &player, &event).await), [false, false, true]);
    let hundred = claim(&app, &player, &event, Some("spend-100")).await;
    assert_eq!(hundred["status"], "SUCCESS_ALL_GRANTED", "{hundred}");

    // Each milestone had one unit: another big spender finds it gone.
    let (rich_id, rich) = app.user_with_roles("rich", &["USER"]).await;
    report(&app, &admin, &rich_id, &[("PURCHASE", now - TimeDelta::hours(1), json!({ "amount": 500 }))]).await;
    let view = screen(&app, &rich, &event).await;
    assert_eq!(view["tiers"][0]["eligible"], true);
    assert_eq!(claimable(&view), [false, false, false], "no stock left: {view}");
    let late = claim(&app, &rich, &event, Some("spend-10")).await;
    assert_eq!(late["status"], "INVENTORY_ALLOCATION_FAILED_OUT_OF_STOCK", "{late}");
}

#[tokio::test]
async fn a_daily_period_is_one_local_day_across_dst_changes() {
    let app = app().await;
    let new_york = chrono_tz::America::New_York;
    let local = |text: &str| -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        new_york.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
    };
    let year = app.clock.now().year() + 1;
    // The second Sunday of March and the first Sunday of November.
    let sunday = |month: u32, nth: u32| {
        let first = chrono::NaiveDate::from_ymd_opt(year, month, 1).unwrap();
        let offset = (7 - first.weekday().num_days_from_sunday()) % 7;
        first + TimeDelta::days(i64::from(offset + 7 * (nth - 1)))
    };
    let (spring, autumn) = (sunday(3, 2), sunday(11, 1));
    travel_to(&app, local(&format!("{} 12:00", spring - TimeDelta::days(1))));
    let admin = app.admin_token().await;
    let (_, player) = app.user_with_roles("commuter", &["USER"]).await;
    let body = json!({
        "timezone": "America/New_York", "recurrence": { "period": "DAILY" },
        "startDate": rfc3339(local(&format!("{year}-03-01 00:00"))),
        "endDate": rfc3339(local(&format!("{year}-12-01 00:00"))),
        "rewards": [points("daily", 1000)],
    });
    let event = live_event(&app, &admin, body).await;

    for day in [
        spring - TimeDelta::days(1),
        spring,
        spring + TimeDelta::days(1),
        autumn - TimeDelta::days(1),
        autumn,
        autumn + TimeDelta::days(1),
    ] {
        // Late in the evening: the most hours after midnight a local day can have.
        travel_to(&app, local(&format!("{day} 23:30")));
        let view = screen(&app, &player, &event).await;
        let start = local(&format!("{day} 00:00"));
        let end = local(&format!("{} 00:00", day + TimeDelta::days(1)));
        assert_eq!(period(&view), (start, end), "{day}");
        let hours = (end - start).num_hours();
        let expected = if day == spring {
            23
        } else if day == autumn {
            25
        } else {
            24
        };
        assert_eq!(hours, expected, "{day}");
        let paid = claim(&app, &player, &event, None).await;
        assert_eq!(paid["status"], "SUCCESS_ALL_GRANTED", "{day}: {paid}");
        assert_eq!(instant(&paid["periodStart"]), Some(start));
        assert_eq!(claim(&app, &player, &event, None).await["status"], "VALIDATION_FAILED_ALREADY_CLAIMED", "{day}");
    }
}

#[tokio::test]
async fn tiers_and_recurrence_are_validated_locked_and_audited() {
    let app = app().await;
    let admin = app.admin_token().await;
    let now = app.clock.now();
    let window =
        json!({ "eventName": "shapes", "startDate": rfc3339(now), "endDate": rfc3339(now + TimeDelta::days(1)) });
    let with = |extra: Value| {
        let mut body = window.clone();
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        (json!({ "rewards": [points("a", 1)], "tiers": [{ "tierName": "t", "rewards": [points("b", 1)] }] }), "/tiers"),
        (json!({ "tiers": [] }), "/tiers"),
        (json!({ "tiers": [{ "tierName": "t", "rewards": [] }] }), "/tiers/0/rewards"),
        (json!({ "tiers": [{ "tierId": "a b", "tierName": "t", "rewards": [points("b", 1)] }] }), "/tiers/0/tierId"),
        (json!({ "recurrence": { "period": "DAILY", "resetTime": "25:00" } }), "/recurrence/resetTime"),
        (json!({ "recurrence": { "period": "MONTHLY", "resetDay": 31 } }), "/recurrence/resetDay"),
        (json!({ "conditions": { "type": "LOGIN_DAYS", "days": 2, "scope": "FOREVER" } }), "/conditions/scope"),
    ];
    for (extra, pointer) in cases {
        let response = app.post("/api/v1/events", Some(&admin), &with(extra.clone())).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{extra}");
        let problem = problem(response).await;
        assert!(pointers(&problem).contains(&pointer.to_owned()), "{pointer} in {problem}");
    }
    let scoped = json!({ "type": "LOGIN_STREAK", "days": 7, "scope": "EVENT" });
    let body = with(json!({ "conditions": scoped, "recurrence": { "period": "WEEKLY" },
                            "tiers": [{ "tierName": "only", "rewards": [points("b", 5)] }] }));
    let response = app.post("/api/v1/events", Some(&admin), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let event: Value = response.json().await.unwrap();
    assert_eq!(event["conditions"], scoped);
    assert_eq!(event["recurrence"], json!({ "period": "WEEKLY", "resetTime": "00:00", "resetWeekday": "MONDAY" }));
    let tier_id = event["tiers"][0]["tierId"].as_str().unwrap().to_owned();
    let reward_id = event["tiers"][0]["rewards"][0]["rewardId"].as_str().unwrap().to_owned();
    let id = event["id"].as_str().unwrap().to_owned();

    // A draft's tiers can be replaced; an active event's cannot, but its tier stock can be topped up.
    let replaced = json!({ "tiers": [{ "tierId": "gold", "tierName": "Gold", "rewards": [points("g", 2)] }] });
    let response = app.send_json(Method::PATCH, &format!("/api/v1/events/{id}"), Some(&admin), &replaced).await;
    assert_eq!(response.status(), StatusCode::OK);
    let event: Value = response.json().await.unwrap();
    assert_eq!(event["tiers"][0]["tierId"], "gold");
    assert_ne!(event["tiers"][0]["tierId"], tier_id.as_str());
    let reward_id_after = event["tiers"][0]["rewards"][0]["rewardId"].as_str().unwrap().to_owned();
    assert_ne!(reward_id_after, reward_id);
    let response = app.post(&format!("/api/v1/events/{id}/rewards"), Some(&admin), &points("loose", 1)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT, "a tiered event takes rewards through its tiers");
    let response = app
        .send_json(Method::PUT, &format!("/api/v1/events/{id}/status"), Some(&admin), &json!({ "status": "ACTIVE" }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.send_json(Method::PATCH, &format!("/api/v1/events/{id}"), Some(&admin), &replaced).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = app
        .send_json(Method::PATCH, &format!("/api/v1/events/{id}"), Some(&admin), &json!({ "recurrence": null }))
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let path = format!("/api/v1/events/{id}/rewards/{reward_id_after}");
    let response = app.send_json(Method::PATCH, &path, Some(&admin), &json!({ "addStock": 3 })).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    let event = app.get_json(&format!("/api/v1/events/{id}"), Some(&admin)).await;
    assert_eq!(event["tiers"][0]["rewards"][0]["totalStock"], 5);

    // The audit log keeps the tiers and the recurrence of every version.
    let log = app.get_json(&format!("/api/v1/audit-logs?targetId={id}&action=event.update"), Some(&admin)).await;
    let entry = &log["items"][0];
    assert_eq!(entry["before"]["tiers"][0]["tierId"], tier_id.as_str(), "{entry}");
    assert_eq!(entry["after"]["tiers"][0]["tierId"], "gold", "{entry}");
    assert_eq!(entry["after"]["recurrence"]["period"], "WEEKLY", "{entry}");
}

#[tokio::test]
async fn staff_preview_a_players_eligibility_and_players_only_their_own() {
    let app = app().await;
    let admin = app.admin_token().await;
    let (player_id, player) = app.user_with_roles("previewed", &["USER"]).await;
    let (_, operator) = app.user_with_roles("previewer", &["OPERATOR"]).await;
    let (_, auditor) = app.user_with_roles("auditor", &["AUDITOR"]).await;
    let body = json!({ "conditions": { "type": "LOGIN_DAYS", "days": 2 }, "rewards": [points("p", 10)] });
    let event = live_event(&app, &admin, body).await;
    report(&app, &admin, &player_id, &[("LOGIN", app.clock.now() - TimeDelta::days(1), json!({}))]).await;
    let path = format!("/api/v1/events/{}/eligibility", event["id"].as_str().unwrap());
    for staff in [&operator, &auditor, &admin] {
        let response = app.get(&format!("{path}?userId={player_id}"), Some(staff)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let preview: Value = response.json().await.unwrap();
        assert_eq!(preview["conditions"]["current"], 1, "{preview}");
    }
    let response = app.get(&format!("{path}?userId={player_id}"), Some(&player)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "a player previews only themselves");
    assert_eq!(app.get(&path, Some(&auditor)).await.status(), StatusCode::FORBIDDEN, "an auditor claims nothing");
    let own = app.get_json(&path, Some(&player)).await;
    assert_eq!(own["conditions"]["current"], 1);
    assert_eq!(app.get("/api/v1/me/events", Some(&auditor)).await.status(), StatusCode::FORBIDDEN);

    // The document bounds both ids at 64 characters, and so does the server.
    let unknown = "0".repeat(64);
    let response = app.get(&format!("{path}?userId={unknown}"), Some(&admin)).await;
    assert_eq!(response.status(), StatusCode::OK, "an unknown player meets nothing");
    for parameter in ["userId", "tierId"] {
        let response = app.get(&format!("{path}?{parameter}={}", "0".repeat(65)), Some(&admin)).await;
        let problem = crate::helpers::problem(response).await;
        assert_eq!(
            (problem["status"].as_u64(), crate::helpers::pointers(&problem)),
            (Some(400), vec![format!("?{parameter}")])
        );
    }
}

#[tokio::test]
async fn a_success_behind_many_refused_retries_still_counts_on_the_screen() {
    let app = app().await;
    let admin = app.admin_token().await;
    let (_, player) = app.user_with_roles("persistent", &["USER"]).await;
    let event = live_event(&app, &admin, json!({ "rewards": [points("once", 1000)] })).await;
    assert_eq!(claim(&app, &player, &event, None).await["status"], "SUCCESS_ALL_GRANTED");
    // More refused retries than the screen reads at a time, all newer than the success.
    for _ in 0..510 {
        let (status, body) = try_claim(&app, &player, &event, None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let screen = screen(&app, &player, &event).await;
    assert_eq!(claimable(&screen), [false], "the success still counts: {screen}");
    assert_eq!(screen["tiers"][0]["claim"]["status"], "VALIDATION_FAILED_ALREADY_CLAIMED");
}

#[tokio::test]
async fn the_event_screen_never_shows_secret_reward_details() {
    let app = app().await;
    let admin = app.admin_token().await;
    let (_, player) = app.user_with_roles("screened", &["USER"]).await;
    let coupon = json!({ "rewardType": "COUPON", "rewardName": "10% off",
                         "details": { "couponCode": "SECRET-CODE-1", "discountRate": 0.1 },
                         "quantityPerUser": 1, "totalStock": 10 });
    let tiers = json!([{ "tierId": "coupon", "tierName": "Coupon", "rewards": [coupon] }]);
    let event = live_event(&app, &admin, json!({ "tiers": tiers })).await;
    let before = screen(&app, &player, &event).await;
    assert_eq!(before["tiers"][0]["rewards"][0]["details"], json!({ "discountRate": 0.1 }), "{before}");
    let paid = claim(&app, &player, &event, Some("coupon")).await;
    assert_eq!(paid["status"], "SUCCESS_ALL_GRANTED", "{paid}");
    let page = app.get("/api/v1/me/events", Some(&player)).await.text().await.unwrap();
    assert!(!page.contains("SECRET-CODE-1"), "{page}");
    // The player reads the code where it was granted to them: the claim that granted it.
    assert_eq!(paid["rewardsToProcess"][0]["rewardDefinition"]["details"]["couponCode"], "SECRET-CODE-1");
}
