//! The HTTP webhook granter: the game studio's own reward service, called per grant and
//! revoke with a signed request.
//!
//! `POST {url}/grant` and `POST {url}/revoke` with a JSON body (`grantKey`, `requestId`,
//! `userId`, `eventId`, `rewardId`, `rewardType`, `rewardName`, `details`, `quantity`) and
//! headers `Idempotency-Key: <grantKey>`, `X-Bestow-Timestamp: <unix seconds>` and
//! `X-Bestow-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`. A 2xx (or 409 on
//! grant: already granted) is success; other 4xx are permanent refusals; 5xx, timeouts and
//! connection errors are transient.

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::{Grant, GrantAction, GrantError, GrantFailure, RewardGranter};

/// A webhook granter for one endpoint.
pub struct WebhookGranter {
    client: reqwest::Client,
    base_url: String,
    secret: String,
}

impl WebhookGranter {
    /// `timeout` bounds each call; the saga retries transient failures.
    pub fn new(base_url: &str, secret: &str, timeout: Duration) -> Result<Self, String> {
        let client = bestow_core::outbound::client_builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Self { client, base_url: base_url.trim_end_matches('/').to_owned(), secret: secret.to_owned() })
    }

    async fn call(&self, action: GrantAction, grant: &Grant) -> Result<(), GrantError> {
        let reward = grant.reward.reward();
        let body = json!({
            "grantKey": grant.key,
            "requestId": grant.request_id,
            "userId": grant.user_id,
            "eventId": grant.event_id,
            "rewardId": grant.reward.reward_id().as_str(),
            "rewardType": reward.reward_type().as_str(),
            "rewardName": reward.reward_name(),
            "details": reward.details(),
            "quantity": reward.stock().quantity_per_user(),
        })
        .to_string();
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = sign(&self.secret, &timestamp, &body);
        let sent = self
            .client
            .post(format!("{}/{}", self.base_url, action.as_str()))
            .header("content-type", "application/json")
            .header("idempotency-key", &grant.key)
            .header("x-bestow-timestamp", &timestamp)
            .header("x-bestow-signature", format!("sha256={signature}"))
            .body(body)
            .send()
            .await;
        // reqwest's errors quote the URL; keep only the kind of failure.
        let status = match sent {
            Ok(response) => response.status(),
            Err(error) if error.is_timeout() => return Err(GrantError::Transient(GrantFailure::TimedOut { action })),
            Err(error) if error.is_connect() => {
                return Err(GrantError::Transient(GrantFailure::Unreachable { action }));
            }
            Err(_) => return Err(GrantError::Transient(GrantFailure::RequestFailed { action })),
        };
        if status.is_success() || (action == GrantAction::Grant && status == reqwest::StatusCode::CONFLICT) {
            Ok(())
        } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(GrantError::Transient(GrantFailure::Status { action, status }))
        } else {
            Err(GrantError::Permanent(GrantFailure::Status { action, status }))
        }
    }
}

/// Hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl RewardGranter for WebhookGranter {
    async fn grant(&self, grant: &Grant) -> Result<(), GrantError> {
        self.call(GrantAction::Grant, grant).await
    }

    async fn revoke(&self, grant: &Grant) -> Result<(), GrantError> {
        self.call(GrantAction::Revoke, grant).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let a = sign("secret", "1", "{}");
        assert_eq!(a.len(), 64);
        assert_ne!(a, sign("secret", "2", "{}"));
        assert_ne!(a, sign("secret", "1", "{ }"));
        assert_ne!(a, sign("other", "1", "{}"));
    }
}
