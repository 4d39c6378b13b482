//! Configuration: compiled-in defaults, then an optional TOML file, then `BESTOW_*`
//! environment variables, each overriding the one before. Validated once at start-up; a bad
//! value stops the process with one line naming the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bestow_auth::AuthSettings;
use bestow_auth::throttle::ThrottleSettings;
use bestow_core::client::TrustedProxies;
use bestow_core::secret::{Secret, ServiceCredential};
use bestow_core::server::ConnectionLimits;
use bestow_core::telemetry::LogFormat;
use bestow_events::claims::driver::SagaSettings;
use bestow_events::conditions::external_facts::ExternalFactsSettings;
use bestow_events::domain::reward::RewardType;
use bestow_events::domain::saga::RetryPolicy;
use bestow_gateway::{ProxySettings, Rate};
use chrono::TimeDelta;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Every setting of a Bestow process, grouped by the component that reads it. The groups are
/// an inside view: outside, every setting keeps one flat name, the field's name, which is the
/// TOML key; `BESTOW_` + the name in capitals is the environment variable (`data_dir` →
/// `BESTOW_DATA_DIR`). Secrets are [`Secret`]s, so neither `Debug` nor `Serialize` shows them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Config {
    #[serde(flatten)]
    pub server: ServerConfig,
    #[serde(flatten)]
    pub telemetry: TelemetryConfig,
    #[serde(flatten)]
    pub storage: StorageConfig,
    #[serde(flatten)]
    pub auth: AuthConfig,
    #[serde(flatten)]
    pub events: EventsConfig,
    #[serde(flatten)]
    pub split: SplitConfig,
    #[serde(flatten)]
    pub gateway: GatewayConfig,
}

/// The HTTP server every process runs: where it listens and what a client may hold of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Address of a separate listener for `/metrics`; when set, the main listener does not
    /// serve `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Longest wait for a request's head, and longest idle time of a keep-alive connection.
    pub header_timeout_ms: u64,
    /// Longest time to receive a request's whole body (then 408).
    pub body_timeout_ms: u64,
    /// Most client connections open at once; past it new connections are closed at once.
    pub max_connections: usize,
    /// Longest time in-flight requests get after SIGTERM before the process exits.
    pub drain_timeout_ms: u64,
    /// Comma-separated CIDR blocks (or addresses) of load balancers whose `X-Forwarded-For`
    /// is believed; empty: the TCP peer is the client.
    pub trusted_proxies: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            body_limit_bytes: 1024 * 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_connections: 4_096,
            drain_timeout_ms: 10_000,
            trusted_proxies: String::new(),
        }
    }
}

/// Logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// `text` (human) or `json`.
    pub log_format: LogFormat,
    /// Log filter in `RUST_LOG` syntax.
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { log_format: LogFormat::Text, log_level: "info".to_owned() }
    }
}

/// Where the services keep their data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `sqlite` (embedded, files in `data_dir`) or `mongodb` (`mongodb_uri`).
    #[serde(rename = "storage")]
    pub backend: Storage,
    /// Directory holding the databases and the signing keys.
    pub data_dir: PathBuf,
    /// MongoDB connection string (a replica set: saga steps use transactions); a secret, as it
    /// usually holds a password.
    pub mongodb_uri: Option<Secret>,
    /// MongoDB database of the auth service.
    pub auth_database: String,
    /// MongoDB database of the events service.
    pub event_database: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: Storage::Sqlite,
            data_dir: PathBuf::from("./data"),
            mongodb_uri: None,
            auth_database: "auth_db".to_owned(),
            event_database: "event_db".to_owned(),
        }
    }
}

