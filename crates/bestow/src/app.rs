//! Wiring: builds the services from configuration and binds the HTTP server.
//!
//! This is the only place that knows about concrete adapters. `Application::build` returns a
//! server already bound to its port (port 0 picks a free one), so tests read the real address.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::middleware;
use bestow_auth::bootstrap::{self, Bootstrap};
use bestow_auth::http::AuthState;
use bestow_auth::{AuthService, AuthStore, SigningKeys};
use bestow_core::client::identify_client;
use bestow_core::http::{BodyLimits, Probe, ReadinessCheck, metrics_router, ops_router, with_common_layers};
use bestow_core::server::{ConnectionLimits, serve};
use bestow_core::time::Clock;
use bestow_core::token::TokenVerifier;
use bestow_events::audiences::AudienceService;
use bestow_events::audiences::facts::FactGatherer;
use bestow_events::audiences::gate::AudienceGate;
use bestow_events::audiences::properties::PlayerPropertyService;
use bestow_events::catalog::expiry::run_expiry;
use bestow_events::claims::ClaimService;
use bestow_events::claims::driver::ClaimSaga;
use bestow_events::claims::fault::FaultSwitch;
use bestow_events::claims::recovery::run_recovery;
use bestow_events::claims::store::ClaimStore;
use bestow_events::conditions::activities::ActivityStore;
use bestow_events::conditions::activities::{
    ActivityHistory, ActivityIngestion, ActivityProvider, StoredActivityProvider,
};
use bestow_events::conditions::eligibility::EligibilityChecker;
use bestow_events::conditions::external_facts::HttpActivityProvider;
use bestow_events::directory::{AccountDirectory, UserDirectory};
use bestow_events::domain::ports::audiences::AudienceStore;
use bestow_events::event_screen::EventScreen;
use bestow_events::grants::ledger::LedgerGranter;
use bestow_events::grants::ledger::LedgerStore;
use bestow_events::grants::webhook::WebhookGranter;
use bestow_events::grants::{RewardGranter, RoutedGranter};
use bestow_events::http::EventsState;
use bestow_events::service_keys::ServiceKeyStore;
use bestow_events::service_keys::ServiceKeys;
use bestow_events::{EventCatalog, EventStore};
use bestow_gateway::GatewayPolicy;
use bestow_store_mongo::{MongoAuthStore, MongoEventStore};
use bestow_store_sqlite::{SqliteAuthStore, SqliteEventStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::{Config, Storage};
use crate::gauges::BackupRecords;

/// The OpenAPI document's fixed parts; paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(title = "Bestow", description = "Event & reward platform for online games."),
    modifiers(&BearerAuth, &ServiceKeyAuth),
    tags(
        (name = "auth", description = "Sign-up, sign-in, sessions and signing keys"),
        (name = "users", description = "Account administration (ADMIN)"),
        (name = "audit", description = "Audit trail (AUDITOR, ADMIN)"),
        (name = "events", description = "Event catalog and lifecycle"),
        (name = "claims", description = "Reward claims and their saga"),
        (name = "wallets", description = "Balances of the built-in reward ledger"),
        (name = "rewards", description = "Rewards embedded in events"),
        (name = "activities", description = "Game activities pushed by game servers"),
        (name = "service-keys", description = "API keys of game servers (ADMIN)"),
        (name = "eligibility", description = "A player's progress towards an event's conditions"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Service API keys, sent by game servers as `X-Api-Key`.
struct ServiceKeyAuth;

impl utoipa::Modify for ServiceKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("apiKey", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))));
    }
}

/// The auth service as assembled from configuration.
pub struct AuthParts {
    pub service: Arc<AuthService>,
    pub verifier: TokenVerifier,
}

impl AuthParts {
    /// `/readyz`'s check of the auth store.
    pub(crate) fn readiness(&self) -> Arc<dyn ReadinessCheck> {
        let store = self.service.store().clone();
        Arc::new(Probe::new("auth_store", move || {
            let store = store.clone();
            async move { store.ping().await }
        }))
    }
}

/// Opens the configured auth store and the signing keys (in the data dir) and builds the
/// service.
pub async fn build_auth(config: &Config) -> anyhow::Result<AuthParts> {
    let data_dir = prepare_data_dir(&config.storage.data_dir)?;
    let store: Arc<dyn AuthStore> = match config.storage.backend {
        Storage::Sqlite => {
            Arc::new(SqliteAuthStore::open(&data_dir.join("auth.db")).context("cannot open the auth database")?)
        }
        Storage::Mongodb => Arc::new(
            MongoAuthStore::connect(config.mongodb_uri()?, &config.storage.auth_database)
                .await
                .context("cannot open the auth database")?,
        ),
    };
    let keys = Arc::new(SigningKeys::load_or_create(&data_dir)?);
    let service = AuthService::new(store, keys.clone(), config.auth_settings())
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the auth service: {e}"))?;
    let verifier = TokenVerifier::new(keys, service.standings().clone());
    Ok(AuthParts { service: Arc::new(service), verifier })
}

