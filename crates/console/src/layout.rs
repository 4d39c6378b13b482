//! The page shell (head, navigation by role, messages) and the small pieces every page uses.

use axum::response::{IntoResponse, Response};
use bestow_core::identity::Permission;
use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use chrono_tz::Tz;
use http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use crate::api::Failure;
use crate::assets;
use crate::session::{CSRF_FIELD, Staff};

/// The sections of the console, in navigation order, with what each needs.
const SECTIONS: [(Section, &str, &str, Permission); 6] = [
    (Section::Events, "Events", "/console/events", Permission::ReadAllEvents),
    (Section::Audiences, "Audiences", "/console/audiences", Permission::ReadAudiences),
    (Section::Claims, "Claims", "/console/claims", Permission::ReadAllClaims),
    (Section::Players, "Players", "/console/players", Permission::ReadAllClaims),
    (Section::AuditLog, "Audit log", "/console/audit", Permission::ReadAuditLogs),
    (Section::ServiceKeys, "Service keys", "/console/service-keys", Permission::ManageServiceKeys),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Events,
    Audiences,
    Claims,
    Players,
    AuditLog,
    ServiceKeys,
}

/// A console page for a signed-in staff member.
pub fn page(staff: &Staff, section: Section, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href="/console/" { "Bestow console" }
                    nav aria-label="Sections" {
                        ul {
                            @for (id, label, href, needs) in SECTIONS {
                                @if staff.account.can(needs) {
                                    li { a href=(href) aria-current=[(id == section).then_some("page")] { (label) } }
                                }
                            }
                        }
                    }
                    form.sign-out method="post" action="/console/sign-out" {
                        (csrf(staff))
                        span.who { (staff.account.username) " · " (roles(staff)) }
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// A page outside a session (sign-in, refusals).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare { main id="main" { (body) } }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Bestow console" }
            link rel="stylesheet" href=(assets::STYLE.path());
            script src=(assets::SCRIPT.path()) defer {}
        }
    }
}

fn roles(staff: &Staff) -> String {
    staff.account.roles.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(", ")
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf(staff: &Staff) -> Markup {
    csrf_value(&staff.csrf)
}

pub fn csrf_value(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

/// An API failure shown inline, with the fields it names.
pub fn failure(failure: &Failure) -> Markup {
    html! {
        div.alert.error role="alert" {
            p { (failure.message()) }
            @if !failure.violations.is_empty() {
                ul {
                    @for violation in &failure.violations {
                        li { code { (violation.pointer) } " " (violation.message) }
                    }
                }
            }
        }
    }
}

/// A notice after a successful change.
pub fn notice(text: &str) -> Markup {
    html! { div.alert.ok role="status" { (text) } }
}

/// A whole page for a failure outside any form (the API refused to show something).
pub fn failure_page(error: &Failure) -> Response {
    let status = if error.status.is_client_error() || error.status.is_server_error() {
        error.status
    } else {
        StatusCode::BAD_GATEWAY
    };
    (
        status,
        bare(
            &error.title,
            html! { h1 { (error.title) } (failure(error)) p { a href="/console/" { "Back to the console" } } },
        ),
    )
        .into_response()
}

/// A refused form or request, as a page.
pub fn refusal(status: StatusCode, text: &str) -> Response {
    (status, bare("Refused", html! { h1 { "Refused" } p.alert.error role="alert" { (text) } p { a href="/console/" { "Back to the console" } } }))
        .into_response()
}

/// What a player who signs in sees: nothing but this.
pub fn staff_only() -> Response {
    let body = html! {
        h1 { "The console is for staff" }
        p.alert.error role="alert" data-testid="staff-only" {
            "This console is for operators, auditors and administrators. Your account is a player account."
        }
        p { a href="/console/sign-in" { "Sign in with another account" } }
    };
    (StatusCode::FORBIDDEN, bare("Staff only", body)).into_response()
}

/// A page of a staff section, or the failure that kept it from rendering.
pub fn render(result: Result<Markup, Failure>) -> Response {
    match result {
        Ok(markup) => markup.into_response(),
        Err(error) => failure_page(&error),
    }
}

/// Links to the previous and next pages of a list.
pub fn pager(base: &str, page: u32, limit: u32, total: u64) -> Markup {
    let pages = total.div_ceil(u64::from(limit.max(1))).max(1);
    let separator = if base.contains('?') { '&' } else { '?' };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 {
                a rel="prev" href=(format!("{base}{separator}page={}", page - 1)) { "← Previous" }
            }
            span { "Page " (page) " of " (pages) " · " (total) " in all" }
            @if u64::from(page) < pages {
                a rel="next" href=(format!("{base}{separator}page={}", page + 1)) { "Next →" }
            }
        }
    }
}

/// A status as a badge.
pub fn badge(status: &str) -> Markup {
    html! { span class=(format!("badge status-{}", status.to_ascii_lowercase())) { (status) } }
}

