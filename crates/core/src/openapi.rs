//! The finishing pass every process applies to its OpenAPI document before serving it.
//!
//! Handlers declare their own outcomes; what the common layers add to every route is declared
//! here, once, so that the document says everything the server can answer: errors are
//! `application/problem+json` bodies of the `Problem` schema, every response has a description,
//! and every operation lists the statuses of the shared machinery (a refused body or query,
//! credentials and roles, rate limits, a dependency that is down).

use std::collections::BTreeMap;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};

use utoipa::openapi::schema::{ArrayItems, KnownFormat, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};

/// Media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

const PROBLEM_SCHEMA: &str = "#/components/schemas/Problem";

/// The years the server accepts in a timestamp (`bestow_core::time`), as a pattern on
/// `date-time` strings: JSON Schema's format alone allows years 0000 to 9999.
const DATE_TIME_YEARS: &str = "^(19[7-9][0-9]|[2-9][0-9]{3})-";

/// Completes `openapi` as described in the module docs.
pub fn finish(openapi: &mut OpenApi) {
    if let Some(components) = &mut openapi.components {
        components.schemas.values_mut().for_each(bound_dates);
        describe_optional_references(&mut components.schemas);
    }
    for item in openapi.paths.paths.values_mut() {
        for operation in operations(item) {
            for parameter in operation.parameters.iter_mut().flatten() {
                if let RefOr::T(parameter) = parameter {
                    parameter.schema.iter_mut().for_each(never_null);
                    parameter.schema.iter_mut().for_each(bound_dates);
                }
            }
            declare_common_statuses(operation);
            for (status, response) in &mut operation.responses.responses {
                if let RefOr::T(response) = response {
                    describe(status, response);
                    problems_as_problem_json(response);
                }
            }
        }
    }
}

/// An optional member of a named type (`oneOf: [{$ref}, {type: null}]`) loses its doc comment
/// in the derive: it gets the description of the type it refers to.
fn describe_optional_references(schemas: &mut BTreeMap<String, RefOr<Schema>>) {
    let description_of = |schema: &RefOr<Schema>| match schema {
        RefOr::T(Schema::Object(object)) => object.description.clone(),
        RefOr::T(Schema::OneOf(one_of)) => one_of.description.clone(),
        _ => None,
    };
    let known: BTreeMap<String, String> = schemas
        .iter()
        .filter_map(|(name, schema)| Some((format!("#/components/schemas/{name}"), description_of(schema)?)))
        .collect();
    for schema in schemas.values_mut() {
        let RefOr::T(Schema::Object(object)) = schema else { continue };
        for property in object.properties.values_mut() {
            let RefOr::T(Schema::OneOf(one_of)) = property else { continue };
            if one_of.description.is_some() {
                continue;
            }
            one_of.description = one_of.items.iter().find_map(|item| match item {
                RefOr::Ref(reference) => known.get(&reference.ref_location).cloned(),
                RefOr::T(_) => None,
            });
        }
    }
}

/// An optional parameter is absent or has a value: `null` is not one (an optional header
/// would otherwise be documented as accepting the text `null`).
fn never_null(schema: &mut RefOr<Schema>) {
    if let RefOr::T(Schema::Object(object)) = schema
        && let SchemaType::Array(types) = &mut object.schema_type
    {
        types.retain(|kind| *kind != Type::Null);
        if let [single] = types.as_slice() {
            object.schema_type = SchemaType::Type(single.clone());
        }
    }
}

/// Adds [`DATE_TIME_YEARS`] to every `date-time` string in `schema`.
fn bound_dates(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            if matches!(object.format, Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))) {
                object.pattern.get_or_insert_with(|| DATE_TIME_YEARS.to_owned());
            }
            object.properties.values_mut().for_each(bound_dates);
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                bound_dates(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(bound_dates),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(bound_dates),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(bound_dates),
        _ => {}
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
}

/// The statuses the shared layers can answer on `operation`, added where the handler did not
/// declare them.
fn declare_common_statuses(operation: &mut Operation) {
    let parameters = operation.parameters.iter().flatten().filter_map(|parameter| match parameter {
        RefOr::T(parameter) => Some(parameter.parameter_in.clone()),
        RefOr::Ref(_) => None,
    });
    let (mut in_path, mut any_parameter) = (false, false);
    for place in parameters {
        any_parameter = true;
        in_path |= matches!(place, ParameterIn::Path);
    }
    let has_body = operation.request_body.is_some();
    // An empty requirement in the list makes credentials optional.
    let secured =
        operation.security.as_ref().is_some_and(|all| !all.is_empty() && !all.iter().any(is_empty_requirement));
    let mut common = vec!["429", "503"];
    if any_parameter || has_body {
        common.push("400");
    }
    if secured {
        common.extend(["401", "403"]);
    }
    if in_path {
        common.push("404");
    }
    if has_body {
        common.extend(["408", "413", "415"]);
    }
    for status in common {
        operation.responses.responses.entry(status.to_owned()).or_insert_with(|| RefOr::T(problem_response(status)));
    }
}

fn is_empty_requirement(requirement: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(requirement).is_ok_and(|value| value.as_object().is_some_and(serde_json::Map::is_empty))
}

fn problem_response(status: &str) -> Response {
    let mut response = Response::new(description_of(status));
    response.content.insert(PROBLEM_JSON.to_owned(), RefOr::T(Content::new(Some(Ref::new(PROBLEM_SCHEMA)))));
    response
}

fn describe(status: &str, response: &mut Response) {
    if response.description.is_empty() {
        response.description = description_of(status).to_owned();
    }
}

/// A `Problem` body documented as `application/json` moves to `application/problem+json`,
/// the type the server sends.
fn problems_as_problem_json(response: &mut Response) {
    let is_problem = |content: &RefOr<Content>| match content {
        RefOr::T(content) => {
            matches!(&content.schema, Some(RefOr::Ref(reference)) if reference.ref_location == PROBLEM_SCHEMA)
        }
        RefOr::Ref(_) => false,
    };
    if response.content.get("application/json").is_some_and(is_problem)
        && let Some(content) = response.content.shift_remove("application/json")
    {
        response.content.insert(PROBLEM_JSON.to_owned(), content);
    }
}

fn description_of(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted, still in progress",
        "204" => "Done; no body",
        "400" => "The request is malformed or a value is invalid; `errors[].pointer` names each field",
        "401" => "Credentials are missing, invalid or expired",
        "403" => "The caller's roles do not allow this",
        "404" => "No such resource, or not one the caller may see",
        "408" => "The request body did not arrive in time",
        "409" => "Conflicts with the current state; `code` says which",
        "412" => "The `If-Match` version is not the current one",
        "413" => "The request body is too large",
        "415" => "The request body is not `application/json`",
        "422" => "Well-formed but refused; `code` says why",
        "429" => "Too many requests; `Retry-After` says when to try again",
        "503" => "A dependency (storage or another service) is unavailable; try again later",
        _ => "See the problem details",
    }
}
