//! Tests of the MongoDB adapters against the wire-compatible test server that `scripts/test`
//! starts (`BESTOW_TEST_MONGODB_URI`): the storage contract, the stored documents' seed shape,
//! concurrency, readiness, and the audience adapter's batches. One test binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audiences;
mod backup;
mod concurrency;
mod contract;
mod documents;
mod readiness;
mod support;
