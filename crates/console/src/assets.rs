//! The console's stylesheet and script, compiled into the binary and served under a name that
//! carries their content hash, so browsers may cache them for good.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    stem: &'static str,
    extension: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// The first bytes of the body's SHA-256, in hex; computed on first use.
    hash: OnceLock<String>,
}

impl Asset {
    const fn new(stem: &'static str, extension: &'static str, content_type: &'static str, body: &'static str) -> Self {
        Self { stem, extension, content_type, body, hash: OnceLock::new() }
    }

    /// Where pages link it: `/console/assets/<stem>-<hash>.<extension>`.
    pub fn path(&self) -> String {
        format!("/console/assets/{}", self.file_name())
    }

    fn file_name(&self) -> String {
        let hash = self.hash.get_or_init(|| short_hash(self.body));
        format!("{}-{hash}.{}", self.stem, self.extension)
    }

    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

fn short_hash(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    digest[..6].iter().map(|byte| format!("{byte:02x}")).collect()
}

pub static STYLE: Asset =
    Asset::new("console", "css", "text/css; charset=utf-8", include_str!("../assets/console.css"));
pub static SCRIPT: Asset =
    Asset::new("console", "js", "text/javascript; charset=utf-8", include_str!("../assets/console.js"));

/// Every asset, for serving and for the size budget.
pub static ALL: [&Asset; 2] = [&STYLE, &SCRIPT];

/// `GET /console/assets/{file}`: only the current versions exist.
pub async fn serve(Path(file): Path<String>) -> Response {
    match ALL.iter().find(|asset| asset.file_name() == file) {
        Some(asset) => {
            ([(CONTENT_TYPE, asset.content_type), (CACHE_CONTROL, "public, max-age=31536000, immutable")], asset.body)
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_change_with_the_content() {
        assert_ne!(short_hash("a"), short_hash("b"));
        assert!(STYLE.path().starts_with("/console/assets/console-"));
        assert!(STYLE.path().ends_with(".css"));
    }

    /// The budget: script and stylesheet together under 200 KB uncompressed.
    #[test]
    fn script_and_style_stay_under_200_kb() {
        let total: usize = ALL.iter().map(|asset| asset.len()).sum();
        assert!(total < 200 * 1024, "{total} bytes");
    }
}
