//! The page shell (head, navigation by role, messages) and the small pieces every page uses.

use axum::response::{IntoResponse, Response};
use bestow_core::identity::Permission;
use http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use crate::api::Failure;
use crate::assets;
use crate::session::{CSRF_FIELD, Staff};

/// The sections of the console, in navigation order, with what each needs.
const SECTIONS: [(Section, &str, &str, Permission); 5] = [
    (Section::Events, "Events", "/console/events", Permission::ReadAllEvents),
    (Section::Claims, "Claims", "/console/claims", Permission::ReadAllClaims),
    (Section::Players, "Players", "/console/players", Permission::ReadAllClaims),
    (Section::AuditLog, "Audit log", "/console/audit", Permission::ReadAuditLogs),
    (Section::ServiceKeys, "Service keys", "/console/service-keys", Permission::ManageServiceKeys),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Events,
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

/// Pretty JSON for a `<pre>`.
pub fn json_block(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    html! { pre.json { (text) } }
}
