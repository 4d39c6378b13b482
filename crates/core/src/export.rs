//! Streamed CSV downloads of a list (`GET …/export`): every row matching the list's filters,
//! fetched from the store one page at a time as the client reads, so a process holds one page
//! however many rows there are.
//!
//! The first page is read before the answer starts, so a store that is down is the usual
//! problem-details error. A failure after that cannot change the status any more: it is
//! logged and the body is cut short (no final chunk), which a client sees as a failed
//! download rather than a complete-looking file with rows missing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use serde::Serialize;

use crate::ApiError;
use crate::csv;
use crate::page::{MAX_LIMIT, PageRequest};

/// Media type of every export.
pub const TEXT_CSV: &str = "text/csv; charset=utf-8";

/// A download: the file name a browser saves it as, and its columns (the API's JSON field
/// names, see [`csv::record`]).
#[derive(Debug, Clone, Copy)]
pub struct CsvExport {
    pub filename: &'static str,
    pub columns: &'static [&'static str],
}

impl CsvExport {
    /// Answers with a header row and then every item `fetch` yields for pages 1, 2, … until a
    /// page comes back short. `fetch` gets a clone of `context` for each page (the service and
    /// the filter), since each page's future must own what it reads.
    pub async fn stream<C, T, F, Fut>(self, context: C, fetch: F) -> Result<Response, ApiError>
    where
        C: Clone + Send + Unpin + 'static,
        T: Serialize + 'static,
        F: Fn(C, PageRequest) -> Fut + Send + Unpin + 'static,
        Fut: Future<Output = Result<Vec<T>, ApiError>> + Send + 'static,
    {
        let first = PageRequest { page: 1, limit: MAX_LIMIT };
        let items = fetch(context.clone(), first).await?;
        let mut head = csv::line(self.columns.iter().copied());
        head.push_str(&rows(self.columns, &items)?);
        let body = Pages {
            columns: self.columns,
            context,
            fetch,
            next: after(first, items.len()),
            fetching: None,
            head: Some(Bytes::from(head)),
        };
        let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", self.filename))
            .map_err(ApiError::internal)?;
        Ok((
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(TEXT_CSV)),
                (header::CONTENT_DISPOSITION, disposition),
                // Audit data: no shared cache keeps a copy.
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            Body::new(body),
        )
            .into_response())
    }
}

/// The documented success of every export, for `responses(CsvDownload, …)` in its
/// `#[utoipa::path]`.
#[derive(Debug, utoipa::IntoResponses)]
#[response(
    status = 200,
    content_type = "text/csv",
    description = "A header row of the API's field names, then one row per item, newest first (RFC 4180 quoting, \
                   CRLF line ends; nested values as JSON; a cell that could start a spreadsheet formula \
                   (`=`, `+`, `-`, `@`, tab, CR) is prefixed with `'`)",
    headers(("Content-Disposition" = String, description = "`attachment; filename=\"….csv\"`"))
)]
pub struct CsvDownload(pub String);

pub use bestow_clock::up_to_now;

/// The page after `page`, unless `page` came back short and so was the last.
fn after(page: PageRequest, fetched: usize) -> Option<PageRequest> {
    let full = u32::try_from(fetched).is_ok_and(|fetched| fetched >= page.limit);
    full.then(|| PageRequest { page: page.page + 1, ..page })
}

/// The CSV lines of `items`.
fn rows<T: Serialize>(columns: &[&str], items: &[T]) -> Result<String, ApiError> {
    items.iter().map(|item| csv::record(columns, item).map_err(ApiError::internal)).collect()
}

type PageFuture<T> = Pin<Box<dyn Future<Output = Result<Vec<T>, ApiError>> + Send>>;

/// The body: the head (header row and first page), then one chunk per further page, each
/// fetched only when the client has taken the previous one.
struct Pages<C, T, F> {
    columns: &'static [&'static str],
    context: C,
    fetch: F,
    /// The page to write next; `None` once the last one is written.
    next: Option<PageRequest>,
    fetching: Option<PageFuture<T>>,
    head: Option<Bytes>,
}

