//! Audiences: the list, one audience (its rule, size estimate, a player's membership with the
//! verdict of every node, a LIST's members with their CSV upload and export), and the form
//! that creates and changes them, whose rule is edited in the condition-tree editor.
//! OPERATOR and ADMIN see the forms; AUDITOR reads.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bestow_core::identity::Permission;
use bestow_events_domain::audience::rule::rule_types;
use bestow_events_domain::audience::{AudienceEstimate, AudienceKind, EstimateStatus, RuleVerdict};
use bestow_events_domain::condition::{LEAVES, MAX_DAYS};
use http::header::CONTENT_TYPE;
use http::{Method, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::filters::{Filters, PAGE_SIZE};
use super::{Nothing, Outcome, back_with_error, change_then_show, refusal, segment, with_query};
use crate::ConsoleState;
use crate::api::{self, AudienceView, Call, Failure, MemberCount, Violation};
use crate::layout::{self, Section, Zone};
use crate::session::{Checked, Staff, csrf_refusal};

/// Audiences offered by the pickers (the newest, as many as one API page holds).
pub const PICKER_LIMIT: &str = "100";
/// How often a running estimate's progress is read again, in milliseconds.
const ESTIMATE_REFRESH_MS: u32 = 2_000;

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/audiences", get(list))
        .route("/console/audiences/new", get(new_form).post(create))
        .route("/console/audiences/{id}", get(show))
        .route("/console/audiences/{id}/edit", get(edit_form).post(update))
        .route("/console/audiences/{id}/delete", post(delete))
        .route("/console/audiences/{id}/estimate", get(estimate_live).post(start_estimate))
        .route("/console/audiences/{id}/check", get(check))
        .route("/console/audiences/{id}/members", get(members).post(upload))
        .route("/console/audiences/{id}/members/export", get(export))
        .route("/console/audiences/{id}/members/add", post(add_member))
        .route("/console/audiences/{id}/members/{user}/remove", post(remove_member))
}

/// The console page of audience `id`.
fn audience_path(id: &str) -> String {
    format!("/console/audiences/{}", segment(id))
}

async fn list(staff: Staff, outcome: Outcome, Query(query): Query<Vec<(String, String)>>) -> Response {
    layout::render(list_page(&staff, &outcome, &Filters::read(&query, &[])).await)
}

async fn list_page(staff: &Staff, outcome: &Outcome, filters: &Filters) -> Result<Markup, Failure> {
    let found = staff.read(filters.page_of(api::audiences(), PAGE_SIZE)).await?;
    let body = html! {
        (outcome.render(&[("deleted", "Audience deleted.")]))
        div.heading {
            h1 { "Audiences" }
            @if staff.account.can(Permission::ManageAudiences) {
                a.button href="/console/audiences/new" { "New audience" }
            }
        }
        table.list data-testid="audiences" {
            thead { tr { th { "Name" } th { "Kind" } th { "Members or estimate" } th { "Updated" } } }
            tbody {
                @for audience in &found.items {
                    tr {
                        td { a href=(audience_path(&audience.id)) { (audience.name) } }
                        td { (layout::badge(audience.kind.as_str())) }
                        td { (size(audience)) }
                        td { (layout::instant_at(audience.updated_at, Zone::Utc)) }
                    }
                }
                @if found.items.is_empty() { tr { td colspan="4" { "No audiences yet." } } }
            }
        }
        (filters.pager("/console/audiences", &found))
    };
    Ok(layout::page(staff, Section::Audiences, "Audiences", body))
}

