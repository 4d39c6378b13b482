//! Players: find one, see their account, wallet and claims, and preview their eligibility.
//! What a staff member sees is what the API lets them read: the account itself only for ADMIN.

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bestow_core::identity::{Permission, Role};
use http::Method;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::claims::claims_table;
use super::{Outcome, change_then_show, segment, shown, text, with_query};
use crate::ConsoleState;
use crate::api::{Call, Failure};
use crate::layout::{self, Section, Zone};
use crate::session::{Checked, Staff};

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/players", get(find))
        .route("/console/players/eligibility", get(eligibility))
        .route("/console/players/{id}", get(show))
        .route("/console/players/{id}/roles", post(set_roles))
        .route("/console/players/{id}/active", post(set_active))
}

#[derive(Deserialize, Default)]
struct FindQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    id: String,
}

async fn find(staff: Staff, Query(query): Query<FindQuery>) -> Response {
    if !query.id.trim().is_empty() {
        return Redirect::to(&format!("/console/players/{}", segment(query.id.trim()))).into_response();
    }
    layout::render(find_page(&staff, &query).await)
}

async fn find_page(staff: &Staff, query: &FindQuery) -> Result<Markup, Failure> {
    let by_name = staff.account.can(Permission::ManageUsers);
    let found: Option<Value> = if by_name && !query.q.trim().is_empty() {
        Some(staff.get(with_query("/api/v1/users", &[("q", query.q.trim()), ("limit", "50")])).await?)
    } else {
        None
    };
    let body = html! {
        h1 { "Players" }
        @if by_name {
            form.filters method="get" action="/console/players" role="search" {
                label for="q" { "Username starts with" }
                input #q name="q" type="search" value=(query.q);
                button type="submit" { "Find" }
            }
        }
        form.filters method="get" action="/console/players" {
            label for="id" { "Player id" }
            input #id name="id";
            button type="submit" { "Open" }
        }
        @if let Some(found) = found {
            table.list data-testid="players" {
                thead { tr { th { "Username" } th { "Roles" } th { "Active" } th { "Id" } } }
                tbody {
                    @for user in found["items"].as_array().map(Vec::as_slice).unwrap_or_default() {
                        tr {
                            td { a href=(format!("/console/players/{}", segment(text(user, "id")))) { (text(user, "username")) } }
                            td { (roles_of(user).join(", ")) }
                            td { (layout::yes_no(&user["isActive"])) }
                            td { code { (text(user, "id")) } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(staff, Section::Players, "Players", body))
}

fn roles_of(user: &Value) -> Vec<&str> {
    user["roles"].as_array().map(|roles| roles.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

async fn show(staff: Staff, Path(id): Path<String>, outcome: Outcome) -> Response {
    layout::render(player_page(&staff, &id, &outcome).await)
}

async fn player_page(staff: &Staff, id: &str, outcome: &Outcome) -> Result<Markup, Failure> {
    let account: Option<Value> = if staff.account.can(Permission::ManageUsers) {
        Some(staff.get(format!("/api/v1/users/{}", segment(id))).await?)
    } else {
        None
    };
    let wallet: Value = staff.get(format!("/api/v1/wallets/{}", segment(id))).await?;
    let claims: Value = staff.get(with_query("/api/v1/claims", &[("userId", id), ("limit", "20")])).await?;
    let activities: Value = staff.get(with_query("/api/v1/activities", &[("userId", id), ("limit", "10")])).await?;
    let events: Value = staff.get("/api/v1/events?status=ACTIVE&limit=100").await?;
    let oneself = staff.account.id == id;
    let base = format!("/console/players/{}", segment(id));
    let body = html! {
        (outcome.render(&[("saved", "Account updated.")]))
        h1 { "Player " @if let Some(account) = &account { (text(account, "username")) } @else { code { (id) } } }
        @if let Some(account) = &account {
            section aria-label="Account" {
                h2 { "Account" }
                dl.facts {
                    dt { "Id" } dd { code { (text(account, "id")) } }
                    dt { "Roles" } dd data-testid="roles" { (roles_of(account).join(", ")) }
                    dt { "Active" } dd data-testid="active" { (layout::yes_no(&account["isActive"])) }
                    dt { "Created" } dd { (layout::instant(text(account, "createdAt"), Zone::Utc)) }
                }
                @if oneself {
                    p.hint { "Nobody changes their own roles or active state." }
                } @else {
                    form.roles method="post" action=(format!("{base}/roles")) data-confirm="Change this account's roles?" {
                        (layout::csrf(staff))
                        fieldset {
                            legend { "Roles" }
                            @for role in Role::ALL {
                                label.check {
                                    input type="checkbox" name="roles" value=(role.as_str()) checked[roles_of(account).contains(&role.as_str())];
                                    " " (role.as_str())
                                }
                            }
                            button type="submit" { "Save roles" }
                        }
                    }
                    form.inline method="post" action=(format!("{base}/active")) data-confirm="Change whether this account may sign in?" {
                        (layout::csrf(staff))
                        @if account["isActive"].as_bool().unwrap_or(false) {
                            input type="hidden" name="isActive" value="false";
                            button.danger type="submit" { "Deactivate" }
                        } @else {
                            input type="hidden" name="isActive" value="true";
                            button type="submit" { "Activate" }
                        }
                    }
                }
            }
        }
        section aria-label="Wallet" {
            h2 { "Wallet" }
            dl.facts {
                dt { "Points" } dd data-testid="points" { (shown(&wallet, "points")) }
                dt { "Currencies" } dd { code { (wallet["currencies"].to_string()) } }
                dt { "Items" } dd { (wallet["items"].as_array().map_or(0, Vec::len)) }
                dt { "Coupons" } dd { (wallet["coupons"].as_array().map_or(0, Vec::len)) }
            }
        }
        section aria-label="Claims" {
            h2 { "Latest claims" }
            (claims_table(claims["items"].as_array().map(Vec::as_slice).unwrap_or_default()))
            p { a href=(with_query("/console/claims", &[("userId", id)])) { "All claims of this player" } }
        }
        section aria-label="Recent activities" {
            h2 { "Recent activities" }
            table.list data-testid="activities" {
                thead { tr { th { "When" } th { "Type" } th { "Attributes" } } }
                tbody {
                    @for activity in activities["items"].as_array().map(Vec::as_slice).unwrap_or_default() {
                        tr {
                            td { (layout::instant(text(activity, "occurredAt"), Zone::Utc)) }
                            td { code { (text(activity, "type")) } }
                            td { code { (activity["attributes"].to_string()) } }
                        }
                    }
                    @if activities["total"].as_u64() == Some(0) { tr { td colspan="3" { "No activities recorded." } } }
                }
            }
        }
        section aria-label="Eligibility preview" {
            h2 { "Eligibility preview" }
            form.filters method="get" action="/console/players/eligibility" {
                input type="hidden" name="userId" value=(id);
                label for="eventId" { "Active event" }
                select #eventId name="eventId" {
                    @for event in events["items"].as_array().map(Vec::as_slice).unwrap_or_default() {
                        option value=(text(event, "id")) { (text(event, "eventName")) }
                    }
                }
                button type="submit" { "Preview" }
            }
        }
    };
    Ok(layout::page(staff, Section::Players, "Player", body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreviewQuery {
    user_id: String,
    event_id: String,
    #[serde(default)]
    tier_id: String,
}

/// The eligibility of an event for one player, as the player would see it.
async fn eligibility(staff: Staff, Query(query): Query<PreviewQuery>) -> Response {
    layout::render(eligibility_page(&staff, &query).await)
}

async fn eligibility_page(staff: &Staff, query: &PreviewQuery) -> Result<Markup, Failure> {
    let path = with_query(
        &format!("/api/v1/events/{}/eligibility", segment(&query.event_id)),
        &[("userId", &query.user_id), ("tierId", &query.tier_id)],
    );
    let result: Value = staff.get(path).await?;
    let body = html! {
        h1 { "Eligibility preview" }
        dl.facts {
            dt { "Player" } dd { a href=(format!("/console/players/{}", segment(&query.user_id))) { (query.user_id) } }
            dt { "Event" } dd { a href=(format!("/console/events/{}", segment(&query.event_id))) { (query.event_id) } }
            dt { "Eligible" } dd data-testid="eligible" { (layout::yes_no(&result["eligible"])) }
        }
        @if !result["conditions"].is_null() {
            h2 { "Progress" }
            (progress(&result["conditions"]))
        }
    };
    Ok(layout::page(staff, Section::Players, "Eligibility", body))
}

/// A condition's progress as a nested list.
fn progress(node: &Value) -> Markup {
    html! {
        ul.progress {
            li class=(if node["met"].as_bool().unwrap_or(false) { "met" } else { "unmet" }) {
                strong { (text(node, "type")) } " "
                (shown(node, "current")) " / " (shown(node, "target"))
                @if node["met"].as_bool().unwrap_or(false) { " ✓" }
                @for child in node["children"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    (progress(child))
                }
            }
        }
    }
}

async fn set_roles(staff: Staff, Path(id): Path<String>, Checked(pairs): Checked<Vec<(String, String)>>) -> Response {
    let roles: Vec<&str> = pairs.iter().filter(|(name, _)| name == "roles").map(|(_, role)| role.as_str()).collect();
    let call = Call::new(Method::PUT, format!("/api/v1/users/{}/roles", segment(&id))).json(json!({ "roles": roles }));
    change_then_show(&staff, call, &format!("/console/players/{}", segment(&id)), "saved").await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActiveForm {
    is_active: bool,
}

async fn set_active(staff: Staff, Path(id): Path<String>, Checked(form): Checked<ActiveForm>) -> Response {
    let call =
        Call::new(Method::PATCH, format!("/api/v1/users/{}", segment(&id))).json(json!({ "isActive": form.is_active }));
    change_then_show(&staff, call, &format!("/console/players/{}", segment(&id)), "saved").await
}
