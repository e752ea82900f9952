use strata_meta::model::MessageType;

/// Why a message was not accepted. The gRPC front maps each variant to a RocketMQ code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("illegal topic: {0}")]
    IllegalTopic(String),
    #[error("topic {tenant}/{topic} not found")]
    TopicNotFound { tenant: String, topic: String },
    #[error("message body is empty")]
    BodyEmpty,
    #[error("message body is {size} bytes, more than the maximum {max}")]
    BodyTooLarge { size: usize, max: usize },
    #[error("message body does not match its {kind} digest")]
    BodyCorrupted { kind: &'static str },
    #[error("illegal message tag: {0}")]
    IllegalTag(String),
    #[error("illegal message key: {0}")]
    IllegalKey(String),
    #[error("illegal message group: {0}")]
    IllegalMessageGroup(String),
    #[error("illegal priority: {0}")]
    IllegalPriority(String),
    #[error("illegal lite topic: {0}")]
    IllegalLiteTopic(String),
    #[error("{0}")]
    LiteTopicQuota(String),
    #[error("illegal message property key: {0}")]
    IllegalPropertyKey(String),
    #[error("message properties are {size} bytes, more than the maximum {max}")]
    PropertiesTooLarge { size: usize, max: usize },
    #[error("illegal message id: {0}")]
    IllegalMessageId(String),
    #[error("topic {tenant}/{topic} is {topic_type}, message is {message_type}")]
    TypeMismatch {
        tenant: String,
        topic: String,
        topic_type: MessageType,
        message_type: MessageType,
    },
    #[error("illegal delivery time: {0}")]
    IllegalDeliveryTime(String),
    #[error("invalid transaction id: {0}")]
    InvalidTransactionId(String),
    #[error("invalid recall handle: {0}")]
    InvalidRecallHandle(String),
    #[error("no pending delay message for this recall handle: it was delivered or recalled already")]
    NothingToRecall,
    #[error("unknown message type {0}")]
    UnknownType(i32),
    #[error("object store write failed, message not stored: {0}")]
    Store(String),
    #[error("coordinator commit failed, message not stored: {0}")]
    Commit(String),
    #[error("coordinator unavailable: {0}")]
    Coordinator(String),
    #[error("the ingest node is shutting down")]
    ShuttingDown,
}

impl From<strata_meta::Error> for Error {
    fn from(e: strata_meta::Error) -> Self {
        use strata_meta::Error as M;
        match e {
            M::TopicNotFound { tenant, topic } => Error::TopicNotFound { tenant, topic },
            M::Invalid {
                what: "lite topic",
                reason,
            } => Error::IllegalLiteTopic(reason),
            M::Invalid { reason, .. } => Error::IllegalTopic(reason),
            e @ M::LiteTopicQuota { .. } => Error::LiteTopicQuota(e.to_string()),
            other => Error::Coordinator(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