/// Creates the data dir readable by its owner only (0700), or narrows an existing one: it holds
/// the databases and the signing keys.
fn prepare_data_dir(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("cannot create the data dir {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict the data dir {} to its owner", dir.display()))?;
        }
    }
    Ok(dir.to_owned())
}

/// A bound, ready-to-run server: all-in-one ([`Application::build`]) or one service of split
/// mode (see `split.rs`).
pub struct Application {
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    /// The separate `/metrics` listener, when `metrics_listen` is set.
    metrics: Option<TcpListener>,
    /// Background tasks, stopped when the server stops.
    background: Vec<JoinHandle<()>>,
    /// The operator console is served here (all-in-one, the gateway): the start banner says where.
    serves_console: bool,
    /// The business clock the events service reads, when this server runs it.
    clock: Clock,
}

impl Application {
    /// Builds every service on embedded storage behind the in-process gateway, bootstraps the
    /// admin account on an empty store (printing a generated password once), and binds
    /// `config.server.listen`.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        install_metrics()?;
        let auth = build_auth(config).await?;
        announce(bootstrap::ensure_admin(&auth.service, config.admin_password()).await?);
        let directory = Arc::new(AccountDirectory(auth.service.accounts().clone()));
        let clock = Clock::system();
        let events = build_events(config, directory, auth.verifier.clone(), clock.clone()).await?;
        let readiness = vec![auth.readiness(), events.readiness.clone()];
        let policy = gateway_policy(config, auth.verifier.clone());
        let auth_state = AuthState { service: auth.service, verifier: auth.verifier };
        let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
            .merge(bestow_auth::http::router(auth_state))
            .merge(bestow_events::http::router(events.state))
            .split_for_parts();
        let gateway = bestow_gateway::in_process(api, policy);
        let router = Router::new()
            .merge(bestow_console::router(gateway.clone()))
            .merge(gateway)
            .merge(documentation(openapi))
            .merge(ops_routes(config, readiness.clone()));
        let mut background = events.background;
        background.push(crate::gauges::sample_readiness(readiness));
        Ok(Self::bind(config, edge_layers(router, config)?, background).await?.serving_console().reading(clock))
    }

    /// Binds `config.server.listen` for `router`.
    pub(crate) async fn bind(config: &Config, router: Router, background: Vec<JoinHandle<()>>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let metrics = match config.server.metrics_listen {
            Some(address) => Some(
                TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address} for metrics"))?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            router,
            limits: config.connection_limits(),
            metrics,
            background,
            serves_console: false,
            clock: Clock::system(),
        })
    }

    /// Marks this server as the one that serves the operator console.
    pub(crate) fn serving_console(self) -> Self {
        Self { serves_console: true, ..self }
    }

    /// Marks `clock` as the one this server's events service reads.
    pub(crate) fn reading(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// The business clock of this server's events service: event windows, periods, claims
    /// (see [`bestow_core::time`]). Tests that start the server in-process hold it to move
    /// this server's time alone.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn body_limits(&self) -> BodyLimits {
        BodyLimits { max_bytes: 1024, timeout: self.limits.body_timeout }
    }

    /// The address of the separate `/metrics` listener, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests for at most the
    /// configured drain timeout.
    pub async fn run_until(
        mut self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        tracing::info!(%addr, "bestow listening");
        // A stable first line on stdout for people and scripts that started the process, then
        // where a newcomer goes next.
        println!("bestow listening on http://{addr}");
        if self.serves_console {
            println!("  console:  http://{addr}/console/");
        }
        println!("  API docs: http://{addr}/docs");
        if let Some(listener) = self.metrics.take() {
            if let Ok(metrics_addr) = listener.local_addr() {
                println!("bestow metrics listening on http://{metrics_addr}");
            }
            let metrics = with_common_layers(metrics_router(), self.body_limits());
            let limits = self.limits;
            self.background.push(tokio::spawn(async move {
                if let Err(error) = serve(listener, metrics, limits, std::future::pending()).await {
                    tracing::error!(%error, "the metrics listener stopped");
                }
            }));
        }
        let served = serve(self.listener, self.router, self.limits, shutdown).await;
        for task in self.background {
            task.abort();
        }
        served?;
        tracing::info!("bestow stopped");
        Ok(())
    }
}