/// An audience's size in words: a LIST's members, a RULE's latest estimate.
fn size(audience: &AudienceView) -> String {
    match (audience.kind, &audience.estimate) {
        (AudienceKind::List, _) => format!("{} members", audience.member_count),
        (AudienceKind::Rule, None) => "not estimated".to_owned(),
        (AudienceKind::Rule, Some(estimate)) => match estimate.status {
            EstimateStatus::Done => format!("≈ {} of {} players", estimate.members, estimate.total),
            EstimateStatus::Running => format!("estimating: {} of {} scanned", estimate.scanned, estimate.total),
            EstimateStatus::Failed => "estimate failed".to_owned(),
            EstimateStatus::NotStarted => "not estimated".to_owned(),
        },
    }
}

/// What the audience form holds, as typed.
#[derive(Debug, Default, Deserialize)]
struct AudienceForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    rule: String,
    /// The `ETag` the edit started from (edits only).
    #[serde(default)]
    version: String,
}

impl AudienceForm {
    fn of_audience(audience: &AudienceView, etag: Option<String>) -> Self {
        Self {
            name: audience.name.clone(),
            description: audience.description.clone(),
            kind: audience.kind.as_str().to_owned(),
            rule: audience.rule.as_ref().and_then(|rule| serde_json::to_string_pretty(rule).ok()).unwrap_or_default(),
            version: etag.unwrap_or_default(),
        }
    }

    fn is_rule(&self) -> bool {
        self.kind != AudienceKind::List.as_str()
    }

    /// The body of `POST /api/v1/audiences` (`creating`) or of the `PATCH`, or why the rule is
    /// not even JSON.
    fn to_body(&self, creating: bool) -> Result<Value, Vec<Violation>> {
        let mut body = Map::new();
        body.insert("name".into(), json!(self.name));
        body.insert("description".into(), json!(self.description));
        if creating {
            body.insert("kind".into(), json!(self.kind));
        }
        if self.is_rule() {
            let rule = if self.rule.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&self.rule).map_err(|error| {
                    vec![Violation { pointer: "/rule".to_owned(), message: format!("is not valid JSON: {error}") }]
                })?
            };
            // A PATCH without a rule keeps the one there is; a RULE audience always has one.
            if creating || !rule.is_null() {
                body.insert("rule".into(), rule);
            }
        }
        Ok(Value::Object(body))
    }
}

async fn new_form(staff: Staff) -> Response {
    let form = AudienceForm { kind: AudienceKind::Rule.as_str().to_owned(), ..AudienceForm::default() };
    form_page(&staff, None, &form, None, StatusCode::OK).await
}

/// The form; `editing` is the id of the audience changed (none: a new one).
async fn form_page(
    staff: &Staff,
    editing: Option<&str>,
    form: &AudienceForm,
    failure: Option<&Failure>,
    status: StatusCode,
) -> Response {
    // Every audience but this one may be named by `IN_AUDIENCE`.
    let others: Vec<AudienceView> = match staff.read(api::audiences().query(&[("limit", PICKER_LIMIT)])).await {
        Ok(found) => found.items.into_iter().filter(|audience| Some(audience.id.as_str()) != editing).collect(),
        Err(failure) => return layout::failure_page(&failure),
    };
    let title = if editing.is_some() { "Edit audience" } else { "New audience" };
    let action =
        editing.map_or_else(|| "/console/audiences/new".to_owned(), |id| format!("{}/edit", audience_path(id)));
    let body = html! { h1 { (title) } (render_form(staff, &action, form, editing.is_none(), &others, failure)) };
    (status, layout::page(staff, Section::Audiences, title, body)).into_response()
}

