//! LIST members in bulk: a CSV of user ids (one a line, an optional `userId` header, blank
//! lines skipped) replaces an audience's members all or nothing, read as a stream and written
//! in batches into a new member generation; the audience switches to it in one
//! compare-and-set. A bad line, too many lines or a broken body discards the new generation
//! and leaves the audience as it was. The export streams the members back the same way.

use axum::body::Bytes;
use bestow_core::audit::AuditActor;
use bestow_core::ids::{AudienceId, UserId};
use futures_util::{Stream, StreamExt};
use serde_json::json;

use super::facts::AUDIENCE_FRESHNESS;
use super::{AudienceError, AudienceService, lost_race};
use crate::domain::audience::{Audience, MAX_LIST_MEMBERS};
use crate::domain::ports::audiences::AudienceStore;

/// Ids written per batch (one transaction each).
pub const UPLOAD_BATCH: usize = 5_000;
/// Longest line read, in bytes: a user id is at most 128 characters (4 bytes each).
const MAX_LINE_BYTES: usize = 4 * bestow_core::ids::MAX_USER_ID_CHARS + 2;
/// Members read per page of an export.
pub const EXPORT_PAGE: u32 = 5_000;

/// Why an upload was refused; nothing of it is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// A line that is no user id (lines count from 1, the header included).
    #[error("line {line}: {message}")]
    BadLine { line: u64, message: String },
    #[error("an upload holds at most {MAX_LIST_MEMBERS} user ids; line {line} is one too many")]
    TooManyLines { line: u64 },
    /// The body could not be read to its end.
    #[error("the body could not be read: {0}")]
    Body(String),
}

/// Splits a byte stream into lines and reads each as a user id.
#[derive(Debug, Default)]
struct LineReader {
    partial: Vec<u8>,
    line: u64,
    ids: u64,
}

impl LineReader {
    /// Reads the complete lines of `chunk` into `out`, keeping an unfinished last line.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<UserId>) -> Result<(), UploadError> {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let line = std::mem::take(&mut self.partial);
            self.read_line(&line, out)?;
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_LINE_BYTES {
            return Err(UploadError::BadLine {
                line: self.line + 1,
                message: "the line is too long for a user id".into(),
            });
        }
        Ok(())
    }

    /// Reads the last line, if the body did not end with a newline.
    fn finish(&mut self, out: &mut Vec<UserId>) -> Result<(), UploadError> {
        let line = std::mem::take(&mut self.partial);
        if line.is_empty() { Ok(()) } else { self.read_line(&line, out) }
    }

    fn read_line(&mut self, raw: &[u8], out: &mut Vec<UserId>) -> Result<(), UploadError> {
        self.line += 1;
        let line = self.line;
        let text = std::str::from_utf8(raw)
            .map_err(|_| UploadError::BadLine { line, message: "the line is not UTF-8 text".into() })?;
        let text = text.trim_end_matches('\r').trim();
        if text.is_empty() || (line == 1 && text.eq_ignore_ascii_case("userId")) {
            return Ok(());
        }
        self.ids += 1;
        if self.ids > MAX_LIST_MEMBERS {
            return Err(UploadError::TooManyLines { line });
        }
        let text = as_exported(text).map_err(|message| UploadError::BadLine { line, message: message.into() })?;
        let id = UserId::parse(&text).map_err(|_| UploadError::BadLine {
            line,
            message: "is not a user id (1 to 128 characters, one id a line)".into(),
        })?;
        out.push(id);
        Ok(())
    }
}

/// What the export (`bestow_core::csv::line`) turns a cell into: a leading `'` before a
/// character a spreadsheet reads as a formula start.
const DEFUSED_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The id a line holds, read back as the export wrote it, so an export uploads back to the
/// same members: a quoted field (an id with a comma or a quote) is unquoted, and the `'` the
/// export puts before a formula start is dropped. (An id that itself starts with `'` and a
/// formula start cannot round-trip; the export could not tell it apart either.)
fn as_exported(text: &str) -> Result<std::borrow::Cow<'_, str>, &'static str> {
    let unquoted = match text.strip_prefix('"') {
        None => std::borrow::Cow::Borrowed(text),
        Some(rest) => {
            let inner = rest.strip_suffix('"').ok_or("a quoted id must end with a quote")?;
            if inner.replace("\"\"", "").contains('"') {
                return Err("a quote inside a quoted id must be doubled");
            }
            std::borrow::Cow::Owned(inner.replace("\"\"", "\""))
        }
    };
    match unquoted.strip_prefix('\'') {
        Some(rest) if rest.starts_with(DEFUSED_STARTS) => Ok(std::borrow::Cow::Owned(rest.to_owned())),
        _ => Ok(unquoted),
    }
}

