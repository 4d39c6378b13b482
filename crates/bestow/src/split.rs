//! Split mode: auth, events and the gateway as separate processes (`bestow auth`, `bestow
//! events`, `bestow gateway`), each with its own port, configuration and storage.
//!
//! The boundaries are those of all-in-one mode; only the adapters change. Events asks auth
//! about users over HTTP ([`RemoteAccounts`]) and both events and the gateway verify
//! tokens with auth's published keys ([`RemoteKeySet`]). The services trust the client
//! address the gateway forwards only next to the shared service credential.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use bestow_auth::bootstrap;
use bestow_auth::http::AuthState;
use bestow_core::accounts::{AccountSource, AccountStandings, RemoteAccounts};
use bestow_core::http::{Probe, ReadinessCheck, trust_gateway};
use bestow_core::jwks::RemoteKeySet;
use bestow_core::secret::ServiceCredential;
use bestow_core::token::TokenVerifier;
use bestow_events::directory::AccountDirectory;
use bestow_gateway::{Proxy, Upstreams};
use utoipa_axum::router::OpenApiRouter;

use crate::app::{
    Application, announce, api_doc, build_auth, build_events, documentation, edge_layers, gateway_policy, ops_routes,
};
use crate::config::Config;

/// Time allowed to fetch auth's keys or ask it about a user.
const SERVICE_CALL_TIMEOUT: Duration = Duration::from_secs(2);

impl Application {
    /// The auth service alone: its public API, and the internal user route events calls.
    pub async fn build_auth_service(config: &Config) -> anyhow::Result<Self> {
        let credential = config.service_credential()?;
        crate::app::install_metrics()?;
        let auth = build_auth(config).await?;
        announce(bootstrap::ensure_admin(&auth.service, config.admin_password()).await?);
        let readiness = vec![auth.readiness()];
        let internal = bestow_auth::http::internal::router(auth.service.clone(), credential.clone());
        let state = AuthState { service: auth.service, verifier: auth.verifier };
        let (api, openapi) =
            OpenApiRouter::with_openapi(api_doc()).merge(bestow_auth::http::router(state)).split_for_parts();
        let router = Router::new()
            .merge(trust_gateway(api, credential))
            .merge(internal)
            .merge(documentation(openapi))
            .merge(ops_routes(config, readiness.clone()));
        let background = vec![crate::gauges::sample_readiness(readiness)];
        Self::bind(config, edge_layers(router, config)?, background).await
    }

    /// The events service alone, asking auth (`auth_url`) about users and keys.
    pub async fn build_events_service(config: &Config) -> anyhow::Result<Self> {
        let credential = config.service_credential()?;
        let auth_url = config.first_auth_url()?;
        crate::app::install_metrics()?;
        let keys = RemoteKeySet::new(auth_url, SERVICE_CALL_TIMEOUT).map_err(anyhow::Error::msg)?;
        let accounts = remote_accounts(auth_url, &credential)?;
        let directory = Arc::new(AccountDirectory(accounts.clone()));
        let verifier = TokenVerifier::new(Arc::new(keys), Arc::new(AccountStandings::new(accounts)));
        let clock = bestow_core::time::Clock::system();
        let events = build_events(config, directory, verifier, clock.clone()).await?;
        let (api, openapi) =
            OpenApiRouter::with_openapi(api_doc()).merge(bestow_events::http::router(events.state)).split_for_parts();
        let router = Router::new()
            .merge(trust_gateway(api, credential))
            .merge(documentation(openapi))
            .merge(ops_routes(config, vec![events.readiness.clone()]));
        let mut background = events.background;
        background.push(crate::gauges::sample_readiness(vec![events.readiness]));
        Ok(Self::bind(config, edge_layers(router, config)?, background).await?.reading(clock))
    }

    /// The gateway alone: the route table, rate limits and CORS in front of auth (`auth_url`)
    /// and events (`events_url`), reached over HTTP. It documents both services' APIs.
    pub async fn build_gateway(config: &Config) -> anyhow::Result<Self> {
        let credential = config.service_credential()?;
        let upstreams = Upstreams {
            auth: config.required("auth_url", &config.split.auth_url)?.to_owned(),
            events: config.required("events_url", &config.split.events_url)?.to_owned(),
        };
        crate::app::install_metrics()?;
        let auth_url = config.first_auth_url()?;
        let keys = RemoteKeySet::new(auth_url, SERVICE_CALL_TIMEOUT).map_err(anyhow::Error::msg)?;
        let standings = AccountStandings::new(remote_accounts(auth_url, &credential)?);
        let policy = gateway_policy(config, TokenVerifier::new(Arc::new(keys), Arc::new(standings)));
        let readiness = vec![upstream_probe("auth", &upstreams.auth)?, upstream_probe("events", &upstreams.events)?];
        let proxy = Proxy::new(upstreams, config.proxy_settings(), credential).map_err(anyhow::Error::msg)?;
        let mut openapi = api_doc();
        openapi.merge(bestow_auth::http::openapi());
        openapi.merge(bestow_events::http::openapi());
        let gateway = bestow_gateway::proxied(policy, Arc::new(proxy));
        let router = Router::new()
            .merge(documentation(openapi))
            .merge(ops_routes(config, readiness.clone()))
            .merge(bestow_console::router(gateway.clone()))
            .merge(gateway);
        let background = vec![crate::gauges::sample_readiness(readiness)];
        Ok(Self::bind(config, edge_layers(router, config)?, background).await?.serving_console())
    }
}

/// Account standings from auth's internal route.
fn remote_accounts(auth_url: &str, credential: &ServiceCredential) -> anyhow::Result<Arc<dyn AccountSource>> {
    let accounts =
        RemoteAccounts::new(auth_url, credential.clone(), SERVICE_CALL_TIMEOUT).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(accounts))
}

/// A readiness check that at least one instance of a service answers its `/healthz`.
fn upstream_probe(name: &'static str, bases: &str) -> anyhow::Result<Arc<dyn ReadinessCheck>> {
    let client = bestow_core::outbound::client_builder()
        .timeout(SERVICE_CALL_TIMEOUT)
        .build()
        .context("cannot build a client")?;
    let instances = bestow_gateway::instances::Instances::parse(bases).map_err(anyhow::Error::msg)?;
    let urls: Vec<String> = instances.bases().map(|base| format!("{base}/healthz")).collect();
    Ok(Arc::new(Probe::new(name, move || {
        let (client, urls) = (client.clone(), urls.clone());
        async move {
            let mut failures = Vec::new();
            for url in &urls {
                match client.get(url).send().await {
                    Ok(response) if response.status().is_success() => return Ok(()),
                    Ok(response) => failures.push(format!("{url} answered {}", response.status())),
                    Err(error) => failures.push(format!("{url}: {error}")),
                }
            }
            Err(failures.join("; "))
        }
    })))
}
