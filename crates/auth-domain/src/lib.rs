//! The auth service's accounts and their rules (`domain`), the storage port its adapters
//! implement (`store`), and accounts as clients read them (`view`). A crate of its own so that
//! the store adapters and the operator console build on it without the HTTP service;
//! `bestow_auth` re-exports all three.

pub mod domain;
pub mod store;
pub mod view;
