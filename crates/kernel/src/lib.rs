//! The vocabulary every service and every store shares, with no HTTP in it: ids, roles and
//! the role→permission table, audit entries, pages and the errors a store port may return.
//!
//! The store adapters and the pure domains build on this crate alone; `bestow-core` adds the
//! HTTP plumbing and re-exports these modules under their old paths (`bestow_core::store`, …).

pub mod audit;
pub mod identity;
pub mod ids;
pub mod page;
pub mod store;
pub mod violation;

pub use bestow_clock as time;