/// The auth service: the bootstrap admin, password hashing, tokens, the login throttle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Password of the bootstrap `admin` on an empty store; generated and printed when unset.
    pub admin_password: Option<Secret>,
    /// bcrypt cost of new password hashes: 10 or more in production.
    pub bcrypt_cost: u32,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Failed logins per username before 429.
    pub login_max_failures_per_username: usize,
    /// Failed logins per client address before 429.
    pub login_max_failures_per_address: usize,
    /// Window of the failure counters.
    pub login_window_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            admin_password: None,
            bcrypt_cost: 12,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 60 * 60,
            login_max_failures_per_username: 5,
            login_max_failures_per_address: 50,
            login_window_secs: 5 * 60,
        }
    }
}

/// The events service: the expiry sweeper, the claim saga's lease, retries and recovery, the
/// studio's reward webhook and the operator's fact provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsConfig {
    /// How often events past their `endDate` are moved to EXPIRED.
    pub expiry_sweep_secs: u64,
    /// How long `POST …/claims` waits for a final status before answering 202.
    pub claim_wait_ms: u64,
    /// How long a saga worker owns a claim between commits; a crashed worker's claims are
    /// resumed after this.
    pub claim_lease_ms: u64,
    /// How often the recovery sweeper looks for claims to resume.
    pub recovery_sweep_ms: u64,
    /// Attempts of a grant, a revoke or a condition check before giving up.
    pub saga_max_attempts: u32,
    /// First retry delay of a transient failure; doubles per attempt (with jitter).
    pub saga_retry_base_ms: u64,
    /// Base URL of the studio's reward webhook (`POST {url}/grant`, `POST {url}/revoke`);
    /// unset: the built-in ledger grants every reward.
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key of webhook signatures.
    pub webhook_secret: Option<Secret>,
    /// Comma-separated reward types granted through the webhook; the rest use the built-in
    /// ledger. Empty means every type when `webhook_url` is set.
    pub webhook_reward_types: String,
    /// Timeout of one webhook call.
    pub webhook_timeout_ms: u64,
    /// URL of the operator's external fact provider (`POST`, signed); unset: conditions are
    /// evaluated on the activities pushed to `POST /api/v1/activities`.
    pub facts_url: Option<String>,
    /// HMAC-SHA256 key of fact provider requests; required with `facts_url`.
    pub facts_secret: Option<Secret>,
    /// Timeout of one fact provider attempt.
    pub facts_timeout_ms: u64,
    /// Retries of a fact provider request after a timeout, a connection failure or a 5xx.
    pub facts_retries: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            expiry_sweep_secs: 10,
            claim_wait_ms: 2_000,
            claim_lease_ms: 15_000,
            recovery_sweep_ms: 1_000,
            saga_max_attempts: 5,
            saga_retry_base_ms: 200,
            webhook_url: None,
            webhook_secret: None,
            webhook_reward_types: String::new(),
            webhook_timeout_ms: 2_000,
            facts_url: None,
            facts_secret: None,
            facts_timeout_ms: 2_000,
            facts_retries: 3,
        }
    }
}

/// Split mode: where the other processes are and the secret they share.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SplitConfig {
    /// Base URL of the auth service (events and gateway).
    pub auth_url: Option<String>,
    /// Base URL of the events service (gateway).
    pub events_url: Option<String>,
    /// The secret the services share for service-to-service calls (16+ bytes).
    pub internal_secret: Option<Secret>,
}

/// The gateway: its upstream calls, rate limits and CORS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// Time to connect to a service.
    pub upstream_connect_timeout_ms: u64,
    /// Time for a whole proxied call; keep it above `claim_wait_ms`.
    pub upstream_timeout_ms: u64,
    /// Requests per second per client address (0 turns the limit off).
    pub rate_limit_address_per_sec: u32,
    /// Burst above that rate per client address.
    pub rate_limit_address_burst: u32,
    /// Requests per second per signed-in user (0 turns the limit off).
    pub rate_limit_user_per_sec: u32,
    /// Burst above that rate per user.
    pub rate_limit_user_burst: u32,
    /// Comma-separated origins allowed by CORS, or `*`; empty: same-origin only.
    pub cors_allowed_origins: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            upstream_connect_timeout_ms: 1_000,
            upstream_timeout_ms: 15_000,
            rate_limit_address_per_sec: 200,
            rate_limit_address_burst: 400,
            rate_limit_user_per_sec: 20,
            rate_limit_user_burst: 40,
            cors_allowed_origins: String::new(),
        }
    }
}

