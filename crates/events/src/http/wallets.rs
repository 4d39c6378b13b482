//! `/api/v1/wallet/me` and `/api/v1/wallets/{userId}`: balances of the built-in ledger.

use axum::Json;
use axum::extract::{Path, State};
use bestow_core::ApiError;
use bestow_core::extract::{Authenticated, Authorized, require};
use bestow_core::ids::UserId;
use bestow_core::problem::Problem;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;
use crate::grants::ledger::Wallet;

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new().routes(routes!(my_wallet)).routes(routes!(wallet_of))
}

async fn wallet(state: &EventsState, user_id: &str) -> Result<Wallet, ApiError> {
    // Nothing is ever granted to text that is no user id: its wallet is empty.
    let entries = match UserId::parse(user_id) {
        Ok(user_id) => state.ledger.entries(&user_id).await?,
        Err(_) => Vec::new(),
    };
    Ok(Wallet::of(user_id, &entries))
}

/// The caller's points, currencies, items and coupons granted through the built-in ledger.
#[utoipa::path(get, path = "/api/v1/wallet/me", tag = "wallets", security(("bearer" = [])),
    responses((status = 200, body = Wallet), (status = 401, body = Problem)))]
async fn my_wallet(
    Authenticated(caller): Authenticated,
    State(state): State<EventsState>,
) -> Result<Json<Wallet>, ApiError> {
    Ok(Json(wallet(&state, caller.user_id.as_str()).await?))
}

/// A player's wallet (OPERATOR, AUDITOR, ADMIN).
#[utoipa::path(get, path = "/api/v1/wallets/{userId}", tag = "wallets", params(("userId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Wallet), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn wallet_of(
    _caller: Authorized<require::ReadAllClaims>,
    State(state): State<EventsState>,
    Path(user_id): Path<String>,
) -> Result<Json<Wallet>, ApiError> {
    Ok(Json(wallet(&state, &user_id).await?))
}