/// The leaves the rule editor offers: the condition engine's activity leaves with their sliding
/// window, and the audience leaves; `IN_AUDIENCE` chooses among `others`.
fn rule_leaves(others: &[AudienceView]) -> Value {
    let window = json!({
        "name": "withinDays", "kind": "whole", "max": MAX_DAYS,
        "description": "Counted over this many days back from the moment of judging.",
    });
    let mut leaves: Vec<Value> = Vec::new();
    let ops: Vec<Value> = ["EQ", "NE", "IN", "NOT_IN", "GT", "GTE", "LT", "LTE", "EXISTS"]
        .into_iter()
        .map(|op| json!({ "value": op, "label": op }))
        .collect();
    let audiences: Vec<Value> =
        others.iter().map(|audience| json!({ "value": audience.id, "label": audience.name })).collect();
    leaves.push(json!({ "name": "PROPERTY", "members": [
        { "name": "name", "kind": "text" },
        { "name": "op", "kind": "choice", "options": ops },
        { "name": "value", "kind": "value", "optional": true },
    ]}));
    leaves.push(json!({ "name": "ACCOUNT_AGE_DAYS", "members": [
        { "name": "min", "kind": "whole" },
        { "name": "max", "kind": "whole", "optional": true },
    ]}));
    leaves.push(json!({ "name": "INACTIVE_DAYS", "members": [{ "name": "min", "kind": "whole" }] }));
    leaves.push(
        json!({ "name": "IN_AUDIENCE", "members": [{ "name": "audienceId", "kind": "choice", "options": audiences }] }),
    );
    leaves.push(json!({ "name": "ROLLOUT", "members": [
        { "name": "percent", "kind": "number" },
        { "name": "salt", "kind": "text" },
    ]}));
    for leaf in LEAVES {
        let mut described = serde_json::to_value(leaf).unwrap_or(Value::Null);
        if let Some(members) = described.get_mut("members").and_then(Value::as_array_mut) {
            members.push(window.clone());
        }
        leaves.push(described);
    }
    Value::Array(leaves)
}

