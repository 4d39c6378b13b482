//! Admission: what the gateway decides before any upstream call, from the route table, the
//! access token and the rate limits.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method};
use bestow_core::ApiError;
use bestow_core::extract::bearer_token;
use bestow_core::identity::Principal;
use bestow_core::ids::UserId;
use bestow_core::token::TokenVerifier;

use crate::rate_limit::{Rate, RateLimiter};
use crate::routes::{self, Access, Resolution, Route};
use crate::verified::VerifiedTokens;

/// The header game servers send their service key in.
pub const API_KEY: &str = "x-api-key";

/// A request the gateway lets through.
#[derive(Debug)]
pub struct Admitted {
    pub route: &'static Route,
    /// The verified caller, when the route needed a token.
    pub principal: Option<Principal>,
}

/// The gateway's early checks, in order: client address under its limit, route exists,
/// token valid and allowed by the route, user under its limit.
pub struct GatewayPolicy {
    tokens: VerifiedTokens,
    per_address: RateLimiter<IpAddr>,
    per_user: RateLimiter<UserId>,
}

impl std::fmt::Debug for GatewayPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayPolicy").finish_non_exhaustive()
    }
}

impl GatewayPolicy {
    pub fn new(verifier: TokenVerifier, per_address: Rate, per_user: Rate) -> Self {
        Self {
            tokens: VerifiedTokens::new(verifier),
            per_address: RateLimiter::new(per_address),
            per_user: RateLimiter::new(per_user),
        }
    }

    /// Admits a request or answers the 404/405/401/403/429 the services would have given.
    pub async fn admit(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Admitted, ApiError> {
        // First, so that probing for routes that do not exist costs the prober its budget too.
        if let Some(address) = client {
            self.per_address.check(&address, Instant::now()).map_err(too_many)?;
        }
        let route = match routes::resolve(method, path) {
            Resolution::Found(route) => route,
            Resolution::MethodNotAllowed => return Err(ApiError::MethodNotAllowed),
            Resolution::NotFound => return Err(ApiError::route_not_found()),
        };
        let required = match route.access {
            Access::Public => None,
            Access::Signed => Some(None),
            Access::Permitted(permission) => Some(Some(permission)),
            Access::ServiceKeyOr(_) if headers.contains_key(API_KEY) => None,
            Access::ServiceKeyOr(permission) => Some(Some(permission)),
        };
        let Some(permission) = required else {
            return Ok(Admitted { route, principal: None });
        };
        let token = bearer_token(headers).ok_or(ApiError::Unauthorized("a bearer token is required"))?;
        let principal = self.tokens.verify(token).await?;
        if permission.is_some_and(|permission| !principal.can(permission)) {
            return Err(ApiError::Forbidden);
        }
        self.per_user.check(&principal.user_id, Instant::now()).map_err(too_many)?;
        Ok(Admitted { route, principal: Some(principal) })
    }
}

fn too_many(wait: Duration) -> ApiError {
    // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
    ApiError::TooManyRequests { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 }
}
