//! Service keys of game servers: list, create (the secret is shown once), revoke.

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bestow_events_domain::ports::service_keys::CreatedServiceKey;
use http::{Method, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::filters::{Filters, PAGE_SIZE};
use super::{Nothing, Outcome, change_then_show, segment};
use crate::ConsoleState;
use crate::api::{self, Call, Failure};
use crate::layout::{self, Section, Zone};
use crate::session::{Checked, Staff};

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/service-keys", get(list).post(create))
        .route("/console/service-keys/{id}/revoke", post(revoke))
}

async fn list(staff: Staff, outcome: Outcome, Query(query): Query<Vec<(String, String)>>) -> Response {
    layout::render(list_page(&staff, None, &outcome, &Filters::read(&query, &[])).await)
}

/// One page of keys (revoked ones stay listed), with the secret of a key just `created`.
async fn list_page(
    staff: &Staff,
    created: Option<&CreatedServiceKey>,
    outcome: &Outcome,
    filters: &Filters,
) -> Result<Markup, Failure> {
    let keys = staff.read(filters.page_of(api::service_keys(), PAGE_SIZE)).await?;
    let body = html! {
        h1 { "Service keys" }
        (outcome.render(&[("revoked", "Key revoked.")]))
        @if let Some(created) = created {
            div.alert.ok role="status" {
                p { "Key created. Copy the secret now: it is shown only this once." }
                div.secret {
                    code #new-secret data-testid="new-secret" { (created.secret) }
                    button type="button" data-copy="#new-secret" { "Copy" }
                }
            }
        }
        form.filters method="post" action="/console/service-keys" {
            (layout::csrf(staff))
            label for="name" { "Name of the game server" }
            input #name name="name" required maxlength="100";
            button type="submit" { "Create key" }
        }
        table.list data-testid="service-keys" {
            thead { tr { th { "Name" } th { "Scopes" } th { "Created" } th { "Revoked" } th { span.visually-hidden { "Actions" } } } }
            tbody {
                @for key in &keys.items {
                    tr {
                        td { (key.name) }
                        td { code { (serde_json::to_string(&key.scopes).unwrap_or_default()) } }
                        td { (layout::instant_at(key.created_at, Zone::Utc)) }
                        td { (layout::instant_at(key.revoked_at, Zone::Utc)) }
                        td {
                            @if key.revoked_at.is_none() {
                                form.inline method="post" action=(format!("/console/service-keys/{}/revoke", segment(&key.id.to_string()))) data-confirm="Revoke this key? Game servers using it stop at once." {
                                    (layout::csrf(staff))
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (filters.pager("/console/service-keys", &keys))
    };
    Ok(layout::page(staff, Section::ServiceKeys, "Service keys", body))
}

#[derive(Deserialize)]
struct NewKey {
    name: String,
}

async fn create(staff: Staff, Checked(form): Checked<NewKey>) -> Response {
    let created = staff
        .send(Call::post("/api/v1/service-keys", json!({ "name": form.name, "scopes": ["activities:write"] })))
        .await
        .and_then(|reply| reply.parse::<CreatedServiceKey>());
    let first_page = Filters::read(&[], &[]);
    let result = match created {
        Ok(created) => list_page(&staff, Some(&created), &Outcome::default(), &first_page)
            .await
            .map(|page| (StatusCode::CREATED, page)),
        Err(failure) => {
            let outcome = Outcome { error: failure.message(), ..Outcome::default() };
            list_page(&staff, None, &outcome, &first_page).await.map(|page| (failure.status, page))
        }
    };
    match result {
        Ok(page) => page.into_response(),
        Err(failure) => layout::failure_page(&failure),
    }
}

async fn revoke(staff: Staff, Path(id): Path<String>, Checked(_): Checked<Nothing>) -> Response {
    let call = Call::new(Method::DELETE, format!("/api/v1/service-keys/{}", segment(&id)));
    change_then_show(&staff, call, "/console/service-keys", "revoked").await
}
