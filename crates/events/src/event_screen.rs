//! The player's event screen (`GET /api/v1/me/events`): every running event with, per tier,
//! the player's progress, this period's claim and whether a claim would pay now. One call
//! draws a game's event screen.
//!
//! A page reads the player's facts once (for every tier of every event on it together) and,
//! concurrently, this period's claims of the player per event.

use std::sync::Arc;

use bestow_core::identity::Principal;
use bestow_core::ids::UserId;
use bestow_core::page::{Page, PageRequest};
use bestow_core::store::StoreError;
use bestow_core::time::Clock;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::catalog::store::{EventFilter, EventSortKey};
use crate::catalog::{CatalogError, EventCatalog};
use crate::claims::store::{ClaimFilter, ClaimStore};
use crate::conditions::activities::FactError;
use crate::conditions::eligibility::{Eligibility, EligibilityChecker, Judgement};
use crate::domain::evaluate::NodeProgress;
use crate::domain::event::{Event, GrantPolicy};
use crate::domain::lifecycle::{EventStatus, accepts_claims};
use crate::domain::recurrence::{Period, Recurrence};
use crate::domain::saga::{ClaimRequest, ClaimStatus};
use crate::domain::tier::Tier;
use crate::view::{Audience, EventView, RewardView};

/// Why the screen could not be drawn. The HTTP layer (`crate::http::errors`) maps each to its
/// problem details.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The player's facts could not be read.
    #[error(transparent)]
    Facts(#[from] FactError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A concurrent claim read panicked or was cancelled.
    #[error("a claim read did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Claims of one player on one event read at a time, newest first.
const CLAIMS_PER_READ: u32 = 500;

/// One event on the player's screen: the player view of the event, its current period and
/// where the player stands on each tier.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScreenEvent {
    /// `events._id`.
    pub id: String,
    /// Display name.
    pub event_name: String,
    /// Longer text shown to players.
    pub description: String,
    /// When claims open.
    pub start_date: DateTime<Utc>,
    /// When claims close.
    pub end_date: DateTime<Utc>,
    /// The event's condition tree (every tier requires it), or null.
    #[schema(value_type = Option<crate::domain::schemas::ConditionTree>)]
    pub conditions: Option<Value>,
    /// Always `ACTIVE` here.
    pub status: EventStatus,
    /// What a claim receives; empty when the event pays by tiers (see each tier's `rewards`).
    pub rewards: Vec<RewardView>,
    /// IANA time zone of the event's calendar days and resets.
    pub timezone: String,
    /// What happens when some rewards of a claim fail for good.
    pub grant_policy: GrantPolicy,
    /// When the event pays again; null for a one-time event.
    pub recurrence: Option<Recurrence>,
    /// The period claims are counted in now: the event's whole window for a one-time event.
    pub current_period: Period,
    /// When the current period ends and claims pay again; null for a one-time event, and when
    /// the event ends first.
    pub next_reset_at: Option<DateTime<Utc>>,
    /// One entry per tier, in order; one entry with `tierId` null for an event without tiers.
    pub tiers: Vec<ScreenTier>,
}

/// Where the player stands on one tier.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScreenTier {
    /// The tier to name in a claim; null for an event without tiers.
    pub tier_id: Option<String>,
    /// The tier's name; null for an event without tiers.
    pub tier_name: Option<String>,
    /// The tier's own conditions (on top of the event's), or null.
    #[schema(value_type = Option<crate::domain::schemas::ConditionTree>)]
    pub conditions: Option<Value>,
    /// What a claim of this tier receives.
    pub rewards: Vec<RewardView>,
    /// Whether the player meets the event's and the tier's conditions now.
    pub eligible: bool,
    /// The condition tree with each node's progress, as the eligibility preview gives it; null
    /// without conditions.
    pub progress: Option<NodeProgress>,
    /// The player's latest claim of this tier in the current period, or null.
    pub claim: Option<ClaimSummary>,
    /// Whether a claim now would pay: eligible, not yet paid this period, and stock left.
    pub claimable: bool,
}

/// A claim, as the event screen shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSummary {
    /// Poll `GET /api/v1/claims/{requestId}` for the whole claim.
    pub request_id: String,
    /// Where the claim stands.
    pub status: ClaimStatus,
}

/// Draws event screens.
pub struct EventScreen {
    catalog: Arc<EventCatalog>,
    claims: Arc<dyn ClaimStore>,
    eligibility: Arc<EligibilityChecker>,
    /// Which events run and which period is current.
    clock: Clock,
}

impl std::fmt::Debug for EventScreen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventScreen").finish_non_exhaustive()
    }
}

impl EventScreen {
    pub fn new(
        catalog: Arc<EventCatalog>,
        claims: Arc<dyn ClaimStore>,
        eligibility: Arc<EligibilityChecker>,
        clock: Clock,
    ) -> Self {
        Self { catalog, claims, eligibility, clock }
    }

