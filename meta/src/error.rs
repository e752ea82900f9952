/// Errors of the coordinator. Messages name the resource they concern.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("topic {tenant}/{topic} not found")]
    TopicNotFound { tenant: String, topic: String },

    #[error("consumer group {tenant}/{group} not found")]
    GroupNotFound { tenant: String, group: String },

    #[error("tenant {tenant:?} not found")]
    TenantNotFound { tenant: String },

    #[error("user {tenant}/{user} not found")]
    UserNotFound { tenant: String, user: String },

    #[error("queue {tenant}/{topic}/{queue} does not exist")]
    QueueNotFound { tenant: String, topic: String, queue: i32 },

    #[error("{kind} {tenant}/{name} already exists")]
    AlreadyExists {
        kind: &'static str,
        tenant: String,
        name: String,
    },

    #[error("node {node} epoch {epoch} is fenced: it was declared dead or restarted; register again")]
    Fenced { node: String, epoch: i64 },

    /// Orphan collection recorded its intent to delete the object before this commit of it.
    #[error("object {object} was collected as an orphan before its commit arrived; nothing was stored")]
    ObjectCollected { object: String },

    /// `holder`: "topic TENANT/PARENT" or "tenant TENANT".
    #[error("{holder} holds its maximum of {max} lite topics")]
    LiteTopicQuota { holder: String, max: i64 },

    /// `holder`: "client ID" or "consumer group GROUP".
    #[error("{holder} would subscribe to more than its {max} lite topics")]
    LiteSubscriptionQuota { holder: String, max: u32 },

    /// A consumer group's lanes are at their maximum (`crate::lane::MAX_PER_GROUP`).
    #[error("consumer group {tenant}/{group} has its maximum of {max} lanes; lane {lane:?} is refused")]
    LaneQuota {
        tenant: String,
        group: String,
        lane: String,
        max: usize,
    },

    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },

    #[error("coordinator database error: {0}")]
    Database(#[from] sqlx::Error),

    /// The transaction a write was group-committed in failed (every write in it failed).
    #[error("coordinator commit failed: {0}")]
    GroupCommit(std::sync::Arc<sqlx::Error>),

    #[error("stored state is inconsistent: {0}")]
    Inconsistent(String),
}

impl Error {
    /// The connection failed while the call was under way (or a group commit failed): a
    /// write's outcome is unknown — it may have committed — and repeating an idempotent
    /// write settles it. Not a refusal, nor a call that never reached the database (no
    /// connection to be had: it did not commit, and the caller should hear so at once).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::Database(sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed)
                | Error::GroupCommit(_)
        )
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
