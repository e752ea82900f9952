/// Errors of the consumer-facing handlers. The gRPC front maps each to a RocketMQ code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("invalid receipt handle: {0}")]
    InvalidReceipt(String),
    #[error("illegal filter expression: {0}")]
    IllegalFilter(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("illegal invisible duration: {0}")]
    IllegalInvisibleTime(String),
    #[error("topic {tenant}/{topic} not found")]
    TopicNotFound { tenant: String, topic: String },
    #[error("consumer group {tenant}/{group} not found")]
    GroupNotFound { tenant: String, group: String },
    #[error("illegal topic: {0}")]
    IllegalTopic(String),
    #[error("illegal consumer group: {0}")]
    IllegalGroup(String),
    #[error("illegal lite topic: {0}")]
    IllegalLiteTopic(String),
    #[error("{0}")]
    LiteSubscriptionQuota(String),
    #[error("consumer group {0} is a broadcast group: its receives must name the client (x-mq-client-id)")]
    ClientIdRequired(String),
    #[error("illegal offset: {0}")]
    IllegalOffset(String),
    #[error("no offset committed for group {group} on {topic} queue {queue}")]
    OffsetNotFound { group: String, topic: String, queue: i32 },
    #[error("stored message is corrupt: {0}")]
    Corrupt(String),
    #[error("stored message is missing: {0}")]
    Missing(String),
    #[error("object store read failed: {0}")]
    Storage(String),
    #[error("coordinator unavailable: {0}")]
    Coordinator(String),
}

impl From<strata_meta::Error> for Error {
    fn from(e: strata_meta::Error) -> Self {
        use strata_meta::Error as M;
        match e {
            M::TopicNotFound { tenant, topic } => Error::TopicNotFound { tenant, topic },
            M::GroupNotFound { tenant, group } => Error::GroupNotFound { tenant, group },
            M::Invalid { what, reason } if what.contains("group") => Error::IllegalGroup(reason),
            M::Invalid {
                what: "lite topic",
                reason,
            } => Error::IllegalLiteTopic(reason),
            e @ M::LiteSubscriptionQuota { .. } => Error::LiteSubscriptionQuota(e.to_string()),
            e @ M::LaneQuota { .. } => Error::IllegalGroup(e.to_string()),
            M::Invalid { reason, .. } => Error::IllegalTopic(reason),
            other => Error::Coordinator(other.to_string()),
        }
    }
}

impl From<strata_storage::Error> for Error {
    fn from(e: strata_storage::Error) -> Self {
        if e.is_corrupt() {
            Error::Corrupt(e.to_string())
        } else if e.is_missing() {
            Error::Missing(e.to_string())
        } else {
            Error::Storage(e.to_string())
        }
    }
}

impl Error {
    /// A read error no retry cures: the object is missing or its bytes are corrupt.
    pub fn is_incurable(&self) -> bool {
        matches!(self, Error::Corrupt(_) | Error::Missing(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
