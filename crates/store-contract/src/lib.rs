//! The storage contract: behaviour every adapter of the store ports must show, written once
//! against the ports and run against each adapter (`contract_suite!` in an adapter's tests).
//!
//! Each check builds what it needs in the store it is given, so a fresh store per check is
//! enough. The checks panic with a message naming the broken rule.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod activities;
pub mod audiences;
pub mod auth;
pub mod claims;
pub mod events;

/// Expands to one `#[tokio::test]` per contract check. `$auth` and `$events` are async
/// expressions (e.g. `fresh_auth_store()`) evaluating to `(store, guard)`: a fresh store
/// (`AuthStore` for `$auth`; `EventStore + ClaimStore + LedgerStore + ActivityStore +
/// ServiceKeyStore + AudienceStore` for `$events`) and whatever must live as long as it (a temporary
/// directory, a server).
#[macro_export]
macro_rules! contract_suite {
    (auth: $auth:expr, events: $events:expr $(,)?) => {
        $crate::contract_suite!(@checks $auth; auth::usernames_are_unique_ignoring_case, auth::audited_changes_commit_with_their_entry, auth::refresh_rotation_is_compare_and_set, auth::ended_sessions_are_the_families_revoked_lately, auth::user_lists_filter_by_role_activity_and_prefix);
        $crate::contract_suite!(@checks $events; events::replace_is_compare_and_set_on_version, events::counters_of_a_live_event_are_not_rewritten, events::top_up_moves_both_counters, events::event_lists_filter_sort_and_page_and_due_events_expire, events::recurrence_and_tiers_round_trip);
        $crate::contract_suite!(@checks $events; claims::request_ids_are_unique_and_replays_return_the_stored, claims::the_claim_slot_is_unique, claims::the_claim_slot_is_one_per_tier_and_period, claims::a_refused_reservation_writes_nothing, claims::commit_is_compare_and_set, claims::a_lease_goes_to_one_worker_at_a_time, claims::stock_moves_per_reward_all_or_nothing, claims::ledger_grants_are_idempotent_and_revokes_are_tombstones, claims::event_claim_stats_count_per_status_minute_and_failure_reason);
        $crate::contract_suite!(@checks $events; activities::batches_are_idempotent_by_activity_id, activities::facts_match_user_types_and_a_half_open_window, activities::recent_activities_are_a_players_newest_first_and_paged, activities::service_keys_are_found_by_digest_and_revoked_once);
        $crate::contract_suite!(@checks $events; audiences::player_properties_are_compare_and_set_on_version, audiences::player_properties_page_by_user_id, audiences::audiences_read_back_and_list_newest_first, audiences::audience_replace_is_compare_and_set_and_keeps_the_estimate, audiences::deleting_an_audience_removes_it_and_all_its_members, audiences::members_are_per_generation_and_a_discard_keeps_the_named_one, audiences::adding_and_removing_a_member_moves_the_count_on_the_current_generation, audiences::memberships_answer_several_lists_in_one_read, audiences::a_player_snapshot_is_the_properties_and_memberships_at_once, audiences::sticky_membership_is_per_player_and_event_and_idempotent, audiences::a_newer_estimate_run_replaces_an_older_one_never_the_reverse, audiences::audience_users_are_the_events_and_rules_naming_it);
    };
    (@checks $store:expr; $($module:ident :: $check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (store, _guard) = $store.await;
                $crate::$module::$check(&store).await;
            }
        )*
    };
}
