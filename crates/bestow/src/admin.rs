//! `bestow admin …`: account administration straight on the data dir, audited as `cli`, and
//! backups of it (see [`crate::backup`]).

use std::io::BufRead;

use anyhow::{Context, bail};
use bestow_auth::domain::{NewPassword, UserChange, Username};
use bestow_auth::store::UserFilter;
use bestow_core::audit::AuditActor;
use bestow_core::identity::Role;
use bestow_core::page::PageRequest;

use crate::app::build_auth;
use crate::cli::{AdminCommand, PasswordSource};
use crate::config::Config;

/// Runs one admin command and prints its result to stdout.
pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    // Backup and restore copy whole databases, not through the services: no bootstrap admin,
    // no signing key created, nothing written before a restore's checks pass.
    match command {
        AdminCommand::Backup(args) => crate::backup::backup(config, &args.to).await,
        AdminCommand::Restore(args) => crate::backup::restore(config, &args.from).await,
        command => accounts(config, command).await,
    }
}

/// The account and key commands, on the auth service.
async fn accounts(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let auth = build_auth(config).await?.service;
    let actor = AuditActor::system("cli");
    match command {
        AdminCommand::CreateUser(args) => {
            let username = Username::parse(&args.username, "--username").map_err(|v| anyhow::anyhow!(v.message))?;
            let roles = args
                .roles
                .iter()
                .map(|r| r.trim().to_ascii_uppercase().parse::<Role>())
                .collect::<Result<Vec<_>, _>>()?;
            let (password, generated) = read_password(&args.password)?;
            let user = auth.create_user(username, password.clone(), roles, Some(&actor)).await?;
            println!("created {} ({}) with roles {:?}", user.username, user.id, user.roles);
            if generated {
                println!("password: {}", password.expose());
            }
        }
        AdminCommand::ResetPassword(args) => {
            let user = auth
                .store()
                .user_by_username(&args.username)
                .await?
                .with_context(|| format!("no user named {}", args.username))?;
            let (password, generated) = read_password(&args.password)?;
            let hash = auth.hasher().hash(password.expose()).await?;
            // Ends the account's sessions too: refresh tokens revoked, access tokens refused.
            auth.change_user(&actor, &user.id, UserChange::PasswordHash(hash)).await?;
            println!("password of {} reset; its sessions were ended", user.username);
            if generated {
                println!("password: {}", password.expose());
            }
        }
        AdminCommand::ListUsers => {
            let mut page = PageRequest { page: 1, limit: 100 };
            loop {
                let users = auth.list_users(&UserFilter::default(), page).await?;
                for user in &users.items {
                    let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
                    let state = if user.is_active { "active" } else { "inactive" };
                    println!("{}  {:<32}  {:<8}  {}", user.id, user.username, state, roles.join(","));
                }
                if users.is_last() {
                    break;
                }
                page.page += 1;
            }
        }
        AdminCommand::RotateSigningKey => {
            let kid = auth.keys().rotate()?;
            println!("new signing key {kid}; restart running servers to sign with it");
        }
        AdminCommand::Backup(_) | AdminCommand::Restore(_) => bail!("backup and restore do not use the services"),
    }
    Ok(())
}

fn read_password(source: &PasswordSource) -> anyhow::Result<(NewPassword, bool)> {
    let (raw, generated) = if source.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (bestow_core::secret::random_password(20), true)
    };
    match NewPassword::parse(raw, "password") {
        Ok(password) => Ok((password, generated)),
        Err(violation) => bail!("{}", violation.message),
    }
}