    /// One page of the events running now, as `player` stands on them, earliest started first.
    pub async fn page(&self, player: &Principal, page: PageRequest) -> Result<Page<ScreenEvent>, ScreenError> {
        let now = self.clock.now();
        let filter = EventFilter {
            statuses: Some(vec![EventStatus::Active]),
            active_at: Some(now),
            name_contains: None,
            sort: EventSortKey::StartDate,
            descending: false,
        };
        let events = self.catalog.list(player, filter, page).await?;
        let periods: Vec<Option<Period>> = events.items.iter().map(|event| event.period_at(now)).collect();
        let judgements: Vec<Judgement> = events
            .items
            .iter()
            .zip(&periods)
            .map(|(event, period)| Judgement::new(event, &tiers_of(event), *period, now))
            .collect();
        // One read of the player's facts for the whole page, and each event's claims meanwhile.
        let claims = self.claims_this_period(&player.user_id, &events.items, &periods);
        let verdicts = self.eligibility.judge_all(&player.user_id, &judgements);
        let (claims, verdicts) = tokio::join!(claims, verdicts);
        let (claims, verdicts) = (claims?, verdicts?);
        let items = events
            .items
            .iter()
            .zip(periods)
            .zip(verdicts.into_iter().zip(claims))
            .map(|((event, period), (verdicts, claims))| screen_event(event, period, verdicts, &claims, now))
            .collect();
        Ok(Page::new(items, page, events.total))
    }

    /// Per event, the player's claims that decide its screen this period (all time for a
    /// one-time event), newest first: the latest of each tier and those holding its success.
    /// Events are read concurrently; each reads on until every tier's success is found or no
    /// claim is left, so a success behind many refused retries still counts.
    async fn claims_this_period(
        &self,
        user_id: &UserId,
        events: &[Event],
        periods: &[Option<Period>],
    ) -> Result<Vec<Vec<ClaimRequest>>, ScreenError> {
        let mut reads = tokio::task::JoinSet::new();
        for (index, (event, period)) in events.iter().zip(periods).enumerate() {
            let claims = self.claims.clone();
            let start = period.map(|period| period.start);
            let filter = ClaimFilter {
                user_id: Some(user_id.clone()),
                event_id: Some(event.id.clone()),
                // A claim of this period was made in it.
                from: start,
                ..ClaimFilter::default()
            };
            let tiers: Vec<Option<String>> =
                tiers_of(event).into_iter().map(|tier| tier.map(|tier| tier.tier_id.clone())).collect();
            reads.spawn(async move {
                let mut kept: Vec<ClaimRequest> = Vec::new();
                let mut page = PageRequest { page: 1, limit: CLAIMS_PER_READ };
                loop {
                    let found = claims.list_requests(&filter, page).await?;
                    let last = found.is_last();
                    for claim in found.items.into_iter().filter(|claim| claim.period_start == start) {
                        let latest_of_tier = !kept.iter().any(|newer| newer.tier_id == claim.tier_id);
                        if latest_of_tier || holds_success(&claim) {
                            kept.push(claim);
                        }
                    }
                    let settled = tiers
                        .iter()
                        .all(|tier| kept.iter().any(|claim| &claim.tier_id == tier && holds_success(claim)));
                    if settled || last {
                        return Ok::<_, StoreError>((index, kept));
                    }
                    page.page += 1;
                }
            });
        }
        let mut claims = vec![Vec::new(); events.len()];
        while let Some(read) = reads.join_next().await {
            let (index, found) = read??;
            claims[index] = found;
        }
        Ok(claims)
    }
}

/// The claim targets of an event: each tier, or the event's only implicit tier.
fn tiers_of(event: &Event) -> Vec<Option<&Tier>> {
    if event.tiers.is_empty() { vec![None] } else { event.tiers.iter().map(Some).collect() }
}

/// One event as the player stands on it, from its verdicts and this period's claims.
fn screen_event(
    event: &Event,
    period: Option<Period>,
    verdicts: Vec<Eligibility>,
    claims: &[ClaimRequest],
    now: DateTime<Utc>,
) -> ScreenEvent {
    let open = accepts_claims(event.status, event.start_date, event.end_date, now);
    let tiers = tiers_of(event)
        .into_iter()
        .zip(verdicts)
        .map(|(tier, verdict)| {
            let tier_id = tier.map(|tier| tier.tier_id.clone());
            let latest = claims.iter().find(|claim| claim.tier_id == tier_id);
            let paid = claims.iter().any(|claim| claim.tier_id == tier_id && holds_success(claim));
            let rewards = event.rewards_of(tier);
            let stock_left = rewards.iter().all(|reward| {
                reward.remaining_stock().is_none_or(|left| left >= reward.reward().stock().quantity_per_user())
            });
            ScreenTier {
                tier_name: tier.map(|tier| tier.tier_name.clone()),
                conditions: tier
                    .and_then(|tier| tier.conditions.as_ref())
                    .and_then(|conditions| serde_json::to_value(conditions).ok()),
                rewards: rewards.iter().map(|reward| RewardView::new(reward, Audience::Player)).collect(),
                claimable: open && verdict.eligible && !paid && stock_left,
                eligible: verdict.eligible,
                progress: verdict.conditions,
                claim: latest
                    .map(|claim| ClaimSummary { request_id: claim.request_id.to_string(), status: claim.status }),
                tier_id,
            }
        })
        .collect();
    let view = EventView::new(event, Audience::Player);
    ScreenEvent {
        id: view.id,
        event_name: view.event_name,
        description: view.description,
        start_date: view.start_date,
        end_date: view.end_date,
        conditions: view.conditions,
        status: view.status,
        rewards: view.rewards,
        timezone: view.timezone,
        grant_policy: view.grant_policy,
        recurrence: view.recurrence,
        next_reset_at: period.map(|period| period.end).filter(|reset| *reset < event.end_date),
        current_period: period.unwrap_or(Period { start: event.start_date, end: event.end_date }),
        tiers,
    }
}

/// Whether the claim holds (or is on its way to holding) this period's success of its tier:
/// it holds the claim slot, or it succeeded.
fn holds_success(claim: &ClaimRequest) -> bool {
    claim.claim_slot.is_some()
        || matches!(claim.status, ClaimStatus::SuccessAllGranted | ClaimStatus::RewardPartiallyGranted)
}
