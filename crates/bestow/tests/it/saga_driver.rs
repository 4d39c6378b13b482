//! The saga driver against a store that gives up on a commit, as a MongoDB store does once its
//! bounded retries of labelled write conflicts run out: the claim is handed back for a prompt
//! retry, not held until its lease runs out. Real SQLite stores underneath, the real directory,
//! eligibility checker and ledger granter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bestow::config::Config;
use bestow_auth::accounts::StoreAccounts;
use bestow_auth::domain::User;
use bestow_auth::store::AuthStore;
use bestow_core::audit::AuditEntry;
use bestow_core::identity::Role;
use bestow_core::ids::{EventId, RequestId, UserId};
use bestow_core::page::{Page, PageRequest};
use bestow_core::store::StoreError;
use bestow_core::time::Clock;
use bestow_events::catalog::store::EventStore;
use bestow_events::claims::driver::{ClaimSaga, Started};
use bestow_events::claims::fault::FaultSwitch;
use bestow_events::claims::store::{ClaimFilter, ClaimStats, ClaimStore, Inserted, StockChange};
use bestow_events::conditions::activities::StoredActivityProvider;
use bestow_events::conditions::eligibility::EligibilityChecker;
use bestow_events::directory::AccountDirectory;
use bestow_events::domain::event::Event;
use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::saga::{ClaimRequest, ClaimStatus, Lease, Transition};
use bestow_events::grants::ledger::LedgerGranter;
use bestow_store_sqlite::{SqliteAuthStore, SqliteEventStore};
use chrono::{DateTime, Utc};

/// SQLite claims, except that the first commit carrying stock fails `Unavailable`; and, as on
/// MongoDB, stock is reserved by a commit after the insert.
struct GivesUpOnce {
    store: Arc<SqliteEventStore>,
    gave_up: AtomicBool,
}

#[async_trait]
impl ClaimStore for GivesUpOnce {
    async fn insert_request(&self, request: &ClaimRequest, stock: &[StockChange]) -> Result<Inserted, StoreError> {
        self.store.insert_request(request, stock).await
    }

    async fn request(&self, request_id: &RequestId) -> Result<Option<ClaimRequest>, StoreError> {
        self.store.request(request_id).await
    }

    async fn list_requests(&self, filter: &ClaimFilter, page: PageRequest) -> Result<Page<ClaimRequest>, StoreError> {
        self.store.list_requests(filter, page).await
    }

    async fn acquire_lease(
        &self,
        request_id: &RequestId,
        lease: Lease<'_>,
    ) -> Result<Option<ClaimRequest>, StoreError> {
        self.store.acquire_lease(request_id, lease).await
    }

    async fn commit(&self, from: &ClaimRequest, to: &Transition, audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        if !to.stock.is_empty() && !self.gave_up.swap(true, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("write conflicts kept coming".into()));
        }
        self.store.commit(from, to, audit).await
    }

    async fn due_requests(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        self.store.due_requests(now, limit).await
    }

    async fn count_by_status(&self, status: ClaimStatus) -> Result<u64, StoreError> {
        self.store.count_by_status(status).await
    }

    async fn event_claim_stats(&self, event_id: &EventId, since: DateTime<Utc>) -> Result<ClaimStats, StoreError> {
        self.store.event_claim_stats(event_id, since).await
    }

    fn reserves_with_insert(&self) -> bool {
        false
    }
}

async fn player(auth: &SqliteAuthStore) -> UserId {
    let now = bestow_core::time::now();
    let user = User {
        id: UserId::generate(),
        username: "driven".into(),
        password_hash: "not a login".into(),
        roles: vec![Role::User],
        created_at: now,
        updated_at: now,
        is_active: true,
        session_version: 0,
    };
    auth.insert_user(&user, None).await.unwrap();
    user.id
}

/// An ACTIVE event with one reward of 5 units, stored.
async fn limited_event(store: &SqliteEventStore) -> Event {
    let mut event = bestow_store_contract::events::event(Some(5));
    event.status = EventStatus::Active;
    store.insert_event(&event, &bestow_store_contract::events::audit("event.create", &event.id)).await.unwrap();
    event
}

#[tokio::test]
async fn a_commit_the_store_gives_up_on_is_handed_back_for_a_prompt_retry() {
    let dir = tempfile::TempDir::new().unwrap();
    let auth = Arc::new(SqliteAuthStore::open(&dir.path().join("auth.db")).unwrap());
    let events = Arc::new(SqliteEventStore::open(&dir.path().join("event.db")).unwrap());
    let user_id = player(&auth).await;
    let event = limited_event(&events).await;
    let claims = Arc::new(GivesUpOnce { store: events.clone(), gave_up: AtomicBool::new(false) });
    // A lease far longer than the test: only a hand-back lets the claim go on in time.
    let mut settings = Config::default().saga_settings();
    settings.lease = Duration::from_secs(600);
    let saga = ClaimSaga::new(
        claims.clone(),
        events.clone(),
        Arc::new(AccountDirectory(Arc::new(StoreAccounts::new(auth, Duration::from_secs(900))))),
        Arc::new(EligibilityChecker::new(Arc::new(StoredActivityProvider::new(events.clone())))),
        Arc::new(LedgerGranter::new(events.clone(), Clock::system())),
        settings,
        FaultSwitch::default(),
        Clock::system(),
    );
    let now = bestow_core::time::now();
    let user_id = UserId::parse(user_id.as_str()).unwrap();
    let request = ClaimRequest::new(bestow_core::ids::new_object_id(), RequestId::generate(), user_id, &event, now);
    let request_id = request.request_id;
    let Started::Created(started) = saga.start(request, event.clone()).await.unwrap() else { panic!("a replay") };
    assert!(saga.continue_started(started).await.is_err(), "the store gave up on the reservation");

    let handed_back = claims.request(&request_id).await.unwrap().unwrap();
    assert_eq!(handed_back.status, ClaimStatus::PendingInventoryAllocation);
    assert_eq!(handed_back.lease_owner, None, "the lease is released");
    let due = handed_back.next_attempt_at.expect("a retry is scheduled");
    assert!(due <= bestow_core::time::now() + chrono::TimeDelta::milliseconds(250), "retry due at {due}");
    assert_eq!(events.event(&event.id).await.unwrap().unwrap().rewards[0].remaining_stock(), Some(5));

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(claims.due_requests(bestow_core::time::now(), 10).await.unwrap(), vec![request_id]);
    let done = saga.drive(&request_id).await.unwrap().unwrap();
    assert_eq!(done.status, ClaimStatus::SuccessAllGranted);
    assert_eq!(events.event(&event.id).await.unwrap().unwrap().rewards[0].remaining_stock(), Some(4));
}