fn render_form(
    staff: &Staff,
    action: &str,
    form: &AudienceForm,
    creating: bool,
    others: &[AudienceView],
    failure: Option<&Failure>,
) -> Markup {
    let violations: &[Violation] = failure.map_or(&[], |failure| &failure.violations);
    let rule_errors: Vec<Value> = violations
        .iter()
        .filter(|v| v.pointer.starts_with("/rule"))
        .map(|v| json!({ "pointer": v.pointer.trim_start_matches("/rule"), "message": v.message }))
        .collect();
    let types: Vec<&str> = rule_types().collect();
    html! {
        @if let Some(failure) = failure { (layout::failure(failure)) }
        form.event-form method="post" action=(action) {
            (layout::csrf(staff))
            input type="hidden" name="version" value=(form.version);
            fieldset {
                legend { "Audience" }
                label for="name" { "Name" }
                input #name name="name" required maxlength="200" value=(form.name);
                (field_errors(violations, "/name"))
                label for="description" { "Description" }
                textarea #description name="description" rows="2" maxlength="2000" { (form.description) }
                (field_errors(violations, "/description"))
                @if creating {
                    label for="kind" { "Kind" }
                    select #kind name="kind" {
                        option value="RULE" selected[form.is_rule()] { "RULE: players a rule holds for" }
                        option value="LIST" selected[!form.is_rule()] { "LIST: user ids uploaded as CSV" }
                    }
                    (field_errors(violations, "/kind"))
                } @else {
                    input type="hidden" name="kind" value=(form.kind);
                }
            }
            @if form.is_rule() || creating {
                fieldset {
                    legend { "Rule (RULE audiences)" }
                    condition-editor data-scope="off" data-default-leaf="PROPERTY" data-errors=(Value::Array(rule_errors).to_string()) data-types=(serde_json::to_string(&types).unwrap_or_default()) data-leaves=(rule_leaves(others).to_string()) {
                        label for="rule" { "Rule tree (JSON)" }
                        textarea #rule name="rule" rows="8" spellcheck="false" { (form.rule) }
                    }
                    (field_errors(violations, "/rule"))
                    p.hint { "Leaves: PROPERTY {name, op, value}, ACCOUNT_AGE_DAYS {min, max}, INACTIVE_DAYS {min}, IN_AUDIENCE {audienceId}, ROLLOUT {percent, salt}, and the activity leaves with withinDays; AND / OR (subConditions) and NOT (condition)." }
                }
            }
            div.actions {
                button type="submit" { @if creating { "Create audience" } @else { "Save changes" } }
            }
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

fn malformed(violations: Vec<Violation>) -> Failure {
    Failure {
        status: StatusCode::BAD_REQUEST,
        title: "Some fields need attention".to_owned(),
        detail: None,
        code: Some("VALIDATION_FAILED".to_owned()),
        violations,
    }
}

fn refused_status(failure: &Failure) -> StatusCode {
    if failure.status.is_client_error() { failure.status } else { StatusCode::BAD_GATEWAY }
}

async fn create(staff: Staff, Checked(form): Checked<AudienceForm>) -> Response {
    let body = match form.to_body(true) {
        Ok(body) => body,
        Err(violations) => {
            let failure = malformed(violations);
            return form_page(&staff, None, &form, Some(&failure), failure.status).await;
        }
    };
    let created =
        staff.send(Call::post("/api/v1/audiences", body)).await.and_then(|reply| reply.parse::<AudienceView>());
    match created {
        Ok(created) => Redirect::to(&with_query(&audience_path(&created.id), &[("notice", "created")])).into_response(),
        Err(failure) => form_page(&staff, None, &form, Some(&failure), refused_status(&failure)).await,
    }
}

async fn edit_form(staff: Staff, Path(id): Path<String>) -> Response {
    let reply = match staff.send(Call::get(api::audience(&id).path())).await {
        Ok(reply) => reply,
        Err(failure) => return layout::failure_page(&failure),
    };
    match reply.parse::<AudienceView>() {
        Ok(audience) => {
            let form = AudienceForm::of_audience(&audience, reply.etag.clone());
            form_page(&staff, Some(&id), &form, None, StatusCode::OK).await
        }
        Err(failure) => layout::failure_page(&failure),
    }
}

async fn update(staff: Staff, Path(id): Path<String>, Checked(form): Checked<AudienceForm>) -> Response {
    let body = match form.to_body(false) {
        Ok(body) => body,
        Err(violations) => {
            let failure = malformed(violations);
            return form_page(&staff, Some(&id), &form, Some(&failure), failure.status).await;
        }
    };
    let version = Some(form.version.clone()).filter(|version| !version.is_empty());
    let call = Call::new(Method::PATCH, format!("/api/v1/audiences/{}", segment(&id))).json(body).if_match(version);
    match staff.send(call).await.and_then(|reply| reply.parse::<AudienceView>()) {
        Ok(_) => Redirect::to(&with_query(&audience_path(&id), &[("notice", "saved")])).into_response(),
        Err(failure) if failure.is_stale_version() => {
            let stale = Failure {
                title: "Someone else changed this audience while you were editing".to_owned(),
                detail: Some(
                    "Your changes were not saved. Reload the form to start from the current version.".to_owned(),
                ),
                ..failure
            };
            form_page(&staff, Some(&id), &form, Some(&stale), StatusCode::PRECONDITION_FAILED).await
        }
        Err(failure) => form_page(&staff, Some(&id), &form, Some(&failure), refused_status(&failure)).await,
    }
}

async fn delete(staff: Staff, Path(id): Path<String>, Checked(_): Checked<Nothing>) -> Response {
    let answer = staff.send(Call::new(Method::DELETE, format!("/api/v1/audiences/{}", segment(&id)))).await;
    let in_use = matches!(&answer, Ok(reply) if reply.status == StatusCode::CONFLICT);
    match refusal(answer) {
        None => Redirect::to("/console/audiences?notice=deleted").into_response(),
        Some(reason) if in_use => back_with_error(
            &audience_path(&id),
            &format!(
                "Not deleted: this audience is in use. Remove it from the events and rules that name it first. ({reason})"
            ),
        ),
        Some(reason) => back_with_error(&audience_path(&id), &reason),
    }
}

async fn show(staff: Staff, Path(id): Path<String>, outcome: Outcome) -> Response {
    layout::render(audience_page(&staff, &id, &outcome, None).await.map(|(_, page)| page))
}

/// What an upload came to, shown on the audience's page.
enum UploadReport {
    Accepted(u64),
    Refused(String),
}

/// The page of audience `id`, with an upload's report; its status is the report's.
async fn audience_page(
    staff: &Staff,
    id: &str,
    outcome: &Outcome,
    report: Option<&UploadReport>,
) -> Result<(StatusCode, Markup), Failure> {
    let audience = staff.read(api::audience(id)).await?;
    let manage = staff.account.can(Permission::ManageAudiences);
    let base = audience_path(id);
    let status = match report {
        Some(UploadReport::Refused(_)) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let body = html! {
        (outcome.render(&[("created", "Audience created."), ("saved", "Changes saved."), ("estimating", "Estimate started.")]))
        @match report {
            Some(UploadReport::Accepted(members)) => {
                div.alert.ok role="status" data-testid="upload-report" { "Upload accepted: the audience has " (members) " members now." }
            }
            Some(UploadReport::Refused(reason)) => {
                div.alert.error role="alert" data-testid="upload-report" { "Upload refused, nothing was changed: " (reason) }
            }
            None => {}
        }
        div.heading {
            h1 { (audience.name) " " (layout::badge(audience.kind.as_str())) }
            @if manage {
                nav.actions aria-label="Audience" {
                    a.button href=(format!("{base}/edit")) { "Edit" }
                    form.inline method="post" action=(format!("{base}/delete")) data-confirm="Delete this audience for good?" {
                        (layout::csrf(staff))
                        button.danger type="submit" { "Delete" }
                    }
                }
            }
        }
        p { (audience.description) }
        dl.facts {
            dt { "Id" } dd { code { (audience.id) } }
            dt { "Kind" } dd { (audience.kind.as_str()) }
            @if audience.kind == AudienceKind::List {
                dt { "Members" } dd data-testid="member-count" { (audience.member_count) }
            }
            dt { "Created" } dd { (layout::instant_at(audience.created_at, Zone::Utc)) }
            dt { "Updated" } dd { (layout::instant_at(audience.updated_at, Zone::Utc)) }
            dt { "Version" } dd { (audience.version) }
        }
        @if let Some(rule) = &audience.rule {
            section aria-label="Rule" {
                h2 { "Rule" }
                (layout::json_block(rule, "Rule as JSON"))
            }
        }
        section aria-label="Size estimate" {
            h2 { "Size estimate" }
            @let running = audience.estimate.as_ref().is_some_and(|estimate| estimate.status == EstimateStatus::Running);
            @if running {
                div #estimate data-refresh=(format!("{base}/estimate")) data-interval=(ESTIMATE_REFRESH_MS) { (estimate_figures(audience.estimate.as_ref())) }
            } @else {
                div #estimate { (estimate_figures(audience.estimate.as_ref())) }
            }
            @if manage {
                form.inline method="post" action=(format!("{base}/estimate")) {
                    (layout::csrf(staff))
                    button type="submit" { "Start estimate" }
                }
            }
        }
        section aria-label="Check a player" {
            h2 { "Check a player" }
            form.filters method="get" action=(format!("{base}/check")) {
                label for="check-user" { "Player id" }
                input #check-user name="userId" required maxlength="128";
                button type="submit" { "Check" }
            }
        }
        @if audience.kind == AudienceKind::List {
            section aria-label="Members" {
                h2 { "Members" }
                p {
                    a href=(format!("{base}/members")) { "List the members" } " · "
                    a href=(format!("{base}/members/export")) download { "Export as CSV" }
                }
                @if manage {
                    form.upload method="post" action=(format!("{base}/members")) enctype="multipart/form-data" data-confirm="Replace every member by this upload?" {
                        (layout::csrf(staff))
                        fieldset {
                            legend { "Replace the members" }
                            p.hint { "One user id a line (an optional userId header; blank lines skipped), at most 1,000,000. All or nothing: a bad line is named and nothing is kept." }
                            label for="members-file" { "CSV file" }
                            input #members-file type="file" name="file" accept=".csv,text/csv,text/plain";
                            label for="members-text" { "Or paste the user ids" }
                            textarea #members-text name="members" rows="4" spellcheck="false" {}
                            div.actions { button type="submit" { "Upload" } }
                        }
                    }
                }
            }
        }
    };
    Ok((status, layout::page(staff, Section::Audiences, &audience.name, body)))
}

/// A size estimate's figures: members found, and how far the scan got.
fn estimate_figures(estimate: Option<&AudienceEstimate>) -> Markup {
    html! {
        @match estimate {
            None => { p data-testid="estimate" { "No estimate yet." } }
            Some(estimate) => {
                dl.facts data-testid="estimate" {
                    dt { "Status" } dd data-testid="estimate-status" { (layout::badge(&super::shown(&estimate.status))) }
                    dt { "Members found" } dd data-testid="estimate-members" { (estimate.members) }
                    dt { "Scanned" } dd data-testid="estimate-progress" { (estimate.scanned) " / " (estimate.total) }
                    dt { "Started" } dd { (layout::instant_at(estimate.started_at, Zone::Utc)) }
                    dt { "Finished" } dd { (layout::instant_at(estimate.finished_at, Zone::Utc)) }
                    @if let Some(error) = &estimate.error { dt { "Error" } dd { (error) } }
                }
            }
        }
    }
}

async fn start_estimate(staff: Staff, Path(id): Path<String>, Checked(_): Checked<Nothing>) -> Response {
    let call = Call::new(Method::POST, format!("/api/v1/audiences/{}/estimate", segment(&id)));
    change_then_show(&staff, call, &audience_path(&id), "estimating").await
}

/// Only the estimate's figures, for the page's refresh while the job runs.
async fn estimate_live(staff: Staff, Path(id): Path<String>) -> Response {
    match staff.read(api::audience_estimate(&id)).await {
        Ok(progress) => estimate_figures(progress.run().as_ref()).into_response(),
        Err(failure) if failure.status == StatusCode::NOT_FOUND => estimate_figures(None).into_response(),
        Err(failure) => (failure.status, layout::failure(&failure)).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckQuery {
    #[serde(default)]
    user_id: String,
}

async fn check(staff: Staff, Path(id): Path<String>, Query(query): Query<CheckQuery>) -> Response {
    layout::render(check_page(&staff, &id, query.user_id.trim()).await)
}

async fn check_page(staff: &Staff, id: &str, user_id: &str) -> Result<Markup, Failure> {
    let audience = staff.read(api::audience(id)).await?;
    let result = staff.read(api::audience_check(id).query(&[("userId", user_id)])).await?;
    let body = html! {
        h1 { "Membership of " (audience.name) }
        dl.facts {
            dt { "Player" } dd { a href=(format!("/console/players/{}", segment(&result.user_id))) { (result.user_id) } }
            dt { "Audience" } dd { a href=(audience_path(id)) { (audience.name) } }
            dt { "Member" } dd data-testid="member" { (layout::yes_no(result.member)) }
        }
        h2 { "Why: the verdict of every node" }
        (verdict(&result.rule))
    };
    Ok(layout::page(staff, Section::Audiences, "Membership", body))
}

/// A rule's verdicts as a nested list, each node met or not.
fn verdict(node: &RuleVerdict) -> Markup {
    html! {
        ul.progress data-testid="verdict" {
            li class=(if node.met { "met" } else { "unmet" }) {
                strong { (node.kind) } " " (if node.met { "met ✓" } else { "not met" })
                @for child in &node.children { (verdict(child)) }
            }
        }
    }
}

async fn members(
    staff: Staff,
    Path(id): Path<String>,
    outcome: Outcome,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    layout::render(members_page(&staff, &id, &outcome, &Filters::read(&query, &[])).await)
}

async fn members_page(staff: &Staff, id: &str, outcome: &Outcome, filters: &Filters) -> Result<Markup, Failure> {
    let audience = staff.read(api::audience(id)).await?;
    let found = staff.read(filters.page_of(api::audience_members(id), PAGE_SIZE)).await?;
    let base = audience_path(id);
    let manage = staff.account.can(Permission::ManageAudiences);
    let body = html! {
        (outcome.render(&[("added", "Player added."), ("removed", "Player removed.")]))
        div.heading {
            h1 { "Members of " (audience.name) }
            nav.actions aria-label="Audience" {
                a.button href=(base.clone()) { "Audience" }
                a.button href=(format!("{base}/members/export")) download { "Export as CSV" }
            }
        }
        @if manage {
            form.filters method="post" action=(format!("{base}/members/add")) {
                (layout::csrf(staff))
                label for="add-user" { "Player id to add" }
                input #add-user name="userId" required maxlength="128";
                button type="submit" { "Add" }
            }
        }
        table.list data-testid="members" {
            thead { tr { th { "Player id" } @if manage { th { span.visually-hidden { "Actions" } } } } }
            tbody {
                @for member in &found.items {
                    tr {
                        td { a href=(format!("/console/players/{}", segment(&member.user_id))) { (member.user_id) } }
                        @if manage {
                            td {
                                form.inline method="post" action=(format!("{base}/members/{}/remove", segment(&member.user_id))) data-confirm="Remove this player from the audience?" {
                                    (layout::csrf(staff))
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
                @if found.items.is_empty() { tr { td { "No members." } } }
            }
        }
        (filters.pager(&format!("{base}/members"), &found))
    };
    Ok(layout::page(staff, Section::Audiences, "Members", body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberForm {
    user_id: String,
}

async fn add_member(staff: Staff, Path(id): Path<String>, Checked(form): Checked<MemberForm>) -> Response {
    let members = format!("{}/members", audience_path(&id));
    let user = form.user_id.trim();
    if user.is_empty() {
        return back_with_error(&members, "Name the player to add.");
    }
    let call = Call::new(Method::POST, format!("/api/v1/audiences/{}/members/{}", segment(&id), segment(user)));
    change_then_show(&staff, call, &members, "added").await
}

async fn remove_member(
    staff: Staff,
    Path((id, user)): Path<(String, String)>,
    Checked(_): Checked<Nothing>,
) -> Response {
    let call = Call::new(Method::DELETE, format!("/api/v1/audiences/{}/members/{}", segment(&id), segment(&user)));
    change_then_show(&staff, call, &format!("{}/members", audience_path(&id)), "removed").await
}

async fn export(staff: Staff, Path(id): Path<String>) -> Response {
    staff.forward(Call::get(format!("/api/v1/audiences/{}/members/export", segment(&id)))).await
}

/// `POST .../members`: the upload form (multipart: the CSRF token first, then a file or pasted
/// ids), its CSV streamed on to `PUT /api/v1/audiences/{id}/members` as it arrives.
async fn upload(staff: Staff, Path(id): Path<String>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let boundary = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok());
    let Some(boundary) = boundary else {
        return layout::refusal(StatusCode::UNSUPPORTED_MEDIA_TYPE, "The upload must be sent by the upload form.");
    };
    let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
    // The token must come first, so that nothing is sent on for a forged form.
    let token = match form.next_field().await {
        Ok(Some(field)) if field.name() == Some(crate::session::CSRF_FIELD) => field.text().await.ok(),
        _ => None,
    };
    if let Some(refused) = csrf_refusal(&parts.headers, token.as_deref().unwrap_or_default()) {
        return refused;
    }
    let path = format!("/api/v1/audiences/{}/members", segment(&id));
    let answer = loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break None,
            Err(error) => break Some(Err(Failure::bad_form("the upload", &format!("could not be read: {error}")))),
        };
        let chosen = match field.name() {
            Some("file") => field.file_name().is_some_and(|name| !name.is_empty()),
            Some("members") => true,
            _ => false,
        };
        if chosen {
            break Some(staff.send(Call::new(Method::PUT, path.clone()).csv(Body::from_stream(field))).await);
        }
    };
    let report = match answer {
        None => UploadReport::Refused("choose a file or paste user ids.".to_owned()),
        Some(Ok(reply)) if reply.is_success() => match reply.parse::<MemberCount>() {
            Ok(count) => UploadReport::Accepted(count.members),
            Err(failure) => UploadReport::Refused(failure.message()),
        },
        Some(Ok(reply)) => UploadReport::Refused(upload_refusal(&reply.failure())),
        Some(Err(failure)) => UploadReport::Refused(failure.message()),
    };
    match audience_page(&staff, &id, &Outcome::default(), Some(&report)).await {
        Ok(page) => page.into_response(),
        Err(failure) => layout::failure_page(&failure),
    }
}

/// Why an upload was refused: the bad line's own words (`line 5: …`), or the API's reason.
fn upload_refusal(failure: &Failure) -> String {
    let lines: Vec<&str> = failure.violations.iter().map(|violation| violation.message.as_str()).collect();
    if lines.is_empty() { failure.message() } else { lines.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_api_body_and_a_list_sends_no_rule() {
        let rule = AudienceForm {
            name: "Korea".into(),
            kind: "RULE".into(),
            rule: r#"{"type":"PROPERTY","name":"country","op":"IN","value":["KR"]}"#.into(),
            ..AudienceForm::default()
        };
        let body = rule.to_body(true).expect("well-formed");
        assert_eq!(body["kind"], "RULE");
        assert_eq!(body["rule"]["value"], json!(["KR"]));
        let list = AudienceForm { name: "Testers".into(), kind: "LIST".into(), rule: "{".into(), ..Default::default() };
        assert_eq!(
            list.to_body(true).expect("no rule read"),
            json!({"name": "Testers", "description": "", "kind": "LIST"})
        );
        let patch = AudienceForm { name: "Korea".into(), kind: "RULE".into(), ..Default::default() };
        assert!(patch.to_body(false).expect("kept rule").get("rule").is_none(), "an empty rule keeps the stored one");
        let broken = AudienceForm { kind: "RULE".into(), rule: "{not json".into(), ..Default::default() };
        assert_eq!(broken.to_body(true).expect_err("malformed")[0].pointer, "/rule");
    }

    #[test]
    fn the_rule_editor_offers_every_rule_type_and_windows_the_activity_leaves() {
        let leaves = rule_leaves(&[]);
        let names: Vec<&str> =
            leaves.as_array().into_iter().flatten().filter_map(|leaf| leaf["name"].as_str()).collect();
        let leaf_types: Vec<&str> = rule_types().filter(|name| !["AND", "OR", "NOT"].contains(name)).collect();
        assert_eq!(names.len(), leaf_types.len());
        assert!(leaf_types.iter().all(|name| names.contains(name)), "{names:?}");
        let login = leaves.as_array().into_iter().flatten().find(|leaf| leaf["name"] == "LOGIN_DAYS").expect("login");
        assert!(login["members"].as_array().into_iter().flatten().any(|member| member["name"] == "withinDays"));
    }

    #[test]
    fn a_refused_upload_names_its_line() {
        let failure = Failure {
            status: StatusCode::BAD_REQUEST,
            title: "Validation failed".into(),
            detail: None,
            code: None,
            violations: vec![Violation { pointer: "line:5".into(), message: "line 5: is not a user id".into() }],
        };
        assert_eq!(upload_refusal(&failure), "line 5: is not a user id");
    }
}
