//! A bulk request body (`text/csv`: a LIST audience's members, up to a million user ids) on its
//! way through the proxy. It is passed on chunk by chunk as the client sends it, never held
//! whole, so it cannot be sent again: it goes to one instance, or to the next one only when
//! the first could not be connected to and so never read any of it.
//!
//! The limits are the edge's own ([`bestow_core::http::bulk_body`]): at most
//! [`MAX_BULK_BODY_BYTES`](bestow_core::http::MAX_BULK_BODY_BYTES), each chunk within the idle
//! time of the one before. An upload may rightly take longer than any fixed deadline, so the
//! service is given the idle time without progress instead: to take the next chunk while the
//! body flows, and to answer once it has ended.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use bestow_core::ApiError;
use bestow_core::http::{body_refusal, bulk_body};
use http_body::{Frame, SizeHint};
use tokio::time::Instant;

/// One client's bulk body, shared by the attempts to forward it.
pub(crate) struct BulkUpload {
    state: Mutex<State>,
}

struct State {
    /// The client's body, until an instance starts reading it.
    unread: Option<Body>,
    /// Since when the service owes the next step (take a chunk, or answer); `None` while the
    /// client owes the next chunk.
    service_owes_since: Option<Instant>,
    /// Why the client's body failed, once it did.
    client_failure: Option<ApiError>,
}

impl BulkUpload {
    /// Takes the client's `body`, limited as the edge limits bulk bodies, `idle` its idle time.
    pub(crate) fn new(body: Body, idle: Duration) -> Arc<Self> {
        let state = State {
            unread: Some(bulk_body(body, idle)),
            service_owes_since: Some(Instant::now()),
            client_failure: None,
        };
        Arc::new(Self { state: Mutex::new(state) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The body to send to an instance, unless an earlier instance already started reading it.
    pub(crate) fn body_for_instance(self: &Arc<Self>) -> Option<Body> {
        let unread = self.state().unread.is_some();
        unread.then(|| Body::new(ToInstance { upload: self.clone(), body: None }))
    }

    /// Why the call failed on the client's side, if it did: its body stopped arriving (408),
    /// grew past the limit (413) or broke off (400). Such a failure is not the instance's.
    pub(crate) fn client_failure(&self) -> Option<ApiError> {
        self.state().client_failure.take()
    }

    /// Waits for `call`, or gives up (`None`) once the service has owed the next step for
    /// `idle`. Time the client takes to send its next chunk is not counted: the body's own
    /// idle limit bounds it, and failing the body fails the call.
    pub(crate) async fn unless_service_idle<F: Future>(&self, idle: Duration, call: F) -> Option<F::Output> {
        let mut call = std::pin::pin!(call);
        loop {
            let wake = match self.state().service_owes_since {
                Some(since) if since + idle <= Instant::now() => return None,
                Some(since) => since + idle,
                None => Instant::now() + idle,
            };
            if let Ok(output) = tokio::time::timeout_at(wake, &mut call).await {
                return Some(output);
            }
        }
    }
}

/// The body one instance reads: it takes the client's body from the [`BulkUpload`] at its
/// first read, and notes every step for [`BulkUpload::unless_service_idle`].
struct ToInstance {
    upload: Arc<BulkUpload>,
    body: Option<Body>,
}

/// The body was already taken by an instance that started reading it; sending the rest to
/// another would make a list of the missing part (cannot happen: attempts are one at a time).
#[derive(Debug, thiserror::Error)]
#[error("the bulk body went to another instance")]
struct AlreadyTaken;

impl http_body::Body for ToInstance {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.body.is_none() {
            this.body = this.upload.state().unread.take();
        }
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(Some(Err(axum::Error::new(AlreadyTaken))));
        };
        let polled = Pin::new(body).poll_frame(context);
        let mut state = this.upload.state();
        match &polled {
            Poll::Pending => state.service_owes_since = None,
            Poll::Ready(outcome) => {
                state.service_owes_since = Some(Instant::now());
                if let Some(Err(error)) = outcome {
                    state.client_failure = Some(body_refusal(error));
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_some_and(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body.as_ref().map(http_body::Body::size_hint).unwrap_or_default()
    }
}
