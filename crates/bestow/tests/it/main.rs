//! Integration tests of the `bestow` binary: real HTTP on real ports, real SQLite files in
//! temporary data dirs, real bcrypt and JWT.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common_calls;
mod fixtures;
mod helpers;

mod activities;
mod admin_routes;
mod audiences;
mod auth_flow;
mod backup;
mod backup_checks;
mod backup_mongo;
mod claims;
mod console;
mod console_browser;
mod console_typed;
mod crash;
mod docs;
mod event_stats;
mod events;
mod exports;
mod gauges;
mod granter;
mod hot_reward;
mod live_ops;
mod mongo;
mod process;
mod roles;
mod saga_driver;
mod security;
mod spend_currency;
mod split;
mod tls;
mod tokens;
