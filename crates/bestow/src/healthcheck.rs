//! `bestow healthcheck`: asks the server on `listen` whether it is ready (`GET /readyz`), for
//! container health checks in an image that has no curl. Exits 0 when it answers 200.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::{Context, ensure};

use crate::config::Config;

/// Time allowed for the whole check; container runtimes give it a few seconds.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Checks the readiness of the server this configuration starts.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let mut addr = config.server.listen;
    // A server bound to every address is asked on loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let url = format!("http://{addr}/readyz");
    let client = bestow_core::outbound::client_builder().timeout(TIMEOUT).build().context("cannot build a client")?;
    let response = client.get(&url).send().await.with_context(|| format!("{url} did not answer"))?;
    ensure!(response.status().is_success(), "{url} answered {}", response.status());
    Ok(())
}
