//! The shared kernel of Bestow.
//!
//! Everything two or more services need and nothing that belongs to one of them:
//! problem details, the JSON and query extractors that speak them, identity and the
//! role→permission table, access-token verification, and the HTTP plumbing every process
//! shares (request ids, logs, health, metrics), and the CSV exports both services stream.

pub mod accounts;
pub mod client;
pub mod csv;
pub mod export;
pub mod extract;
pub mod http;
pub mod json;
pub mod jwks;
pub mod openapi;
pub mod outbound;
pub mod page;
pub mod problem;
pub mod secret;
pub mod server;
pub mod telemetry;
pub mod token;

pub use bestow_clock as time;
pub use bestow_kernel::{audit, identity, ids, store};
pub use problem::{ApiError, FieldViolation};