/// Most retries of one fact provider request: each waits for a timeout, and a claim's
/// condition check waits for all of them.
const MAX_FACTS_RETRIES: u32 = 10;
/// First delay between fact provider attempts; doubles per retry, with jitter.
const FACTS_BACKOFF: Duration = Duration::from_millis(100);

/// Where the services keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Embedded SQLite files in the data dir: zero setup.
    Sqlite,
    /// A MongoDB replica set: production and scale-out.
    Mongodb,
}

/// A setting that failed to load or validate.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults ← `file` ← environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!("config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        // BESTOW_CONFIG names the file; BESTOW_TEST_CRASH_AT arms the fault switch of debug
        // builds, read by the saga itself.
        let env = Env::prefixed("BESTOW_").ignore(&["config", "test_crash_at"]);
        figment = figment.merge(env.filter(|key| !key.as_str().to_ascii_lowercase().ends_with("_file")));
        figment = figment.merge(Serialized::defaults(setting_files(std::env::vars_os())?));
        let config = Self::extract(&figment)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads every group from the same flat settings; the one line of a failure names each
    /// bad or unknown setting, and figment's own text says where it came from.
    fn extract(figment: &Figment) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let config = Self {
            server: group(figment, &mut problems),
            telemetry: group(figment, &mut problems),
            storage: group(figment, &mut problems),
            auth: group(figment, &mut problems),
            events: group(figment, &mut problems),
            split: group(figment, &mut problems),
            gateway: group(figment, &mut problems),
        };
        problems.extend(unknown_settings(figment));
        if problems.is_empty() { Ok(config) } else { Err(ConfigError(problems.join("; "))) }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("setting `{key}` {why}")));
        let (server, storage, auth, events) = (&self.server, &self.storage, &self.auth, &self.events);
        let (split, gateway) = (&self.split, &self.gateway);
        if !(4..=31).contains(&auth.bcrypt_cost) {
            return fail("bcrypt_cost", "must be between 4 and 31");
        }
        if server.body_limit_bytes < 1024 {
            return fail("body_limit_bytes", "must be at least 1024");
        }
        for (key, value) in [
            ("header_timeout_ms", server.header_timeout_ms),
            ("body_timeout_ms", server.body_timeout_ms),
            ("drain_timeout_ms", server.drain_timeout_ms),
        ] {
            if value == 0 {
                return fail(key, "must be positive");
            }
        }
        if server.max_connections == 0 {
            return fail("max_connections", "must be positive");
        }
        if let Err(reason) = server.trusted_proxies.parse::<TrustedProxies>() {
            return fail("trusted_proxies", &reason);
        }
        if auth.access_token_ttl_secs == 0 || auth.refresh_token_ttl_secs == 0 {
            return fail("access_token_ttl_secs/refresh_token_ttl_secs", "must be positive");
        }
        if auth.login_window_secs == 0
            || auth.login_max_failures_per_username == 0
            || auth.login_max_failures_per_address == 0
        {
            return fail("login_*", "must be positive");
        }
        if events.expiry_sweep_secs == 0 {
            return fail("expiry_sweep_secs", "must be positive");
        }
        if events.claim_lease_ms == 0 || events.recovery_sweep_ms == 0 || events.saga_max_attempts == 0 {
            return fail("claim_lease_ms/recovery_sweep_ms/saga_max_attempts", "must be positive");
        }
        for (url_key, url, secret_key, secret) in [
            ("webhook_url", &events.webhook_url, "webhook_secret", &events.webhook_secret),
            ("facts_url", &events.facts_url, "facts_secret", &events.facts_secret),
        ] {
            if let Some(url) = url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return fail(url_key, "must be an http:// or https:// URL");
                }
                if secret.as_ref().is_none_or(|secret| secret.expose().is_empty()) {
                    return fail(secret_key, &format!("is required when {url_key} is set"));
                }
            }
        }
        if events.facts_timeout_ms == 0 {
            return fail("facts_timeout_ms", "must be positive");
        }
        if events.facts_retries > MAX_FACTS_RETRIES {
            return fail("facts_retries", &format!("must be at most {MAX_FACTS_RETRIES}"));
        }
        if let Err(unknown) = self.webhook_types() {
            return fail("webhook_reward_types", &format!("names an unknown reward type `{unknown}`"));
        }
        if let Some(password) = &auth.admin_password
            && !(8..=72).contains(&password.expose().len())
        {
            return fail("admin_password", "must be 8 to 72 bytes");
        }
        for (key, urls) in [("auth_url", &split.auth_url), ("events_url", &split.events_url)] {
            if let Some(urls) = urls
                && bestow_gateway::instances::Instances::parse(urls).is_err()
            {
                return fail(key, "must be an http://host:port URL, or several separated by commas");
            }
        }
        if split.internal_secret.as_ref().is_some_and(|secret| secret.expose().len() < 16) {
            return fail("internal_secret", "must be at least 16 bytes");
        }
        if storage.backend == Storage::Mongodb {
            match storage.mongodb_uri.as_ref().map(Secret::expose) {
                Some(uri) if uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://") => {}
                Some(_) => return fail("mongodb_uri", "must be a mongodb:// or mongodb+srv:// URI"),
                None => return fail("mongodb_uri", "is required when storage is mongodb"),
            }
        }
        for (key, name) in [("auth_database", &storage.auth_database), ("event_database", &storage.event_database)] {
            let valid = !name.is_empty()
                && name.len() < 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return fail(key, "must be 1-63 letters, digits, '_' or '-'");
            }
        }
        if gateway.upstream_connect_timeout_ms == 0 || gateway.upstream_timeout_ms == 0 {
            return fail("upstream_connect_timeout_ms/upstream_timeout_ms", "must be positive");
        }
        if let Err(reason) = bestow_gateway::cors(&self.cors_origins()) {
            return fail("cors_allowed_origins", &reason);
        }
        Ok(())
    }

    /// A split-mode setting the current command cannot run without.
    pub fn required<'a>(&self, key: &str, value: &'a Option<String>) -> Result<&'a str, ConfigError> {
        value.as_deref().ok_or_else(|| ConfigError(format!("setting `{key}` is required in split mode")))
    }

    /// The first instance of `auth_url`: where events and the gateway fetch keys and account
    /// standings (auth replicas share the key file and the database, so any one will do).
    pub fn first_auth_url(&self) -> Result<&str, ConfigError> {
        let urls = self.required("auth_url", &self.split.auth_url)?;
        Ok(urls.split(',').map(str::trim).find(|url| !url.is_empty()).unwrap_or(urls))
    }

    /// `internal_secret` as a credential; required in split mode.
    pub fn service_credential(&self) -> Result<ServiceCredential, ConfigError> {
        let secret = self.split.internal_secret.as_ref().map(Secret::expose);
        let secret =
            secret.ok_or_else(|| ConfigError("setting `internal_secret` is required in split mode".to_owned()))?;
        Ok(ServiceCredential::new(secret))
    }

    /// The bootstrap admin's password, when set.
    pub fn admin_password(&self) -> Option<&str> {
        self.auth.admin_password.as_ref().map(Secret::expose)
    }

    /// `mongodb_uri`, which `storage = mongodb` requires (checked at load).
    pub fn mongodb_uri(&self) -> Result<&str, ConfigError> {
        let uri = self.storage.mongodb_uri.as_ref().map(Secret::expose);
        uri.ok_or_else(|| ConfigError("setting `mongodb_uri` is required when storage is mongodb".to_owned()))
    }

    /// What a client may hold of this process's server.
    pub fn connection_limits(&self) -> ConnectionLimits {
        let server = &self.server;
        ConnectionLimits {
            header_timeout: Duration::from_millis(server.header_timeout_ms),
            body_timeout: Duration::from_millis(server.body_timeout_ms),
            max_connections: server.max_connections,
            drain_timeout: Duration::from_millis(server.drain_timeout_ms),
        }
    }

    /// The load balancers whose `X-Forwarded-For` is believed (validated at load).
    pub fn trusted_proxies(&self) -> TrustedProxies {
        self.server.trusted_proxies.parse().unwrap_or_default()
    }

    /// The origins CORS allows (`cors_allowed_origins`, split at commas).
    pub fn cors_origins(&self) -> Vec<String> {
        let origins = self.gateway.cors_allowed_origins.split(',').map(str::trim);
        origins.filter(|o| !o.is_empty()).map(str::to_owned).collect()
    }

    /// The gateway's per-address and per-user limits.
    pub fn rate_limits(&self) -> (Rate, Rate) {
        let gateway = &self.gateway;
        (
            Rate { per_second: gateway.rate_limit_address_per_sec, burst: gateway.rate_limit_address_burst },
            Rate { per_second: gateway.rate_limit_user_per_sec, burst: gateway.rate_limit_user_burst },
        )
    }

    /// The gateway's calls to the services.
    pub fn proxy_settings(&self) -> ProxySettings {
        ProxySettings {
            connect_timeout: Duration::from_millis(self.gateway.upstream_connect_timeout_ms),
            timeout: Duration::from_millis(self.gateway.upstream_timeout_ms),
            body_limit: self.server.body_limit_bytes,
        }
    }

    /// The reward types routed to the webhook.
    pub fn webhook_types(&self) -> Result<Vec<RewardType>, String> {
        self.events
            .webhook_reward_types
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| name.parse::<RewardType>().map_err(|_| name.to_owned()))
            .collect()
    }

    /// The claim saga's lease and retry policy.
    pub fn saga_settings(&self) -> SagaSettings {
        let events = &self.events;
        let retry = RetryPolicy {
            max_attempts: events.saga_max_attempts,
            base_delay: TimeDelta::milliseconds(i64::try_from(events.saga_retry_base_ms).unwrap_or(200)),
            max_delay: TimeDelta::seconds(30),
        };
        SagaSettings {
            lease: Duration::from_millis(events.claim_lease_ms),
            condition_retry: retry,
            grant_retry: retry,
            compensation_retry: retry,
        }
    }

    /// The external fact provider, when `facts_url` is set.
    pub fn external_facts(&self) -> Option<ExternalFactsSettings> {
        let events = &self.events;
        Some(ExternalFactsSettings {
            url: events.facts_url.clone()?,
            secret: events.facts_secret.as_ref()?.expose().to_owned(),
            timeout: Duration::from_millis(events.facts_timeout_ms),
            retries: events.facts_retries,
            backoff: FACTS_BACKOFF,
        })
    }

    /// The auth service's hashing cost, token lifetimes and login throttle.
    pub fn auth_settings(&self) -> AuthSettings {
        let auth = &self.auth;
        AuthSettings {
            bcrypt_cost: auth.bcrypt_cost,
            access_token_ttl: Duration::from_secs(auth.access_token_ttl_secs),
            refresh_token_ttl: Duration::from_secs(auth.refresh_token_ttl_secs),
            throttle: ThrottleSettings {
                per_username: auth.login_max_failures_per_username,
                per_address: auth.login_max_failures_per_address,
                window: Duration::from_secs(auth.login_window_secs),
            },
        }
    }
}

