//! The command line: `bestow serve` and `bestow admin …`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Bestow: event & reward platform for online games.
#[derive(Debug, Parser)]
#[command(name = "bestow", version, about)]
pub struct Cli {
    /// TOML configuration file; `BESTOW_*` environment variables override it.
    #[arg(long, global = true, env = "BESTOW_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every service in one process on one port, with embedded storage.
    Serve,
    /// Split mode: run only the auth service (needs `internal_secret`).
    Auth,
    /// Split mode: run only the events service (needs `auth_url` and `internal_secret`).
    Events,
    /// Split mode: run only the gateway (needs `auth_url`, `events_url` and `internal_secret`).
    Gateway,
    /// Administer accounts directly in the data dir (works while the server runs).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Exit 0 when the server on `listen` answers `GET /readyz` with 200 (container health checks).
    Healthcheck,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an account with the given roles.
    CreateUser(CreateUser),
    /// Set a new password for an account and end its sessions.
    ResetPassword(ResetPassword),
    /// List accounts.
    ListUsers,
    /// Add a new token signing key; tokens signed with older keys keep verifying.
    RotateSigningKey,
    /// Copy both databases (SQLite files, or every MongoDB collection read in one snapshot) and
    /// the signing keys into a new or empty directory; safe while the server runs.
    Backup(BackupArgs),
    /// Restore a backup made by `admin backup` into an empty data dir (and, with MongoDB,
    /// empty databases), the servers stopped.
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Directory to write the backup into; created if absent, must be empty otherwise.
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Directory of a complete backup (with its `bestow-backup.json`).
    #[arg(long)]
    pub from: PathBuf,
}

#[derive(Debug, Args)]
pub struct CreateUser {
    #[arg(long)]
    pub username: String,
    /// Comma-separated roles: USER, OPERATOR, AUDITOR, ADMIN.
    #[arg(long, value_delimiter = ',', default_value = "USER")]
    pub roles: Vec<String>,
    #[command(flatten)]
    pub password: PasswordSource,
}

#[derive(Debug, Args)]
pub struct ResetPassword {
    #[arg(long)]
    pub username: String,
    #[command(flatten)]
    pub password: PasswordSource,
}

/// Where a new password comes from: the first line of stdin, or generated and printed once.
#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}
