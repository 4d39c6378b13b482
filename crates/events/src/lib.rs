//! The events service: event catalog, conditions and activities, and the claim saga.
//!
//! Layout, by capability:
//! - [`domain`] (the crate `bestow-events-domain`): the pure rules (lifecycle, rewards, tiers,
//!   recurrence, the condition tree and its evaluation, the event aggregate, the claim saga as
//!   a state machine), the views clients read and the storage ports. No I/O.
//! - [`audiences`]: audiences and player properties — staff use cases, the gate of every
//!   player path ([`audiences::gate`]) and the facts it judges on.
//! - [`catalog`]: events and rewards — the use cases, the storage port (defined in the domain,
//!   re-exported as [`catalog::store`]) and the expiry sweeper ([`catalog::expiry`]).
//! - [`conditions`]: what conditions are judged on — game activities and their storage
//!   ([`conditions::activities`]), the operator's fact endpoint
//!   ([`conditions::external_facts`]), and the eligibility checker
//!   ([`conditions::eligibility`]).
//! - [`claims`]: the claim use cases, the saga's driver ([`claims::driver`]), its storage port,
//!   the recovery sweeper and the test-only fault switch.
//! - [`grants`]: the granters (built-in ledger, webhook).
//! - [`event_screen`]: the player's event screen, drawn from all of the above.
//! - [`directory`]: the port to the auth service; [`service_keys`]: the API keys of game
//!   servers; [`view`]: what clients read (re-exported from the domain); [`http`]: the routes
//!   of `API.md`.

pub mod audiences;
pub mod catalog;
pub mod claims;
pub mod conditions;
pub mod directory;
pub mod event_screen;
pub mod grants;
pub mod http;
pub mod service_keys;

/// The pure rules, in a crate of their own so the compiler enforces that they do no I/O.
pub use bestow_events_domain as domain;
pub use bestow_events_domain::view;
pub use catalog::EventCatalog;
pub use catalog::store::EventStore;
