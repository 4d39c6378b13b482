//! The console's stylesheet and script, compiled into the binary and served under a name that
//! carries their content hash, so browsers may cache them for good.

use std::sync::LazyLock;

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
    hash: &'static LazyLock<String>,
}

impl Asset {
    /// Where pages link it: `/console/assets/<stem>-<hash>.<extension>`.
    pub fn path(&self) -> String {
        format!("/console/assets/{}", self.file_name())
    }

    fn file_name(&self) -> String {
        format!("{}-{}.{}", self.stem, self.hash.as_str(), self.extension)
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

const STYLE_BODY: &str = include_str!("../assets/console.css");
static STYLE_HASH: LazyLock<String> = LazyLock::new(|| short_hash(STYLE_BODY));
pub static STYLE: Asset = Asset {
    stem: "console",
    extension: "css",
    content_type: "text/css; charset=utf-8",
    body: STYLE_BODY,
    hash: &STYLE_HASH,
};

const SCRIPT_BODY: &str = include_str!("../assets/console.js");
static SCRIPT_HASH: LazyLock<String> = LazyLock::new(|| short_hash(SCRIPT_BODY));
pub static SCRIPT: Asset = Asset {
    stem: "console",
    extension: "js",
    content_type: "text/javascript; charset=utf-8",
    body: SCRIPT_BODY,
    hash: &SCRIPT_HASH,
};

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
