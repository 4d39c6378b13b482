//! The `bestow` binary's library half: configuration, wiring and the command line, so that
//! integration tests and benchmarks build the very same application `main` runs.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
mod split;

pub use app::Application;
pub use config::Config;
