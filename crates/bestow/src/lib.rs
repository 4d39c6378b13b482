//! The `bestow` binary's library half: configuration, wiring and the command line, so that
//! integration tests and benchmarks build the very same application `main` runs.

pub mod admin;
pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod gauges;
pub mod healthcheck;
mod split;

pub use app::Application;
pub use config::Config;
