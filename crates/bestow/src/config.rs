//! Configuration: compiled-in defaults, then an optional TOML file, then `BESTOW_*`
//! environment variables, each overriding the one before. Validated once at start-up; a bad
//! value stops the process with one line naming the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bestow_auth::AuthSettings;
use bestow_auth::throttle::ThrottleSettings;
use bestow_core::client::TrustedProxies;
use bestow_core::secret::ServiceCredential;
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
use serde::{Deserialize, Serialize};

/// Every setting of a Bestow process. Field names are the TOML keys; `BESTOW_` + the name in
/// capitals is the environment variable (`data_dir` → `BESTOW_DATA_DIR`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// `sqlite` (embedded, files in `data_dir`) or `mongodb` (`mongodb_uri`).
    pub storage: Storage,
    /// MongoDB connection string (a replica set: saga steps use transactions).
    pub mongodb_uri: Option<String>,
    /// MongoDB database of the auth service.
    pub auth_database: String,
    /// MongoDB database of the events service.
    pub event_database: String,
    /// Directory holding the databases and the signing keys.
    pub data_dir: PathBuf,
    /// Password of the bootstrap `admin` on an empty store; generated and printed when unset.
    pub admin_password: Option<String>,
    /// `text` (human) or `json`.
    pub log_format: LogFormat,
    /// Log filter in `RUST_LOG` syntax.
    pub log_level: String,
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
    /// Address of a separate listener for `/metrics`; when set, the main listener does not
    /// serve `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Comma-separated CIDR blocks (or addresses) of load balancers whose `X-Forwarded-For`
    /// is believed; empty: the TCP peer is the client.
    pub trusted_proxies: String,
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
    /// Base URL of the studio's reward webhook (`POST {url}/grant`, `POST {url}/revoke`).
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key of webhook signatures.
    pub webhook_secret: Option<String>,
    /// Comma-separated reward types granted through the webhook; the rest use the built-in
    /// ledger. Empty means every type when `webhook_url` is set.
    pub webhook_reward_types: String,
    /// Timeout of one webhook call.
    pub webhook_timeout_ms: u64,
    /// URL of the operator's external fact provider (`POST`, signed); unset: conditions are
    /// evaluated on the activities pushed to `POST /api/v1/activities`.
    pub facts_url: Option<String>,
    /// HMAC-SHA256 key of fact provider requests; required with `facts_url`.
    pub facts_secret: Option<String>,
    /// Timeout of one fact provider attempt.
    pub facts_timeout_ms: u64,
    /// Retries of a fact provider request after a timeout, a connection failure or a 5xx.
    pub facts_retries: u32,
    /// Split mode: base URL of the auth service (events and gateway).
    pub auth_url: Option<String>,
    /// Split mode: base URL of the events service (gateway).
    pub events_url: Option<String>,
    /// Split mode: the secret the services share for service-to-service calls (16+ bytes).
    pub internal_secret: Option<String>,
    /// Gateway: time to connect to a service.
    pub upstream_connect_timeout_ms: u64,
    /// Gateway: time for a whole proxied call; keep it above `claim_wait_ms`.
    pub upstream_timeout_ms: u64,
    /// Gateway: requests per second per client address (0 turns the limit off).
    pub rate_limit_address_per_sec: u32,
    /// Gateway: burst above that rate per client address.
    pub rate_limit_address_burst: u32,
    /// Gateway: requests per second per signed-in user (0 turns the limit off).
    pub rate_limit_user_per_sec: u32,
    /// Gateway: burst above that rate per user.
    pub rate_limit_user_burst: u32,
    /// Gateway: comma-separated origins allowed by CORS, or `*`; empty: same-origin only.
    pub cors_allowed_origins: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            storage: Storage::Sqlite,
            mongodb_uri: None,
            auth_database: "auth_db".to_owned(),
            event_database: "event_db".to_owned(),
            data_dir: PathBuf::from("./data"),
            admin_password: None,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            body_limit_bytes: 1024 * 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_connections: 4_096,
            drain_timeout_ms: 10_000,
            metrics_listen: None,
            trusted_proxies: String::new(),
            bcrypt_cost: 12,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 60 * 60,
            login_max_failures_per_username: 5,
            login_max_failures_per_address: 50,
            login_window_secs: 5 * 60,
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
            auth_url: None,
            events_url: None,
            internal_secret: None,
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
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!("config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        // BESTOW_CONFIG names the file; BESTOW_TEST_CRASH_AT arms the fault switch, read by the saga itself.
        let env = Env::prefixed("BESTOW_").ignore(&["config", "test_crash_at"]);
        figment = figment.merge(env.filter(|key| !key.as_str().to_ascii_lowercase().ends_with("_file")));
        figment = figment.merge(Serialized::defaults(setting_files(std::env::vars_os())?));
        let config: Config = figment.extract().map_err(|error| {
            // One line per setting, naming it; figment's own text says where it came from.
            let lines: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
            ConfigError(lines.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("setting `{key}` {why}")));
        if !(4..=31).contains(&self.bcrypt_cost) {
            return fail("bcrypt_cost", "must be between 4 and 31");
        }
        if self.body_limit_bytes < 1024 {
            return fail("body_limit_bytes", "must be at least 1024");
        }
        for (key, value) in [
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("drain_timeout_ms", self.drain_timeout_ms),
        ] {
            if value == 0 {
                return fail(key, "must be positive");
            }
        }
        if self.max_connections == 0 {
            return fail("max_connections", "must be positive");
        }
        if let Err(reason) = self.trusted_proxies.parse::<TrustedProxies>() {
            return fail("trusted_proxies", &reason);
        }
        if self.access_token_ttl_secs == 0 || self.refresh_token_ttl_secs == 0 {
            return fail("access_token_ttl_secs/refresh_token_ttl_secs", "must be positive");
        }
        if self.login_window_secs == 0
            || self.login_max_failures_per_username == 0
            || self.login_max_failures_per_address == 0
        {
            return fail("login_*", "must be positive");
        }
        if self.expiry_sweep_secs == 0 {
            return fail("expiry_sweep_secs", "must be positive");
        }
        if self.claim_lease_ms == 0 || self.recovery_sweep_ms == 0 || self.saga_max_attempts == 0 {
            return fail("claim_lease_ms/recovery_sweep_ms/saga_max_attempts", "must be positive");
        }
        if let Some(url) = &self.webhook_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return fail("webhook_url", "must be an http:// or https:// URL");
            }
            if self.webhook_secret.as_deref().is_none_or(str::is_empty) {
                return fail("webhook_secret", "is required when webhook_url is set");
            }
        }
        if let Some(url) = &self.facts_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return fail("facts_url", "must be an http:// or https:// URL");
            }
            if self.facts_secret.as_deref().is_none_or(str::is_empty) {
                return fail("facts_secret", "is required when facts_url is set");
            }
        }
        if self.facts_timeout_ms == 0 {
            return fail("facts_timeout_ms", "must be positive");
        }
        if self.facts_retries > MAX_FACTS_RETRIES {
            return fail("facts_retries", &format!("must be at most {MAX_FACTS_RETRIES}"));
        }
        if let Err(unknown) = self.webhook_types() {
            return fail("webhook_reward_types", &format!("names an unknown reward type `{unknown}`"));
        }
        if let Some(password) = &self.admin_password
            && !(8..=72).contains(&password.len())
        {
            return fail("admin_password", "must be 8 to 72 bytes");
        }
        for (key, urls) in [("auth_url", &self.auth_url), ("events_url", &self.events_url)] {
            if let Some(urls) = urls
                && bestow_gateway::instances::Instances::parse(urls).is_err()
            {
                return fail(key, "must be an http://host:port URL, or several separated by commas");
            }
        }
        if self.internal_secret.as_ref().is_some_and(|secret| secret.len() < 16) {
            return fail("internal_secret", "must be at least 16 bytes");
        }
        if self.storage == Storage::Mongodb {
            match &self.mongodb_uri {
                Some(uri) if uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://") => {}
                Some(_) => return fail("mongodb_uri", "must be a mongodb:// or mongodb+srv:// URI"),
                None => return fail("mongodb_uri", "is required when storage is mongodb"),
            }
        }
        for (key, name) in [("auth_database", &self.auth_database), ("event_database", &self.event_database)] {
            let valid = !name.is_empty()
                && name.len() < 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return fail(key, "must be 1-63 letters, digits, '_' or '-'");
            }
        }
        if self.upstream_connect_timeout_ms == 0 || self.upstream_timeout_ms == 0 {
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
        let urls = self.required("auth_url", &self.auth_url)?;
        Ok(urls.split(',').map(str::trim).find(|url| !url.is_empty()).unwrap_or(urls))
    }

    /// `internal_secret` as a credential; required in split mode.
    pub fn service_credential(&self) -> Result<ServiceCredential, ConfigError> {
        Ok(ServiceCredential::new(self.required("internal_secret", &self.internal_secret)?))
    }

    /// What a client may hold of this process's server.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            max_connections: self.max_connections,
            drain_timeout: Duration::from_millis(self.drain_timeout_ms),
        }
    }

    /// The load balancers whose `X-Forwarded-For` is believed (validated at load).
    pub fn trusted_proxies(&self) -> TrustedProxies {
        self.trusted_proxies.parse().unwrap_or_default()
    }

    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_allowed_origins.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect()
    }

    /// The gateway's per-address and per-user limits.
    pub fn rate_limits(&self) -> (Rate, Rate) {
        (
            Rate { per_second: self.rate_limit_address_per_sec, burst: self.rate_limit_address_burst },
            Rate { per_second: self.rate_limit_user_per_sec, burst: self.rate_limit_user_burst },
        )
    }

    pub fn proxy_settings(&self) -> ProxySettings {
        ProxySettings {
            connect_timeout: Duration::from_millis(self.upstream_connect_timeout_ms),
            timeout: Duration::from_millis(self.upstream_timeout_ms),
            body_limit: self.body_limit_bytes,
        }
    }

    /// The reward types routed to the webhook.
    pub fn webhook_types(&self) -> Result<Vec<RewardType>, String> {
        self.webhook_reward_types
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| name.parse::<RewardType>().map_err(|_| name.to_owned()))
            .collect()
    }

    pub fn saga_settings(&self) -> SagaSettings {
        let retry = RetryPolicy {
            max_attempts: self.saga_max_attempts,
            base_delay: TimeDelta::milliseconds(i64::try_from(self.saga_retry_base_ms).unwrap_or(200)),
            max_delay: TimeDelta::seconds(30),
        };
        SagaSettings {
            lease: Duration::from_millis(self.claim_lease_ms),
            condition_retry: retry,
            grant_retry: retry,
            compensation_retry: retry,
        }
    }

    /// The external fact provider, when `facts_url` is set.
    pub fn external_facts(&self) -> Option<ExternalFactsSettings> {
        Some(ExternalFactsSettings {
            url: self.facts_url.clone()?,
            secret: self.facts_secret.clone()?,
            timeout: Duration::from_millis(self.facts_timeout_ms),
            retries: self.facts_retries,
            backoff: FACTS_BACKOFF,
        })
    }

    pub fn auth_settings(&self) -> AuthSettings {
        AuthSettings {
            bcrypt_cost: self.bcrypt_cost,
            access_token_ttl: Duration::from_secs(self.access_token_ttl_secs),
            refresh_token_ttl: Duration::from_secs(self.refresh_token_ttl_secs),
            throttle: ThrottleSettings {
                per_username: self.login_max_failures_per_username,
                per_address: self.login_max_failures_per_address,
                window: Duration::from_secs(self.login_window_secs),
            },
        }
    }
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

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
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
        let missing = [(OsString::from("BESTOW_ADMIN_PASSWORD_FILE"), path.clone().into_os_string())];
        let error = setting_files(missing.into_iter()).unwrap_err().to_string();
        assert!(error.contains("admin_password") && error.contains("cannot read"), "{error}");
    }

    #[test]
    fn out_of_range_values_name_the_setting() {
        let config = Config { bcrypt_cost: 3, ..Config::default() };
        assert!(config.validate().err().map(|e| e.to_string()).unwrap_or_default().contains("bcrypt_cost"));
    }

    #[test]
    fn service_urls_are_plain_http_host_and_port() {
        let named = |url: &str| {
            let config = Config { auth_url: Some(url.to_owned()), ..Config::default() };
            config.validate().err().map(|e| e.to_string()).unwrap_or_default()
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
        let named = |config: Config| config.validate().err().map(|e| e.to_string()).unwrap_or_default();
        let url = Some("https://facts.example/v1".to_owned());
        assert!(named(Config { facts_url: url.clone(), ..Config::default() }).contains("facts_secret"));
        let ftp = Some("ftp://facts.example".to_owned());
        assert!(
            named(Config { facts_url: ftp, facts_secret: Some("s".into()), ..Config::default() }).contains("facts_url")
        );
        assert!(named(Config { facts_retries: 11, ..Config::default() }).contains("facts_retries"));
        assert!(Config::default().external_facts().is_none());
        let config =
            Config { facts_url: url, facts_secret: Some("s".into()), facts_timeout_ms: 500, ..Config::default() };
        assert!(config.validate().is_ok());
        let settings = config.external_facts();
        assert_eq!(settings.map(|s| (s.timeout, s.retries)), Some((Duration::from_millis(500), 3)));
    }
}
