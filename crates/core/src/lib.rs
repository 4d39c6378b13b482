//! The shared HTTP layer of Bestow.
//!
//! Everything two or more services need at the HTTP edge and nothing that belongs to one of
//! them: problem details, the JSON, query and page extractors that speak them, access-token
//! verification, and the plumbing every process shares (request ids, logs, health, metrics),
//! the CSV exports both services stream, and the audit-log resource both services answer
//! (`audit_log`). The HTTP-free vocabulary (ids, identity and roles, audit entries, pages,
//! store errors) is `bestow-kernel`'s, re-exported here under the same module names.

pub mod accounts;
pub mod audit_log;
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
