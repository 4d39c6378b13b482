//! Service keys of game servers: list, create (the secret is shown once), revoke.

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{Method, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::filters::{Filters, PAGE_SIZE};
use super::{Nothing, Outcome, change_then_show, segment, text};
use crate::ConsoleState;
use crate::api::{Call, Failure};
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
    created: Option<&Value>,
    outcome: &Outcome,
    filters: &Filters,
) -> Result<Markup, Failure> {
    let keys: Value = staff.get(filters.api_page("/api/v1/service-keys", PAGE_SIZE)).await?;
    let items = keys["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        h1 { "Service keys" }
        (outcome.render(&[("revoked", "Key revoked.")]))
        @if let Some(created) = created {
            div.alert.ok role="status" {
                p { "Key created. Copy the secret now: it is shown only this once." }
                div.secret {
                    code #new-secret data-testid="new-secret" { (text(created, "secret")) }
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
                @for key in &items {
                    tr {
                        td { (text(key, "name")) }
                        td { code { (key["scopes"].to_string()) } }
                        td { (layout::instant(text(key, "createdAt"), Zone::Utc)) }
                        td { (layout::instant(text(key, "revokedAt"), Zone::Utc)) }
                        td {
                            @if key["revokedAt"].is_null() {
                                form.inline method="post" action=(format!("/console/service-keys/{}/revoke", segment(text(key, "id")))) data-confirm="Revoke this key? Game servers using it stop at once." {
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
        .and_then(|reply| reply.parse::<Value>());
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
