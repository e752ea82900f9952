//! The one place the HTTP listener turns refusals into answers: a RocketMQ status code (the
//! gRPC front's, for the same failure) in a JSON body, and the HTTP status that code implies.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use strata_proto::v2::{self, Code};
use utoipa::ToSchema;

/// A refused or failed request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// The RocketMQ status code (`apache.rocketmq.v2.Code`), e.g. 40402.
    #[schema(example = 40402)]
    pub code: i32,
    /// The code's name, e.g. `TOPIC_NOT_FOUND`.
    #[schema(example = "TOPIC_NOT_FOUND")]
    pub status: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code: code as i32,
            status: code.as_str_name().to_string(),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, message)
    }

    /// A status the gRPC front answered with.
    pub fn from_status(s: &v2::Status) -> Self {
        let code = Code::try_from(s.code).unwrap_or(Code::InternalError);
        Self::new(code, s.message.clone())
    }

    /// A refusal of the admin service.
    pub fn from_grpc(s: &tonic::Status) -> Self {
        let code = match s.code() {
            tonic::Code::NotFound => Code::NotFound,
            tonic::Code::PermissionDenied => Code::Forbidden,
            tonic::Code::Unauthenticated => Code::Unauthorized,
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => Code::BadRequest,
            tonic::Code::AlreadyExists => Code::PreconditionFailed,
            tonic::Code::FailedPrecondition => Code::PreconditionFailed,
            tonic::Code::ResourceExhausted => Code::TooManyRequests,
            tonic::Code::Unimplemented => Code::NotImplemented,
            tonic::Code::DeadlineExceeded => Code::ProxyTimeout,
            _ => Code::InternalError,
        };
        Self::new(code, s.message())
    }

    pub fn http_status(&self) -> StatusCode {
        http_status(self.code)
    }
}

/// The HTTP status a RocketMQ code implies: its first three digits (40402 → 404), 200 for
/// OK, 207 for a batch whose entries differ.
pub fn http_status(code: i32) -> StatusCode {
    if code == Code::MultipleResults as i32 {
        return StatusCode::MULTI_STATUS;
    }
    u16::try_from(code / 100)
        .ok()
        .filter(|c| (200..600).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.http_status(), Json(self)).into_response()
    }
}

impl From<strata_tenancy::Error> for ApiError {
    fn from(e: strata_tenancy::Error) -> Self {
        Self::from_status(&crate::front::status::from_auth(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_imply_http_statuses() {
        assert_eq!(http_status(Code::Ok as i32), StatusCode::OK);
        assert_eq!(http_status(Code::TopicNotFound as i32), StatusCode::NOT_FOUND);
        assert_eq!(http_status(Code::Unauthorized as i32), StatusCode::UNAUTHORIZED);
        assert_eq!(http_status(Code::TooManyRequests as i32), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            http_status(Code::MessageBodyTooLarge as i32),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(http_status(Code::MultipleResults as i32), StatusCode::MULTI_STATUS);
        assert_eq!(http_status(0), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(http_status(i32::MAX), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(http_status(-40400), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