impl AudienceService {
    /// Replaces a LIST audience's members by the ids of `body`, all or nothing; returns how
    /// many distinct members it has now. Audited once, with the counts.
    pub async fn replace_members<S, E>(&self, actor: &AuditActor, id: &str, body: S) -> Result<u64, AudienceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let audience = self.list_audience(id).await?;
        let generation = bestow_core::ids::new_object_id();
        let staged = self.stage(&audience.id, &generation, body).await;
        let members = match staged {
            Ok(members) => members,
            Err(error) => {
                self.discard_later(&audience.id, Discard::Generation(generation));
                return Err(error);
            }
        };
        let mut next = audience.clone();
        next.member_generation = generation.clone();
        next.member_count = members;
        next.updated_at = self.clock.now();
        next.version += 1;
        let audit = actor.entry(
            "audience.members.replace",
            ("audience", audience.id.as_str()),
            Some(json!({ "memberCount": audience.member_count })),
            Some(json!({ "memberCount": members })),
        );
        let switched = self.store.replace_audience(&next, audience.version, Some(&audit)).await;
        self.facts.forget(&audience.id);
        if let Err(error) = switched {
            self.discard_later(&audience.id, Discard::Generation(generation));
            return Err(lost_race(error, false));
        }
        self.discard_later(&audience.id, Discard::AllBut(generation));
        Ok(members)
    }

    /// Reads `body` into generation `generation`, batch by batch; the number of distinct ids.
    async fn stage<S, E>(&self, audience_id: &AudienceId, generation: &str, mut body: S) -> Result<u64, AudienceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let mut reader = LineReader::default();
        let mut batch: Vec<UserId> = Vec::with_capacity(UPLOAD_BATCH);
        let mut members = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| UploadError::Body(error.to_string()))?;
            reader.feed(&chunk, &mut batch)?;
            if batch.len() >= UPLOAD_BATCH {
                members += self.store.stage_members(audience_id, generation, &batch, self.clock.now()).await?;
                batch.clear();
            }
        }
        reader.finish(&mut batch)?;
        if !batch.is_empty() {
            members += self.store.stage_members(audience_id, generation, &batch, self.clock.now()).await?;
        }
        Ok(members)
    }

    /// Deletes members nobody reads any more, in the background: a refused upload's
    /// generation, or the generations an upload replaced.
    fn discard_later(&self, audience_id: &AudienceId, discard: Discard) {
        let (store, audience_id) = (self.store.clone(), audience_id.clone());
        tokio::spawn(async move {
            let result = match &discard {
                Discard::Generation(generation) => store.discard_generation(&audience_id, generation).await,
                Discard::AllBut(keep) => {
                    // Other processes may read the replaced generation until their memory of the
                    // audience expires: its members stay until then.
                    tokio::time::sleep(2 * AUDIENCE_FRESHNESS).await;
                    store.discard_members(&audience_id, Some(keep)).await
                }
            };
            if let Err(error) = result {
                tracing::warn!(%audience_id, %error, "cannot discard old audience members; they are never read");
            }
        });
    }

    /// The members of a LIST audience as CSV lines (`userId` header first), page by page.
    pub async fn export_members(
        &self,
        id: &str,
    ) -> Result<impl Stream<Item = Result<String, AudienceError>> + use<>, AudienceError> {
        let audience = self.list_audience(id).await?;
        Ok(member_lines(self.store.clone(), audience))
    }
}

/// Which members [`AudienceService::discard_later`] deletes.
enum Discard {
    Generation(String),
    AllBut(String),
}

/// The CSV lines of `audience`'s members, read `EXPORT_PAGE` at a time by user id.
fn member_lines(
    store: std::sync::Arc<dyn AudienceStore>,
    audience: Audience,
) -> impl Stream<Item = Result<String, AudienceError>> {
    let header = futures_util::stream::once(async { Ok(bestow_core::csv::line(["userId"])) });
    let pages = futures_util::stream::unfold(Some(None::<UserId>), move |after| {
        let (store, audience) = (store.clone(), audience.clone());
        async move {
            let after = after?;
            match store.members_after(&audience.id, &audience.member_generation, after.as_ref(), EXPORT_PAGE).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = (page.len() == EXPORT_PAGE as usize).then(|| page.last().cloned());
                    let text: String = page.iter().map(|id| bestow_core::csv::line([id.as_str()])).collect();
                    Some((Ok(text), next.flatten().map(Some)))
                }
                Err(error) => Some((Err(AudienceError::Store(error)), None)),
            }
        }
    });
    header.chain(pages)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(chunks: &[&[u8]]) -> Result<Vec<String>, UploadError> {
        let mut reader = LineReader::default();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, &mut out)?;
        }
        reader.finish(&mut out)?;
        Ok(out.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn lines_split_across_chunks_read_whole_with_header_crlf_and_blank_lines() {
        let ids = read(&[b"userId\r\nal", b"ice\r\n\r\nbob\n  carol  \nda", b"ve"]).unwrap();
        assert_eq!(ids, ["alice", "bob", "carol", "dave"]);
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let long = "x".repeat(129);
        let text = format!("a\nb\n{long}\nc\n");
        assert_eq!(
            read(&[text.as_bytes()]).unwrap_err(),
            UploadError::BadLine { line: 3, message: "is not a user id (1 to 128 characters, one id a line)".into() }
        );
        assert!(matches!(read(&[b"a\n\xff\xfe\n"]), Err(UploadError::BadLine { line: 2, .. })));
        let endless = vec![b'y'; MAX_LINE_BYTES + 1];
        assert!(matches!(read(&[b"a\n", &endless]), Err(UploadError::BadLine { line: 2, .. })));
    }

    #[test]
    fn what_the_export_writes_reads_back_as_the_same_ids() {
        let ids = ["plain", "-1234", "=cmd", "@home", "a,b", "say \"hi\"", "'quoted"];
        let text: String = ids.iter().map(|id| bestow_core::csv::line([*id])).collect();
        assert_eq!(read(&[text.as_bytes()]).unwrap(), ids);
        assert!(matches!(read(&[b"\"open\n"]), Err(UploadError::BadLine { line: 1, .. })));
        assert!(matches!(read(&[b"a\n\"x\"y\"\n"]), Err(UploadError::BadLine { line: 2, .. })));
    }

    #[test]
    fn one_id_more_than_allowed_is_refused_naming_its_line() {
        let mut reader = LineReader { ids: MAX_LIST_MEMBERS - 1, line: 5, ..LineReader::default() };
        let mut out = Vec::new();
        reader.feed(b"last\n", &mut out).unwrap();
        assert_eq!(reader.feed(b"extra\n", &mut out), Err(UploadError::TooManyLines { line: 7 }));
    }
}
