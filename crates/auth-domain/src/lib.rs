//! The auth service's accounts and their rules (`domain`), and the storage port its adapters
//! implement (`store`). A crate of its own so that the store adapters build on it without the
//! HTTP service; `bestow_auth` re-exports both modules.

pub mod domain;
pub mod store;
