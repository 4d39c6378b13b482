//! The route table: every public path, the service that owns it, and who may call it.
//!
//! One declarative list serves two purposes: the gateway forwards a request to the service
//! the matching entry names, and it refuses (401/403) requests that entry's access rule
//! already excludes, before any upstream call. The services check again, finer: an owner
//! check on a claim, a USER's view of events. A path missing from this table is a 404 at the
//! gateway, which is how internal routes stay internal.

use axum::http::Method;
use bestow_core::identity::Permission;

/// The service behind a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    Auth,
    Events,
}

/// Who may call a route, as far as the gateway can tell from the access token alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: sign-up, sign-in, refresh, the JWKS.
    Public,
    /// Any valid access token.
    Signed,
    /// A token whose roles grant the permission.
    Permitted(Permission),
    /// A game server's `X-Api-Key` (the service owning the keys checks it), or a token whose
    /// roles grant the permission.
    ServiceKeyOr(Permission),
}

/// One entry of the table. Path patterns use `{name}` for one path segment.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub pattern: &'static str,
    pub upstream: Upstream,
    pub access: Access,
    /// The service answers a request repeating an `Idempotency-Key` with the first one's
    /// outcome, so a keyed request may reach it twice (see [`crate::proxy::may_resend`]).
    pub honours_idempotency_key: bool,
}

const fn route(method: &'static str, pattern: &'static str, upstream: Upstream, access: Access) -> Route {
    Route { method, pattern, upstream, access, honours_idempotency_key: false }
}

impl Route {
    /// This route with [`Route::honours_idempotency_key`] set.
    const fn keyed(self) -> Self {
        Self { honours_idempotency_key: true, ..self }
    }
}

use Access::{Permitted, Public, ServiceKeyOr, Signed};
use Permission::*;
use Upstream::{Auth, Events};

/// Every public route of `API.md`, plus the signing-key rotation.
pub const ROUTES: &[Route] = &[
    // Auth service.
    route("POST", "/api/v1/auth/register", Auth, Public),
    route("POST", "/api/v1/auth/login", Auth, Public),
    route("POST", "/api/v1/auth/refresh", Auth, Public),
    route("POST", "/api/v1/auth/logout", Auth, Signed),
    route("GET", "/api/v1/auth/me", Auth, Signed),
    route("PUT", "/api/v1/auth/me/password", Auth, Signed),
    route("GET", "/api/v1/auth/audit-logs", Auth, Permitted(ReadAuditLogs)),
    route("GET", "/api/v1/auth/audit-logs/export", Auth, Permitted(ReadAuditLogs)),
    route("POST", "/api/v1/auth/signing-keys", Auth, Permitted(ManageSigningKeys)),
    route("GET", "/api/v1/users", Auth, Permitted(ManageUsers)),
    route("GET", "/api/v1/users/{userId}", Auth, Permitted(ManageUsers)),
    route("PATCH", "/api/v1/users/{userId}", Auth, Permitted(ManageUsers)),
    route("PUT", "/api/v1/users/{userId}/roles", Auth, Permitted(ManageUsers)),
    route("GET", "/.well-known/jwks.json", Auth, Public),
    // Events service.
    route("POST", "/api/v1/events", Events, Permitted(ManageEvents)),
    route("GET", "/api/v1/events", Events, Signed),
    route("GET", "/api/v1/events/{eventId}", Events, Signed),
    route("PATCH", "/api/v1/events/{eventId}", Events, Permitted(ManageEvents)),
    route("DELETE", "/api/v1/events/{eventId}", Events, Permitted(DeleteEvents)),
    route("PUT", "/api/v1/events/{eventId}/status", Events, Permitted(ManageEvents)),
    route("POST", "/api/v1/events/{eventId}/rewards", Events, Permitted(ManageEvents)),
    route("GET", "/api/v1/events/{eventId}/rewards", Events, Signed),
    route("PATCH", "/api/v1/events/{eventId}/rewards/{rewardId}", Events, Permitted(ManageEvents)),
    route("DELETE", "/api/v1/events/{eventId}/rewards/{rewardId}", Events, Permitted(ManageEvents)),
    route("GET", "/api/v1/events/{eventId}/stats", Events, Permitted(ReadAllClaims)),
    // Players for themselves, staff for a player (`?userId=`): the service tells them apart.
    route("GET", "/api/v1/events/{eventId}/eligibility", Events, Signed),
    route("GET", "/api/v1/me/events", Events, Permitted(ClaimRewards)),
    // The key is the claim's request id: a repeated key answers the recorded claim.
    route("POST", "/api/v1/events/{eventId}/claims", Events, Permitted(ClaimRewards)).keyed(),
    route("GET", "/api/v1/claims/me", Events, Signed),
    route("GET", "/api/v1/claims", Events, Permitted(ReadAllClaims)),
    // Before `{requestId}`, which would take `export` for a request id open to any token.
    route("GET", "/api/v1/claims/export", Events, Permitted(ReadAllClaims)),
    route("GET", "/api/v1/claims/{requestId}", Events, Signed),
    route("POST", "/api/v1/claims/{requestId}/retry", Events, Permitted(InterveneInClaims)),
    route("POST", "/api/v1/claims/{requestId}/resolve", Events, Permitted(InterveneInClaims)),
    route("POST", "/api/v1/activities", Events, ServiceKeyOr(WriteActivities)),
    // Staff only: a service key writes activities, it never reads them.
    route("GET", "/api/v1/activities", Events, Permitted(ReadAllClaims)),
    route("GET", "/api/v1/wallet/me", Events, Signed),
    route("GET", "/api/v1/wallets/{userId}", Events, Permitted(ReadAllClaims)),
    route("POST", "/api/v1/service-keys", Events, Permitted(ManageServiceKeys)),
    route("GET", "/api/v1/service-keys", Events, Permitted(ManageServiceKeys)),
    route("DELETE", "/api/v1/service-keys/{keyId}", Events, Permitted(ManageServiceKeys)),
    route("PATCH", "/api/v1/players/{userId}/properties", Events, ServiceKeyOr(WritePlayerProperties)),
    route("GET", "/api/v1/players/{userId}/properties", Events, Permitted(ReadPlayerProperties)),
    route("GET", "/api/v1/me/properties", Events, Signed),
    route("POST", "/api/v1/audiences", Events, Permitted(ManageAudiences)),
    route("GET", "/api/v1/audiences", Events, Permitted(ReadAudiences)),
    route("GET", "/api/v1/audiences/{audienceId}", Events, Permitted(ReadAudiences)),
    route("PATCH", "/api/v1/audiences/{audienceId}", Events, Permitted(ManageAudiences)),
    route("DELETE", "/api/v1/audiences/{audienceId}", Events, Permitted(ManageAudiences)),
    route("PUT", "/api/v1/audiences/{audienceId}/members", Events, Permitted(ManageAudiences)),
    route("GET", "/api/v1/audiences/{audienceId}/members", Events, Permitted(ReadAudiences)),
    // Before `{userId}`, which would take `export` for a member to add or remove.
    route("GET", "/api/v1/audiences/{audienceId}/members/export", Events, Permitted(ReadAudiences)),
    route("POST", "/api/v1/audiences/{audienceId}/members/{userId}", Events, Permitted(ManageAudiences)),
    route("DELETE", "/api/v1/audiences/{audienceId}/members/{userId}", Events, Permitted(ManageAudiences)),
    route("POST", "/api/v1/audiences/{audienceId}/estimate", Events, Permitted(ManageAudiences)),
    route("GET", "/api/v1/audiences/{audienceId}/estimate", Events, Permitted(ReadAudiences)),
    route("GET", "/api/v1/audiences/{audienceId}/check", Events, Permitted(ReadAudiences)),
    route("GET", "/api/v1/audit-logs", Events, Permitted(ReadAuditLogs)),
    route("GET", "/api/v1/audit-logs/export", Events, Permitted(ReadAuditLogs)),
];

