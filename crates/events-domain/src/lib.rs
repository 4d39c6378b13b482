//! Pure domain logic of the events service: no I/O, no clocks, no storage; the storage ports
//! are traits declared here ([`ports`]) and implemented by the adapters.
//!
//! - [`validation`]: field errors with JSON pointers, shared by the parsers below.
//! - [`lifecycle`]: event statuses, allowed transitions and what each status permits.
//! - [`reward`]: reward types (each described once) and details, stock policy and top-ups,
//!   stored reward definitions.
//! - [`condition`]: the eligibility condition tree, one description per leaf type, the parser.
//! - [`evaluate`]: evaluation of a condition tree against activity facts, with progress.
//! - [`recurrence`]: resets of recurring events and the periods they make.
//! - [`tier`]: reward tiers, each paid once per player (and period).
//! - [`audience`]: player properties, audiences (rule and list) and event targeting.
//! - [`event`]: the event aggregate and the operator inputs that create and change it.
//! - [`saga`]: the claim saga as a pure state machine over the request document.
//! - [`stats`]: the event dashboard's claim figures, shaped from what a store counts.
//! - [`schemas`]: OpenAPI schemas of the inputs above that the derive cannot describe, the
//!   condition leaves and reward types built from their descriptions.
//! - [`view`]: how events, rewards and claims read to clients and in audit snapshots.
//! - [`wallet`]: a player's wallet, the sum of their ledger entries.
//! - [`ports`]: the storage ports the adapters implement, in these terms.

pub mod audience;
pub mod condition;
pub mod evaluate;
pub mod event;
pub mod lifecycle;
pub mod ports;
pub mod recurrence;
pub mod reward;
pub mod saga;
pub mod schemas;
pub mod stats;
pub mod tier;
pub mod validation;
pub mod view;
pub mod wallet;