impl<C, T, F, Fut> http_body::Body for Pages<C, T, F>
where
    C: Clone + Unpin,
    T: Serialize,
    F: Fn(C, PageRequest) -> Fut + Unpin,
    Fut: Future<Output = Result<Vec<T>, ApiError>> + Send + 'static,
{
    type Data = Bytes;
    type Error = ApiError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ApiError>>> {
        let this = self.get_mut();
        if let Some(head) = this.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        let Some(page) = this.next else {
            return Poll::Ready(None);
        };
        let fetching = this.fetching.get_or_insert_with(|| Box::pin((this.fetch)(this.context.clone(), page)));
        let fetched = ready!(fetching.as_mut().poll(cx));
        this.fetching = None;
        let chunk = fetched.and_then(|items| {
            this.next = after(page, items.len());
            rows(this.columns, &items)
        });
        match chunk {
            Ok(chunk) if chunk.is_empty() => Poll::Ready(None),
            Ok(chunk) => Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk))))),
            Err(error) => {
                this.next = None;
                tracing::error!(%error, page = page.page, "export cut short");
                Poll::Ready(Some(Err(error)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.next.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::TimeDelta;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};

    use super::*;

    const NUMBERS: CsvExport = CsvExport { filename: "numbers.csv", columns: &["n"] };

    /// `total` numbers, served page by page; counts the pages asked for.
    async fn export(total: usize, fail_on_page: Option<u32>) -> (Result<Response, ApiError>, Arc<AtomicUsize>) {
        let asked = Arc::new(AtomicUsize::new(0));
        let response = NUMBERS
            .stream(asked.clone(), move |asked, page| async move {
                asked.fetch_add(1, Ordering::SeqCst);
                if Some(page.page) == fail_on_page {
                    return Err(ApiError::Unavailable("store gone".into()));
                }
                let start = usize::try_from(page.offset()).unwrap();
                Ok((start..total.min(start + page.limit as usize)).map(|n| json!({ "n": n })).collect::<Vec<Value>>())
            })
            .await;
        (response, asked)
    }

    async fn text(response: Response) -> Result<String, String> {
        let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn every_row_of_every_page_follows_the_header() {
        let limit = MAX_LIMIT as usize;
        for (total, pages) in [(0, 1), (1, 1), (limit, 2), (limit + 1, 2), (2 * limit + 5, 3)] {
            let (response, asked) = export(total, None).await;
            let response = response.unwrap();
            assert_eq!(response.headers()[header::CONTENT_TYPE], TEXT_CSV);
            assert_eq!(response.headers()[header::CONTENT_DISPOSITION], "attachment; filename=\"numbers.csv\"");
            let text = text(response).await.unwrap();
            let expected: String =
                std::iter::once("n\r\n".to_owned()).chain((0..total).map(|n| format!("{n}\r\n"))).collect();
            assert_eq!(text, expected, "{total} rows");
            assert_eq!(asked.load(Ordering::SeqCst), pages, "pages read for {total} rows");
        }
    }

    #[tokio::test]
    async fn a_first_page_that_fails_is_an_error_answer() {
        let (response, _) = export(10, Some(1)).await;
        assert!(matches!(response, Err(ApiError::Unavailable(_))));
    }

    #[tokio::test]
    async fn a_later_page_that_fails_cuts_the_body_short() {
        let (response, _) = export(3 * MAX_LIMIT as usize, Some(2)).await;
        assert!(text(response.unwrap()).await.is_err(), "the body ends in an error, not in a short file");
    }

    #[test]
    fn an_export_ends_where_it_started() {
        let now = crate::time::now();
        let pinned = up_to_now(None).unwrap();
        assert!(pinned > now && pinned <= crate::time::now() + TimeDelta::milliseconds(1));
        let past = now - TimeDelta::days(1);
        assert_eq!(up_to_now(Some(past)), Some(past));
        let future = up_to_now(Some(now + TimeDelta::days(1))).unwrap();
        assert!(future <= crate::time::now() + TimeDelta::milliseconds(1), "never past the start");
    }
}
