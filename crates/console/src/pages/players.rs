//! Players: find one, see their account, wallet and claims, and preview their eligibility.
//! What a staff member sees is what the API lets them read: the account itself only for ADMIN.

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bestow_auth_domain::view::UserView;
use bestow_core::identity::{Permission, Role};
use bestow_events_domain::audience::properties::PlayerPropertiesView;
use bestow_events_domain::evaluate::NodeProgress;
use http::Method;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::claims::claims_table;
use super::{Outcome, change_then_show, segment, shown, with_query};
use crate::ConsoleState;
use crate::api::{self, Call, Failure};
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
    let found = if by_name && !query.q.trim().is_empty() {
        Some(staff.read(api::users().query(&[("q", query.q.trim()), ("limit", "50")])).await?)
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
                    @for user in &found.items {
                        tr {
                            td { a href=(format!("/console/players/{}", segment(user.id.as_str()))) { (user.username) } }
                            td { (roles_of(user).join(", ")) }
                            td { (layout::yes_no(user.is_active)) }
                            td { code { (user.id) } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(staff, Section::Players, "Players", body))
}

fn roles_of(user: &UserView) -> Vec<&'static str> {
    user.roles.iter().map(|role| role.as_str()).collect()
}

async fn show(staff: Staff, Path(id): Path<String>, outcome: Outcome) -> Response {
    layout::render(player_page(&staff, &id, &outcome).await)
}

async fn player_page(staff: &Staff, id: &str, outcome: &Outcome) -> Result<Markup, Failure> {
    let account =
        if staff.account.can(Permission::ManageUsers) { Some(staff.read(api::user(id)).await?) } else { None };
    let wallet = staff.read(api::wallet(id)).await?;
    let claims = staff.read(api::claims().query(&[("userId", id), ("limit", "20")])).await?;
    let activities = staff.read(api::activities().query(&[("userId", id), ("limit", "10")])).await?;
    let events = staff.read(api::events().query(&[("status", "ACTIVE"), ("limit", "100")])).await?;
    let properties = staff.read(api::player_properties(id)).await;
    let oneself = staff.account.id == id;
    let base = format!("/console/players/{}", segment(id));
    let body = html! {
        (outcome.render(&[("saved", "Account updated.")]))
        h1 { "Player " @if let Some(account) = &account { (account.username) } @else { code { (id) } } }
        @if let Some(account) = &account {
            section aria-label="Account" {
                h2 { "Account" }
                dl.facts {
                    dt { "Id" } dd { code { (account.id) } }
                    dt { "Roles" } dd data-testid="roles" { (roles_of(account).join(", ")) }
                    dt { "Active" } dd data-testid="active" { (layout::yes_no(account.is_active)) }
                    dt { "Created" } dd { (layout::instant_at(account.created_at, Zone::Utc)) }
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
                        @if account.is_active {
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
        section aria-label="Properties" {
            h2 { "Properties" }
            (properties_section(&properties))
        }
        section aria-label="Wallet" {
            h2 { "Wallet" }
            dl.facts {
                dt { "Points" } dd data-testid="points" { (wallet.points) }
                dt { "Currencies" } dd { code { (serde_json::to_string(&wallet.currencies).unwrap_or_default()) } }
                dt { "Items" } dd { (wallet.items.len()) }
                dt { "Coupons" } dd { (wallet.coupons.len()) }
            }
        }
        section aria-label="Claims" {
            h2 { "Latest claims" }
            (claims_table(&claims.items))
            p { a href=(with_query("/console/claims", &[("userId", id)])) { "All claims of this player" } }
        }
        section aria-label="Recent activities" {
            h2 { "Recent activities" }
            table.list data-testid="activities" {
                thead { tr { th { "When" } th { "Type" } th { "Attributes" } } }
                tbody {
                    @for activity in &activities.items {
                        tr {
                            td { (layout::instant_at(activity.occurred_at, Zone::Utc)) }
                            td { code { (shown(&activity.activity_type)) } }
                            td { code { (serde_json::to_string(&activity.attributes).unwrap_or_default()) } }
                        }
                    }
                    @if activities.total == 0 { tr { td colspan="3" { "No activities recorded." } } }
                }
            }
        }
        section aria-label="Eligibility preview" {
            h2 { "Eligibility preview" }
            form.filters method="get" action="/console/players/eligibility" {
                input type="hidden" name="userId" value=(id);
                label for="eventId" { "Active event" }
                select #eventId name="eventId" {
                    @for event in &events.items {
                        option value=(event.id) { (event.event_name) }
                    }
                }
                button type="submit" { "Preview" }
            }
        }
    };
    Ok(layout::page(staff, Section::Players, "Player", body))
}

/// What the game's servers said of the player, and what the platform computes itself; a
/// refusal is shown in place (the rest of the page stands).
fn properties_section(properties: &Result<PlayerPropertiesView, Failure>) -> Markup {
    let properties = match properties {
        Ok(properties) => properties,
        Err(failure) if failure.status == http::StatusCode::NOT_FOUND => {
            return html! { p data-testid="properties" { "No properties known." } };
        }
        Err(failure) => return layout::failure(failure),
    };
    let computed = &properties.computed;
    html! {
        dl.facts data-testid="computed" {
            dt { "Account created" } dd data-testid="created-at" { (layout::instant_at(computed.created_at, Zone::Utc)) }
            dt { "Last seen (last login)" } dd data-testid="last-seen-at" { (layout::instant_at(computed.last_seen_at, Zone::Utc)) }
            dt { "Purchase total" } dd data-testid="purchase-total" { (figure(computed.purchase_total)) }
        }
        table.list data-testid="properties" {
            thead { tr { th { "Property" } th { "Value" } } }
            tbody {
                @for (name, value) in &properties.properties {
                    tr { td { code { (name) } } td { (shown(value)) } }
                }
                @if properties.properties.is_empty() { tr { td colspan="2" { "No properties set by the game's servers." } } }
            }
        }
    }
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
    let read = api::eligibility(&query.event_id).query(&[("userId", &query.user_id), ("tierId", &query.tier_id)]);
    let result = staff.read(read).await?;
    let body = html! {
        h1 { "Eligibility preview" }
        dl.facts {
            dt { "Player" } dd { a href=(format!("/console/players/{}", segment(&query.user_id))) { (query.user_id) } }
            dt { "Event" } dd { a href=(format!("/console/events/{}", segment(&query.event_id))) { (query.event_id) } }
            dt { "Eligible" } dd data-testid="eligible" { (layout::yes_no(result.eligible)) }
        }
        @if let Some(conditions) = &result.conditions {
            h2 { "Progress" }
            (progress(conditions))
        }
    };
    Ok(layout::page(staff, Section::Players, "Eligibility", body))
}

/// A condition's progress as a nested list.
fn progress(node: &NodeProgress) -> Markup {
    html! {
        ul.progress {
            li class=(if node.met { "met" } else { "unmet" }) {
                strong { (node.kind) } " "
                (figure(node.current)) " / " (figure(node.target))
                @if node.met { " ✓" }
                @for child in &node.children {
                    (progress(child))
                }
            }
        }
    }
}

/// A progress figure as the API writes it: whole numbers without a fraction.
fn figure(number: f64) -> String {
    // The API writes a whole number up to 2^53 as an integer (beyond, not every one is exact).
    const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;
    if number.fract() == 0.0 && number.abs() <= MAX_EXACT_INTEGER {
        format!("{}", number as i64)
    } else {
        serde_json::Number::from_f64(number).map_or_else(|| number.to_string(), |number| number.to_string())
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
