//! Who writes what game servers report: a game server with a service key (`X-Api-Key`)
//! holding the route's scope, or a person whose bearer token grants the route's permission.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bestow_core::ApiError;
use bestow_core::audit::AuditActor;
use bestow_core::extract::{Authorized, bearer_token, require};
use bestow_core::identity::{Principal, Requirement};

use super::EventsState;
use crate::service_keys::Scope;

/// The header carrying a service key's secret.
pub const API_KEY_HEADER: &str = "x-api-key";

/// What a game server's write needs: a key scope, or a person's permission.
pub trait WriteAccess: Send + Sync + 'static {
    const SCOPE: Scope;
    type Permission: Requirement;
}

/// Pushing activities (`POST /api/v1/activities`).
#[derive(Debug)]
pub struct Activities;

impl WriteAccess for Activities {
    const SCOPE: Scope = Scope::ActivitiesWrite;
    type Permission = require::WriteActivities;
}

/// Setting player properties (`PATCH /api/v1/players/{userId}/properties`).
#[derive(Debug)]
pub struct Players;

impl WriteAccess for Players {
    const SCOPE: Scope = Scope::PlayersWrite;
    type Permission = require::WritePlayerProperties;
}

/// Who is writing. With an `X-Api-Key` header the key decides (401 unknown or revoked, 403
/// without the scope); otherwise the bearer token must grant the permission (401 without a
/// valid token, 403 without the permission).
#[derive(Debug)]
pub struct Writer<A: WriteAccess> {
    pub by: WrittenBy,
    access: PhantomData<A>,
}

/// The writer's identity.
#[derive(Debug)]
pub enum WrittenBy {
    /// A game server, by its key's id and name.
    ServiceKey { id: String, name: String },
    /// A signed-in person.
    User(Principal),
}

impl<A: WriteAccess> Writer<A> {
    /// The kind of writer and its id, for logs.
    pub fn identity(&self) -> (&'static str, &str) {
        match &self.by {
            WrittenBy::ServiceKey { id, .. } => ("service_key", id),
            WrittenBy::User(principal) => ("user", principal.user_id.as_str()),
        }
    }

    /// Who the audit log names for this writer's changes.
    pub fn actor(&self, request_id: Option<String>) -> AuditActor {
        match &self.by {
            WrittenBy::ServiceKey { id, name } => AuditActor::service_key(id, name, request_id),
            WrittenBy::User(principal) => AuditActor::user(principal, request_id),
        }
    }
}

impl<A: WriteAccess> FromRequestParts<EventsState> for Writer<A> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &EventsState) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(API_KEY_HEADER) {
            let secret = value.to_str().map_err(|_| ApiError::Unauthorized("the API key is invalid or revoked"))?;
            let key = state.service_keys.authenticate(secret.trim(), A::SCOPE).await?;
            let by = WrittenBy::ServiceKey { id: key.id.to_string(), name: key.name };
            return Ok(Self { by, access: PhantomData });
        }
        if bearer_token(&parts.headers).is_none() {
            return Err(ApiError::Unauthorized("an API key (X-Api-Key) or a bearer token is required"));
        }
        let caller = Authorized::<A::Permission>::from_request_parts(parts, state).await?;
        Ok(Self { by: WrittenBy::User(caller.principal), access: PhantomData })
    }
}
