//! The one place errors become RocketMQ status codes (StatusCode.md).

use strata_proto::v2::{Code, Status};

pub fn ok() -> Status {
    status(Code::Ok, "OK")
}

pub fn status(code: Code, message: impl Into<String>) -> Status {
    Status {
        code: code as i32,
        message: message.into(),
    }
}

pub fn from_ingest(e: &strata_ingest::Error) -> Status {
    use strata_ingest::Error as E;
    let code = match e {
        E::IllegalTopic(_) => Code::IllegalTopic,
        E::TopicNotFound { .. } => Code::TopicNotFound,
        E::BodyEmpty => Code::MessageBodyEmpty,
        E::BodyTooLarge { .. } => Code::MessageBodyTooLarge,
        E::BodyCorrupted { .. } => Code::MessageCorrupted,
        E::IllegalTag(_) => Code::IllegalMessageTag,
        E::IllegalKey(_) => Code::IllegalMessageKey,
        E::IllegalMessageGroup(_) => Code::IllegalMessageGroup,
        E::IllegalPriority(_) => Code::BadRequest,
        E::IllegalLiteTopic(_) => Code::IllegalLiteTopic,
        E::LiteTopicQuota(_) => Code::LiteTopicQuotaExceeded,
        E::IllegalPropertyKey(_) => Code::IllegalMessagePropertyKey,
        E::PropertiesTooLarge { .. } => Code::MessagePropertiesTooLarge,
        E::IllegalMessageId(_) => Code::IllegalMessageId,
        E::TypeMismatch { .. } => Code::MessagePropertyConflictWithType,
        E::IllegalDeliveryTime(_) => Code::IllegalDeliveryTime,
        E::InvalidTransactionId(_) => Code::InvalidTransactionId,
        E::InvalidRecallHandle(_) => Code::BadRequest,
        E::NothingToRecall => Code::NotFound,
        E::UnknownType(_) => Code::Unsupported,
        E::Store(_) | E::Commit(_) | E::Coordinator(_) | E::ShuttingDown => Code::InternalServerError,
    };
    status(code, e.to_string())
}

pub fn from_query(e: &strata_query::Error) -> Status {
    use strata_query::Error as E;
    let code = match e {
        E::InvalidReceipt(_) => Code::InvalidReceiptHandle,
        E::IllegalFilter(_) => Code::IllegalFilterExpression,
        E::Unsupported(_) => Code::Unsupported,
        E::IllegalInvisibleTime(_) => Code::IllegalInvisibleTime,
        E::TopicNotFound { .. } => Code::TopicNotFound,
        E::GroupNotFound { .. } => Code::ConsumerGroupNotFound,
        E::IllegalTopic(_) => Code::IllegalTopic,
        E::IllegalGroup(_) => Code::IllegalConsumerGroup,
        E::ClientIdRequired(_) => Code::ClientIdRequired,
        E::IllegalLiteTopic(_) => Code::IllegalLiteTopic,
        E::LiteSubscriptionQuota(_) => Code::LiteSubscriptionQuotaExceeded,
        E::IllegalOffset(_) => Code::IllegalOffset,
        E::OffsetNotFound { .. } => Code::OffsetNotFound,
        E::Corrupt(_) | E::Missing(_) | E::Storage(_) | E::Coordinator(_) => Code::InternalServerError,
    };
    status(code, e.to_string())
}

pub fn from_meta(e: &strata_meta::Error) -> Status {
    use strata_meta::Error as E;
    let code = match e {
        E::TopicNotFound { .. } => Code::TopicNotFound,
        E::GroupNotFound { .. } => Code::ConsumerGroupNotFound,
        E::Invalid { what, .. } if what.contains("group") => Code::IllegalConsumerGroup,
        E::Invalid { what: "lite topic", .. } => Code::IllegalLiteTopic,
        E::Invalid { .. } => Code::IllegalTopic,
        E::LiteTopicQuota { .. } => Code::LiteTopicQuotaExceeded,
        E::LiteSubscriptionQuota { .. } => Code::LiteSubscriptionQuotaExceeded,
        E::LaneQuota { .. } => Code::IllegalConsumerGroup,
        E::QueueNotFound { .. } | E::AlreadyExists { .. } => Code::BadRequest,
        E::TenantNotFound { .. } | E::UserNotFound { .. } => Code::NotFound,
        E::Database(_) | E::GroupCommit(_) | E::Inconsistent(_) | E::Fenced { .. } | E::ObjectCollected { .. } => {
            Code::InternalServerError
        }
    };
    status(code, e.to_string())
}

pub fn from_auth(e: &strata_tenancy::Error) -> Status {
    use strata_tenancy::Error as E;
    match e {
        E::Unauthenticated(_) => status(Code::Unauthorized, e.to_string()),
        E::Forbidden(_) | E::CrossTenant { .. } => status(Code::Forbidden, e.to_string()),
        E::TooManyRequests { .. } => status(Code::TooManyRequests, e.to_string()),
        E::Meta(m) => from_meta(m),
        E::Lookup(_) | E::Quota(_) | E::Unsealable | E::BadKey(_) | E::KeyFile { .. } => {
            status(Code::InternalServerError, e.to_string())
        }
    }
}

/// The request-level status of a batch of per-entry results: OK when all are, the entry's
/// own status when there is one, MULTIPLE_RESULTS otherwise.
pub fn combined(entries: &[&Status]) -> Status {
    if entries.iter().all(|s| s.code == Code::Ok as i32) {
        return ok();
    }
    match entries {
        [one] => (*one).clone(),
        _ => status(Code::MultipleResults, "entries have different results; see each entry"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combines_entry_statuses() {
        let (a, b) = (ok(), status(Code::MessageBodyTooLarge, "big"));
        assert_eq!(combined(&[&a, &a]).code, Code::Ok as i32);
        assert_eq!(combined(&[&b]).code, Code::MessageBodyTooLarge as i32);
        assert_eq!(combined(&[&a, &b]).code, Code::MultipleResults as i32);
    }
}