/// Installs the Prometheus recorder before any request, so that the first ones count too.
pub(crate) fn install_metrics() -> anyhow::Result<()> {
    bestow_core::telemetry::metrics_handle().context("a metrics recorder was already installed")?;
    Ok(())
}

/// The OpenAPI document's fixed parts (title, tags, security schemes).
pub(crate) fn api_doc() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `/openapi.json` and the interactive docs at `/docs`.
pub(crate) fn documentation(mut openapi: utoipa::openapi::OpenApi) -> Router {
    bestow_events::http::link_operations(&mut openapi);
    bestow_events::http::state_member_rules(&mut openapi);
    bestow_core::openapi::finish(&mut openapi);
    SwaggerUi::new("/docs").url("/openapi.json", openapi).into()
}

/// What faces clients, outermost first: the common layers, CORS when configured, then the
/// client's identification (trusted proxies).
pub(crate) fn edge_layers(router: Router, config: &Config) -> anyhow::Result<Router> {
    let router = router.layer(middleware::from_fn_with_state(config.trusted_proxies(), identify_client));
    let router = match bestow_gateway::cors(&config.cors_origins()).map_err(anyhow::Error::msg)? {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let body = BodyLimits {
        max_bytes: config.server.body_limit_bytes,
        timeout: Duration::from_millis(config.server.body_timeout_ms),
    };
    Ok(with_common_layers(router, body))
}

/// `/healthz`, `/readyz`, and `/metrics` unless it has a listener of its own.
pub(crate) fn ops_routes(config: &Config, readiness: Vec<Arc<dyn ReadinessCheck>>) -> Router {
    ops_router(readiness, config.server.metrics_listen.is_none())
}

/// The gateway's admission policy with the configured rate limits.
pub(crate) fn gateway_policy(config: &Config, verifier: TokenVerifier) -> Arc<GatewayPolicy> {
    let (per_address, per_user) = config.rate_limits();
    Arc::new(GatewayPolicy::new(verifier, per_address, per_user))
}

/// The events service as assembled from configuration, with its background workers.
pub(crate) struct EventsParts {
    pub state: EventsState,
    pub readiness: Arc<dyn ReadinessCheck>,
    pub background: Vec<JoinHandle<()>>,
}

/// Everything the events service keeps, all in one database (`event.db` or `event_db`),
/// including the record of completed backups.
pub(crate) trait EventDatabase:
    EventStore + ClaimStore + LedgerStore + ActivityStore + ServiceKeyStore + AudienceStore + BackupRecords + 'static
{
}

impl<T> EventDatabase for T where
    T: EventStore
        + ClaimStore
        + LedgerStore
        + ActivityStore
        + ServiceKeyStore
        + AudienceStore
        + BackupRecords
        + 'static
{
}

/// Opens the configured event database, builds the catalog, conditions and claim saga on it,
/// and starts the expiry and recovery sweepers, all reading business time from `clock`.
pub(crate) async fn build_events(
    config: &Config,
    directory: Arc<dyn UserDirectory>,
    verifier: TokenVerifier,
    clock: Clock,
) -> anyhow::Result<EventsParts> {
    let data_dir = prepare_data_dir(&config.storage.data_dir)?;
    match config.storage.backend {
        Storage::Sqlite => {
            let store = SqliteEventStore::open(&data_dir.join("event.db")).context("cannot open the event database")?;
            build_events_on(config, Arc::new(store), directory, verifier, clock)
        }
        Storage::Mongodb => {
            let store = MongoEventStore::connect(config.mongodb_uri()?, &config.storage.event_database)
                .await
                .context("cannot open the event database")?;
            build_events_on(config, Arc::new(store), directory, verifier, clock)
        }
    }
}

fn build_events_on<S: EventDatabase>(
    config: &Config,
    event_db: Arc<S>,
    directory: Arc<dyn UserDirectory>,
    verifier: TokenVerifier,
    clock: Clock,
) -> anyhow::Result<EventsParts> {
    let event_store: Arc<dyn EventStore> = event_db.clone();
    let provider = fact_provider(config, &event_db)?;
    let facts =
        Arc::new(FactGatherer::new(event_db.clone(), provider.clone(), event_db.clone(), verifier.standings().clone()));
    let gate = Arc::new(AudienceGate::new(facts.clone(), clock.clone()));
    let catalog = Arc::new(EventCatalog::new(event_store.clone(), clock.clone()).with_gate(gate.clone()));
    let eligibility = Arc::new(EligibilityChecker::new(provider));
    let claims = build_claims(config, &event_db, directory, eligibility.clone(), &clock, gate)?;
    let recovery =
        tokio::spawn(run_recovery(claims.saga().clone(), Duration::from_millis(config.events.recovery_sweep_ms)));
    let expiry = tokio::spawn(run_expiry(catalog.clone(), Duration::from_secs(config.events.expiry_sweep_secs)));
    let readiness: Arc<dyn ReadinessCheck> = Arc::new(Probe::new("event_store", move || {
        let store = event_store.clone();
        async move { store.ping().await }
    }));
    let claim_store: Arc<dyn ClaimStore> = event_db.clone();
    let screen = Arc::new(EventScreen::new(catalog.clone(), claim_store, eligibility.clone(), clock.clone()));
    let state = EventsState {
        catalog,
        verifier,
        claims,
        ledger: event_db.clone(),
        activities: Arc::new(ActivityIngestion::new(event_db.clone(), clock.clone())),
        activity_history: Arc::new(ActivityHistory::new(event_db.clone())),
        service_keys: Arc::new(ServiceKeys::new(event_db.clone(), clock.clone())),
        eligibility,
        screen,
        audiences: Arc::new(AudienceService::new(facts.clone(), clock.clone())),
        players: Arc::new(PlayerPropertyService::new(facts, clock.clone())),
        clock: clock.clone(),
    };
    let gauges = crate::gauges::sample_claims_and_stock(event_db.clone(), event_db.clone(), clock);
    let backup_age = crate::gauges::sample_last_backup(event_db.clone());
    Ok(EventsParts { state, readiness, background: vec![expiry, recovery, gauges, backup_age] })
}

pub(crate) fn announce(outcome: Bootstrap) {
    match outcome {
        Bootstrap::AlreadyInitialised => {}
        Bootstrap::CreatedWithConfiguredPassword => {
            tracing::info!(
                username = bootstrap::ADMIN_USERNAME,
                "created the bootstrap admin with the configured password"
            );
        }
        Bootstrap::CreatedWithGeneratedPassword(password) => {
            // Printed, never logged: stdout is shown once to whoever started the server.
            println!(
                "Bootstrap admin created.\n  username: {}\n  password: {password}\nThis password is shown only once; change it after signing in.",
                bootstrap::ADMIN_USERNAME
            );
        }
    }
}

/// Where conditions read their facts: the operator's HTTP endpoint when `facts_url` is set,
/// else the activities game servers pushed into `event.db`.
fn fact_provider<S: EventDatabase>(config: &Config, event_db: &Arc<S>) -> anyhow::Result<Arc<dyn ActivityProvider>> {
    Ok(match config.external_facts() {
        Some(settings) => Arc::new(HttpActivityProvider::new(settings).map_err(anyhow::Error::msg)?),
        None => Arc::new(StoredActivityProvider::new(event_db.clone())),
    })
}

/// The claim saga and its API service, on `event.db`, with the configured granters.
fn build_claims<S: EventDatabase>(
    config: &Config,
    event_db: &Arc<S>,
    directory: Arc<dyn UserDirectory>,
    eligibility: Arc<EligibilityChecker>,
    clock: &Clock,
    gate: Arc<AudienceGate>,
) -> anyhow::Result<Arc<ClaimService>> {
    let ledger: Arc<dyn RewardGranter> = Arc::new(LedgerGranter::new(event_db.clone(), clock.clone()));
    let mut granter = RoutedGranter::new(ledger.clone());
    if let (Some(url), Some(secret)) = (&config.events.webhook_url, &config.events.webhook_secret) {
        let webhook: Arc<dyn RewardGranter> = Arc::new(
            WebhookGranter::new(url, secret.expose(), Duration::from_millis(config.events.webhook_timeout_ms))
                .map_err(anyhow::Error::msg)?,
        );
        let types = config.webhook_types().map_err(anyhow::Error::msg)?;
        let types = if types.is_empty() { bestow_events::domain::reward::RewardType::ALL.to_vec() } else { types };
        for reward_type in types {
            granter = granter.route(reward_type, webhook.clone());
        }
    }
    let saga = Arc::new(ClaimSaga::new(
        event_db.clone(),
        event_db.clone(),
        directory,
        eligibility,
        Arc::new(granter),
        config.saga_settings(),
        FaultSwitch::from_env(),
        clock.clone(),
    ));
    Ok(Arc::new(
        ClaimService::new(event_db.clone(), event_db.clone(), saga, Duration::from_millis(config.events.claim_wait_ms))
            .with_gate(gate),
    ))
}