/// One group of settings, read from all of them; a failure is added to `problems`, one line
/// per bad setting.
fn group<T: DeserializeOwned + Default>(figment: &Figment, problems: &mut Vec<String>) -> T {
    figment.extract().unwrap_or_else(|error: figment::Error| {
        problems.extend(error.into_iter().map(|e| e.to_string()));
        T::default()
    })
}

/// The settings `figment` holds that no group reads: a misspelt key would otherwise be
/// ignored silently.
fn unknown_settings(figment: &Figment) -> Vec<String> {
    let known = match figment::value::Value::serialize(Config::default()) {
        Ok(figment::value::Value::Dict(_, known)) => known,
        _ => return vec!["the list of known settings could not be built".to_owned()],
    };
    let given: figment::value::Dict = figment.extract().unwrap_or_default();
    given
        .keys()
        .filter(|key| !known.contains_key(*key))
        .map(|key| match figment.find_metadata(key) {
            Some(source) => format!("unknown setting `{key}` in {}", source.name),
            None => format!("unknown setting `{key}`"),
        })
        .collect()
}

/// `BESTOW_<NAME>_FILE=path` sets the string setting `<name>` to the file's content without its
/// trailing line break: secrets mounted as files (compose or Kubernetes secrets) stay out of
/// the environment. It overrides `BESTOW_<NAME>`.
fn setting_files(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<figment::value::Dict, ConfigError> {
    let mut settings = figment::value::Dict::new();
    for (key, path) in vars {
        let Some(name) = key.to_str().and_then(|key| key.strip_prefix("BESTOW_")?.strip_suffix("_FILE")) else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        let value = std::fs::read_to_string(&path).map_err(|error| {
            ConfigError(format!("setting `{name}`: cannot read {}: {error}", Path::new(&path).display()))
        })?;
        settings.insert(name, value.trim_end_matches(['\n', '\r']).to_owned().into());
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::extract(&Figment::from(Toml::string(text)))
    }

    fn invalid(config: Config) -> String {
        config.validate().err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.storage.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn every_setting_keeps_its_flat_name() {
        let config = from_toml(
            "listen = \"0.0.0.0:9000\"\nstorage = \"mongodb\"\nmongodb_uri = \"mongodb://db/\"\nbcrypt_cost = 10\n\
             claim_wait_ms = 7\nwebhook_timeout_ms = 8\nfacts_retries = 2\nauth_url = \"http://auth:1\"\n\
             rate_limit_user_burst = 9\nlog_level = \"debug\"",
        )
        .unwrap();
        assert_eq!(config.server.listen.port(), 9000);
        assert_eq!(config.storage.backend, Storage::Mongodb);
        assert_eq!(config.mongodb_uri().ok(), Some("mongodb://db/"));
        assert_eq!(config.auth.bcrypt_cost, 10);
        assert_eq!(config.events.claim_wait_ms, 7);
        assert_eq!(config.events.webhook_timeout_ms, 8);
        assert_eq!(config.events.facts_retries, 2);
        assert_eq!(config.split.auth_url.as_deref(), Some("http://auth:1"));
        assert_eq!(config.gateway.rate_limit_user_burst, 9);
        assert_eq!(config.telemetry.log_level, "debug");
        assert_eq!(config.events.saga_max_attempts, 5, "unset settings keep their defaults");
        let known = figment::value::Value::serialize(Config::default()).unwrap().into_dict().unwrap();
        assert_eq!(known.len(), 46, "every setting, once: {:?}", known.keys().collect::<Vec<_>>());
    }

    #[test]
    fn an_unknown_or_bad_setting_is_named() {
        let error = from_toml("no_such_setting = 1").unwrap_err().to_string();
        assert!(error.contains("no_such_setting"), "{error}");
        let error = from_toml("listen = \"not-an-address\"\nbcrypt_cost = \"high\"").unwrap_err().to_string();
        assert!(error.contains("listen") && error.contains("bcrypt_cost") && !error.contains('\n'), "{error}");
    }

    #[test]
    fn secrets_never_show_in_debug_or_serialized_form() {
        let secrets = ["admin-password-1", "mongodb://bestow:mongo-pw-2@db/", "webhook-key-3", "facts-key-4"];
        let mut config = Config::default();
        config.auth.admin_password = Some(secrets[0].into());
        config.storage.mongodb_uri = Some(secrets[1].into());
        config.events.webhook_secret = Some(secrets[2].into());
        config.events.facts_secret = Some(secrets[3].into());
        config.split.internal_secret = Some("internal-secret-5-of-16-bytes".into());
        let shown = [
            format!("{config:?}"),
            format!("{config:#?}"),
            serde_json::to_string(&config).unwrap(),
            format!("{:?}", figment::value::Value::serialize(&config).unwrap()),
        ];
        for form in &shown {
            for secret in secrets.iter().copied().chain(["mongo-pw", "internal-secret-5"]) {
                assert!(!form.contains(secret), "{secret} shown in {form}");
            }
            assert!(form.contains("[redacted]"), "{form}");
        }
        assert_eq!(config.admin_password(), Some(secrets[0]), "the value is read by name");
    }

    #[test]
    fn a_file_variable_reads_the_setting_from_the_file() {
        use std::ffi::OsString;
        let path = std::env::temp_dir().join(format!("bestow-config-test-{}", std::process::id()));
        std::fs::write(&path, "mongodb://bestow:pw@mongo:27017/\n").unwrap();
        let vars = [("BESTOW_MONGODB_URI_FILE", path.as_os_str()), ("OTHER_FILE", path.as_os_str())];
        let settings = setting_files(vars.into_iter().map(|(key, value)| (OsString::from(key), value.to_owned())));
        std::fs::remove_file(&path).unwrap();
        let settings = settings.unwrap();
        assert_eq!(settings.len(), 1);
        assert_eq!(settings["mongodb_uri"].as_str(), Some("mongodb://bestow:pw@mongo:27017/"));
        let config = Config::extract(&Figment::from(Serialized::defaults(settings))).unwrap();
        assert_eq!(config.mongodb_uri().ok(), Some("mongodb://bestow:pw@mongo:27017/"));
        let missing = [(OsString::from("BESTOW_ADMIN_PASSWORD_FILE"), path.clone().into_os_string())];
        let error = setting_files(missing.into_iter()).unwrap_err().to_string();
        assert!(error.contains("admin_password") && error.contains("cannot read"), "{error}");
    }

    #[test]
    fn out_of_range_values_name_the_setting() {
        let mut config = Config::default();
        config.auth.bcrypt_cost = 3;
        assert!(invalid(config).contains("bcrypt_cost"));
    }

    #[test]
    fn service_urls_are_plain_http_host_and_port() {
        let named = |url: &str| {
            let mut config = Config::default();
            config.split.auth_url = Some(url.to_owned());
            invalid(config)
        };
        assert_eq!(named("http://127.0.0.1:8081"), "");
        assert_eq!(named("http://auth.internal:8081/"), "");
        assert_eq!(named("http://a1.internal:8081,http://a2.internal:8081"), "");
        assert!(named("http://a1.internal:8081,a2.internal:8081").contains("auth_url"));
        for bad in ["https://auth.internal", "http://auth.internal/prefix", "auth.internal:8081", "http://"] {
            assert!(named(bad).contains("auth_url"), "{bad} was accepted");
        }
    }

    #[test]
    fn an_external_fact_provider_needs_an_http_url_and_a_secret() {
        let with_facts = |url: &str, secret: Option<&str>, retries: u32| {
            let mut config = Config::default();
            config.events.facts_url = Some(url.to_owned());
            config.events.facts_secret = secret.map(Secret::from);
            config.events.facts_retries = retries;
            config
        };
        let url = "https://facts.example/v1";
        assert!(invalid(with_facts(url, None, 3)).contains("facts_secret"));
        assert!(invalid(with_facts("ftp://facts.example", Some("s"), 3)).contains("facts_url"));
        assert!(invalid(with_facts(url, Some("s"), 11)).contains("facts_retries"));
        assert!(Config::default().external_facts().is_none());
        let mut config = with_facts(url, Some("s"), 3);
        config.events.facts_timeout_ms = 500;
        assert!(config.validate().is_ok());
        let settings = config.external_facts();
        assert_eq!(settings.map(|s| (s.timeout, s.retries)), Some((Duration::from_millis(500), 3)));
    }
}
