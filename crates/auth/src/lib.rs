//! The auth service: accounts, sessions, roles, signing keys and the auth audit log.
//!
//! Layout: [`domain`] holds the pure rules (what a username or password may be, who may change
//! whose roles), [`store`] the storage port adapters implement and [`view`] an account as
//! clients read it, all defined in `bestow-auth-domain` and re-exported here; [`service`] orchestrates
//! them with [`password`] hashing, [`signing`] keys and the login [`throttle`]; [`http`] maps
//! the service to the routes of `API.md`; [`accounts`] answers every request's question "does
//! this account still stand, with which roles".

pub mod accounts;
pub mod bootstrap;
pub mod http;
pub mod password;
pub mod service;
pub mod signing;
pub mod throttle;

pub use bestow_auth_domain::{domain, store, view};
pub use service::{AuthService, AuthSettings};
pub use signing::SigningKeys;
pub use store::AuthStore;