/// A boolean in words.
pub fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// The zone an instant is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// A record's instant (a claim, an audit entry): UTC on the server, the viewer's own zone
    /// once `console.js` has run.
    Utc,
    /// An event's own zone (its `timezone`): its dates mean that, whoever looks at them.
    Event(Tz),
}

impl Zone {
    /// The zone an event's `timezone` names; UTC (shown in the viewer's zone) when unknown.
    pub fn of_event(timezone: &str) -> Self {
        timezone.parse::<Tz>().map_or(Self::Utc, Self::Event)
    }

    fn tz(self) -> Tz {
        match self {
            Self::Utc => Tz::UTC,
            Self::Event(tz) => tz,
        }
    }

    /// `at` on this zone's clock.
    pub fn local(self, at: DateTime<Utc>) -> DateTime<Tz> {
        at.with_timezone(&self.tz())
    }

    /// The zone's name at `at` as people read it: `UTC`, `KST`, `CET`; `UTC+05:45` where the
    /// zone has no letters of its own.
    pub fn abbreviation(self, at: DateTime<Utc>) -> String {
        let local = self.local(at);
        let letters = local.format("%Z").to_string();
        if letters.starts_with(['+', '-']) { format!("UTC{}", local.format("%:z")) } else { letters }
    }

    /// The zone in full at `at`, e.g. `Asia/Seoul, UTC+09:00`.
    fn described(self, at: DateTime<Utc>) -> String {
        format!("{}, UTC{}", self.tz().name(), self.local(at).format("%:z"))
    }
}

/// `at` as text in `zone`: `2026-12-07 20:01 KST`, with seconds when it has any.
pub fn instant_text(at: DateTime<Utc>, zone: Zone) -> String {
    let pattern = if at.second() == 0 && at.nanosecond() == 0 { "%Y-%m-%d %H:%M" } else { "%Y-%m-%d %H:%M:%S" };
    format!("{} {}", zone.local(at).format(pattern), zone.abbreviation(at))
}

/// An instant written as RFC 3339 shown as [`instant_at`] shows it; a dash when empty, the text
/// itself when unreadable.
pub fn instant(at: &str, zone: Zone) -> Markup {
    match DateTime::parse_from_rfc3339(at) {
        Ok(parsed) => instant_at(parsed.with_timezone(&Utc), zone),
        Err(_) => html! { @if at.is_empty() { "—" } @else { (at) } },
    }
}

/// An instant as a `<time>` whose `datetime` is the instant in UTC and whose text is readable in
/// `zone`; a dash when absent. Every page shows instants through this.
pub fn instant_at(at: impl Into<Option<DateTime<Utc>>>, zone: Zone) -> Markup {
    let Some(at) = at.into() else { return html! { "—" } };
    // HTML takes at most three digits of a second's fraction.
    let precision = if at.nanosecond() == 0 { SecondsFormat::Secs } else { SecondsFormat::Millis };
    let machine = at.to_rfc3339_opts(precision, true);
    html! {
        @match zone {
            Zone::Utc => { time datetime=(machine) data-local { (instant_text(at, zone)) } }
            Zone::Event(_) => { time datetime=(machine) title=(zone.described(at)) { (instant_text(at, zone)) } }
        }
    }
}

/// Pretty JSON for a `<pre>`, which scrolls when too wide: a region named `label` (unique on
/// its page), focusable so that a keyboard can scroll it.
pub fn json_block(value: &impl serde::Serialize, label: &str) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    html! { pre.json tabindex="0" role="region" aria-label=(label) { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_shown_in_the_zone_asked_for_with_the_zone_named() {
        let seoul = Zone::of_event("Asia/Seoul");
        let shown = instant("2026-12-07T11:01:00Z", seoul).into_string();
        assert_eq!(
            shown,
            r#"<time datetime="2026-12-07T11:01:00Z" title="Asia/Seoul, UTC+09:00">2026-12-07 20:01 KST</time>"#
        );
        let utc = instant("2026-12-07T11:01:02.123456+00:00", Zone::Utc).into_string();
        assert_eq!(utc, r#"<time datetime="2026-12-07T11:01:02.123Z" data-local>2026-12-07 11:01:02 UTC</time>"#);
        assert_eq!(instant("", Zone::Utc).into_string(), "—");
        assert_eq!(instant("not <a> date", Zone::Utc).into_string(), "not &lt;a&gt; date");
    }

    #[test]
    fn zones_without_letters_of_their_own_are_named_by_their_offset() {
        let at = DateTime::parse_from_rfc3339("2026-07-01T00:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(Zone::of_event("Asia/Kathmandu").abbreviation(at), "UTC+05:45");
        assert_eq!(Zone::of_event("Europe/Paris").abbreviation(at), "CEST");
        assert_eq!(Zone::of_event("Mars/Olympus").abbreviation(at), "UTC", "unknown: UTC");
    }
}
