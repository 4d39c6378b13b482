//! Server-side time of the operator console's pages: signed in as the admin through the
//! console's own form, then each page fetched in turn, as a browser would (HTML only).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::percentiles;

/// A console session: its cookies, sent as one header.
pub struct ConsoleSession {
    client: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl ConsoleSession {
    /// Signs in with the console's form (CSRF cookie first, then the posted credentials).
    pub async fn sign_in(base: &str, username: &str, password: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let mut session = Self { client, base: base.to_owned(), cookies: Vec::new() };
        let form = session.client.get(format!("{base}/console/sign-in")).send().await?;
        session.keep_cookies(&form);
        let csrf = session.cookie("bestow_csrf").context("the sign-in page set no CSRF cookie")?;
        let body = format!("csrf={csrf}&username={username}&password={password}");
        let signed_in = session
            .client
            .post(format!("{base}/console/sign-in"))
            .header(COOKIE, session.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        if signed_in.headers().get(LOCATION).is_none_or(|to| to != "/console/") {
            bail!("console sign-in failed: HTTP {}", signed_in.status());
        }
        session.keep_cookies(&signed_in);
        Ok(session)
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for line in response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            if let Some((name, value)) = line.split(';').next().and_then(|pair| pair.split_once('=')) {
                self.cookies.retain(|(kept, _)| kept != name);
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.iter().find(|(kept, _)| kept == name).map(|(_, value)| value.clone())
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    /// Fetches `path` `requests` times after 10 warm-up requests; prints p50/p99/max.
    pub async fn time_page(&self, path: &str, requests: usize) -> anyhow::Result<()> {
        let mut latencies: Vec<Duration> = Vec::with_capacity(requests);
        let mut bytes = 0;
        for round in 0..requests + 10 {
            let started = Instant::now();
            let response =
                self.client.get(format!("{}{path}", self.base)).header(COOKIE, self.cookie_header()).send().await?;
            if response.status() != reqwest::StatusCode::OK {
                bail!("GET {path}: HTTP {}", response.status());
            }
            bytes = response.bytes().await?.len();
            if round >= 10 {
                latencies.push(started.elapsed());
            }
        }
        let latency = percentiles(&mut latencies);
        println!(
            "  {path:<44} p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  ({} KB; target < 50 ms)",
            latency.p50,
            latency.p99,
            latency.max,
            bytes / 1024
        );
        Ok(())
    }
}
