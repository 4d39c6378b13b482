//! Typed calls of the API for the tests, after svix's `tests/it/utils/common_calls.rs`: each
//! sends one request, checks its status and reads the reply as the API's own view type
//! (`EventView`, `ClaimView`, `Page<T>`…), so a test asserts on fields, and a reply that no
//! longer reads as its type fails the test that made the call.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use bestow_auth::view::UserView;
use bestow_core::page::Page;
use bestow_events::domain::evaluate::Eligibility;
use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::stats::EventStats;
use bestow_events::domain::wallet::Wallet;
use bestow_events::view::{ClaimView, EventView};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::helpers::Client;

/// How long [`Client::settled_claim`] waits for a claim to become final.
const SETTLE_WITHIN: Duration = Duration::from_secs(20);

impl Client {
    /// Sends the call, checks its status, and reads the reply as `T`.
    pub(crate) async fn read<T: DeserializeOwned>(
        &self,
        expected: StatusCode,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> T {
        let reply = self.expect(expected, method.clone(), path, token, body).await;
        let kind = std::any::type_name::<T>();
        serde_json::from_value(reply.clone())
            .unwrap_or_else(|error| panic!("{method} {path}: not a {kind} ({error}): {reply}"))
    }

    /// Creates the event `body` (a DRAFT).
    pub(crate) async fn create_event(&self, token: &str, body: Value) -> EventView {
        self.read(StatusCode::CREATED, Method::POST, "/api/v1/events", Some(token), Some(body)).await
    }

    /// Moves event `id` to `status`.
    pub(crate) async fn set_event_status(&self, token: &str, id: &str, status: EventStatus) -> EventView {
        let path = format!("/api/v1/events/{id}/status");
        self.read(StatusCode::OK, Method::PUT, &path, Some(token), Some(json!({ "status": status }))).await
    }

    /// Creates the event `body` and activates it.
    pub(crate) async fn create_active_event(&self, token: &str, body: Value) -> EventView {
        let draft = self.create_event(token, body).await;
        self.set_event_status(token, &draft.id.to_string(), EventStatus::Active).await
    }

    pub(crate) async fn event(&self, token: &str, id: &str) -> EventView {
        self.read(StatusCode::OK, Method::GET, &format!("/api/v1/events/{id}"), Some(token), None).await
    }

    /// `GET /api/v1/events?{query}`.
    pub(crate) async fn events(&self, token: &str, query: &str) -> Page<EventView> {
        self.read(StatusCode::OK, Method::GET, &format!("/api/v1/events?{query}"), Some(token), None).await
    }

    /// Claims event `event_id` with idempotency key `key`: the claim as recorded, final (201)
    /// or still under way (202).
    pub(crate) async fn claim_view(&self, token: &str, event_id: &str, key: &str) -> ClaimView {
        let (status, reply) = self.claim(token, event_id, key).await;
        assert!(matches!(status.as_u16(), 201 | 202), "claim of {event_id}: {status} {reply}");
        serde_json::from_value(reply.clone()).unwrap_or_else(|error| panic!("not a ClaimView ({error}): {reply}"))
    }

    /// `GET /api/v1/claims/{request_id}`.
    pub(crate) async fn claim_of(&self, token: &str, request_id: &str) -> ClaimView {
        self.read(StatusCode::OK, Method::GET, &format!("/api/v1/claims/{request_id}"), Some(token), None).await
    }

    /// The claim once its status is final (polled for 20 s at most).
    pub(crate) async fn settled_claim(&self, token: &str, request_id: &str) -> ClaimView {
        let deadline = Instant::now() + SETTLE_WITHIN;
        loop {
            let claim = self.claim_of(token, request_id).await;
            if claim.status.is_final() {
                return claim;
            }
            assert!(Instant::now() < deadline, "claim {request_id} is not final: {:?}", claim.status);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET /api/v1/claims?{query}`.
    pub(crate) async fn claims(&self, token: &str, query: &str) -> Page<ClaimView> {
        self.read(StatusCode::OK, Method::GET, &format!("/api/v1/claims?{query}"), Some(token), None).await
    }

    /// `GET /api/v1/wallets/{user_id}`.
    pub(crate) async fn wallet(&self, token: &str, user_id: &str) -> Wallet {
        self.read(StatusCode::OK, Method::GET, &format!("/api/v1/wallets/{user_id}"), Some(token), None).await
    }

    /// `GET /api/v1/events/{event_id}/stats`.
    pub(crate) async fn event_stats(&self, token: &str, event_id: &str) -> EventStats {
        self.read(StatusCode::OK, Method::GET, &format!("/api/v1/events/{event_id}/stats"), Some(token), None).await
    }

    /// `GET /api/v1/events/{event_id}/eligibility?userId={user_id}`.
    pub(crate) async fn eligibility(&self, token: &str, event_id: &str, user_id: &str) -> Eligibility {
        let path = format!("/api/v1/events/{event_id}/eligibility?userId={user_id}");
        self.read(StatusCode::OK, Method::GET, &path, Some(token), None).await
    }

    /// The account behind `token`.
    pub(crate) async fn me(&self, token: &str) -> UserView {
        self.read(StatusCode::OK, Method::GET, "/api/v1/auth/me", Some(token), None).await
    }
}
