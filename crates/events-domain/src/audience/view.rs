//! How audiences read to clients: the staff's view of an audience, a membership check, a LIST
//! member, an upload's count and an estimate's job. The API writes them and the console reads
//! them back, one type each.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{Audience, AudienceEstimate, AudienceKind, EstimateStatus, RuleVerdict};

/// An audience as staff read it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AudienceView {
    /// `audiences._id`.
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: AudienceKind,
    /// A RULE audience's tree (see the audience rule types in the API guide); null for LIST.
    #[schema(value_type = Option<crate::schemas::AudienceRuleTree>)]
    pub rule: Option<Value>,
    /// Members of a LIST audience; 0 for RULE.
    pub member_count: u64,
    /// The latest size estimate, or null before any.
    pub estimate: Option<AudienceEstimate>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Changes with every write; also sent as the `ETag` header.
    pub version: i64,
}

impl From<&Audience> for AudienceView {
    fn from(audience: &Audience) -> Self {
        Self {
            id: audience.id.to_string(),
            name: audience.name.clone(),
            description: audience.description.clone(),
            kind: audience.kind,
            rule: audience.rule.as_ref().and_then(|rule| serde_json::to_value(rule).ok()),
            member_count: audience.member_count,
            estimate: audience.estimate.clone(),
            created_by: audience.created_by.clone(),
            created_at: audience.created_at,
            updated_at: audience.updated_at,
            version: audience.version,
        }
    }
}

/// The audit snapshot of an audience.
pub fn audience_snapshot(audience: &Audience) -> Value {
    serde_json::to_value(AudienceView::from(audience)).unwrap_or(Value::Null)
}

/// Whether one player is in an audience, and why (`GET .../check?userId=`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembershipCheck {
    /// The player checked.
    pub user_id: String,
    /// Whether the player is in the audience now.
    pub member: bool,
    /// The verdict of every node of the rule (`{type: "LIST", met}` for a LIST audience).
    pub rule: RuleVerdict,
}

/// One member of a LIST audience.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AudienceMember {
    pub user_id: String,
}

/// How many members a LIST audience has after an upload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberCount {
    /// Distinct user ids in the audience now.
    pub members: u64,
}

/// The job an estimate runs as.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EstimateJob {
    /// Names this run in `GET .../estimate`.
    pub job_id: String,
}

/// How far an audience's latest size estimate got (`GET .../estimate`): `NOT_STARTED`, with
/// nothing counted, before any run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EstimateProgress {
    pub status: EstimateStatus,
    /// Members found among the players scanned so far (exact for a LIST audience).
    pub members: u64,
    /// Players judged so far.
    pub scanned: u64,
    /// Players to judge: the known players when the run started.
    pub total: u64,
    /// The run; null before any.
    pub job_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the run failed; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EstimateProgress {
    /// The progress of `run`, the audience's latest estimate (`None`: never started).
    pub fn of(run: Option<&AudienceEstimate>) -> Self {
        match run {
            None => Self {
                status: EstimateStatus::NotStarted,
                members: 0,
                scanned: 0,
                total: 0,
                job_id: None,
                started_at: None,
                finished_at: None,
                error: None,
            },
            Some(run) => Self {
                status: run.status,
                members: run.members,
                scanned: run.scanned,
                total: run.total,
                job_id: Some(run.job_id.clone()),
                started_at: Some(run.started_at),
                finished_at: run.finished_at,
                error: run.error.clone(),
            },
        }
    }

    /// The run this progress is of; `None` before any.
    pub fn run(&self) -> Option<AudienceEstimate> {
        Some(AudienceEstimate {
            job_id: self.job_id.clone()?,
            status: self.status,
            members: self.members,
            scanned: self.scanned,
            total: self.total,
            started_at: self.started_at?,
            finished_at: self.finished_at,
            error: self.error.clone(),
        })
    }
}