/// What the table says about a request.
#[derive(Debug, Clone, Copy)]
pub enum Resolution {
    Found(&'static Route),
    /// The path exists with other methods.
    MethodNotAllowed,
    NotFound,
}

/// Looks a request up in [`ROUTES`]. `HEAD` is treated as `GET`.
pub fn resolve(method: &Method, path: &str) -> Resolution {
    let method = if *method == Method::HEAD { "GET" } else { method.as_str() };
    let mut path_exists = false;
    for route in ROUTES {
        if matches(route.pattern, path) {
            if route.method == method {
                return Resolution::Found(route);
            }
            path_exists = true;
        }
    }
    if path_exists { Resolution::MethodNotAllowed } else { Resolution::NotFound }
}

/// Whether `path` fits `pattern`, segment by segment; `{name}` fits any non-empty segment.
fn matches(pattern: &str, path: &str) -> bool {
    let mut wanted = pattern.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(want), Some(got)) => {
                let is_parameter = want.starts_with('{') && want.ends_with('}');
                if if is_parameter { got.is_empty() } else { want != got } {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(method: Method, path: &str) -> Option<(Upstream, Access)> {
        match resolve(&method, path) {
            Resolution::Found(route) => Some((route.upstream, route.access)),
            _ => None,
        }
    }

    #[test]
    fn parameters_match_exactly_one_segment() {
        assert!(matches("/api/v1/events/{eventId}", "/api/v1/events/abc"));
        assert!(!matches("/api/v1/events/{eventId}", "/api/v1/events/"));
        assert!(!matches("/api/v1/events/{eventId}", "/api/v1/events/a/b"));
        assert!(!matches("/api/v1/events/{eventId}", "/api/v1/events"));
        assert!(matches("/api/v1/events", "/api/v1/events"));
    }

    #[test]
    fn literal_routes_win_over_parameters_by_order() {
        assert_eq!(found(Method::GET, "/api/v1/claims/me"), Some((Events, Signed)));
        assert_eq!(found(Method::GET, "/api/v1/claims/export"), Some((Events, Permitted(ReadAllClaims))));
        assert_eq!(found(Method::GET, "/api/v1/claims/0123"), Some((Events, Signed)));
        assert_eq!(found(Method::GET, "/api/v1/claims"), Some((Events, Permitted(ReadAllClaims))));
    }

    #[test]
    fn internal_and_unknown_paths_are_not_routed() {
        assert!(matches!(resolve(&Method::GET, "/internal/v1/users/abc"), Resolution::NotFound));
        assert!(matches!(resolve(&Method::GET, "/api/v1/nope"), Resolution::NotFound));
        assert!(matches!(resolve(&Method::DELETE, "/api/v1/auth/login"), Resolution::MethodNotAllowed));
    }

    #[test]
    fn head_is_routed_like_get() {
        assert_eq!(found(Method::HEAD, "/.well-known/jwks.json"), Some((Auth, Public)));
    }

    #[test]
    fn only_the_claim_submission_honours_an_idempotency_key() {
        let keyed: Vec<(&str, &str)> =
            ROUTES.iter().filter(|r| r.honours_idempotency_key).map(|r| (r.method, r.pattern)).collect();
        assert_eq!(keyed, [("POST", "/api/v1/events/{eventId}/claims")]);
    }

    #[test]
    fn every_pattern_is_unique_per_method() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(!(a.method == b.method && a.pattern == b.pattern), "{} {} twice", a.method, a.pattern);
            }
        }
    }
}
