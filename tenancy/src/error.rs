//! Why a request was refused, or an account operation failed.

/// Why a request's credentials were not believed (RocketMQ `UNAUTHORIZED`, 40100).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    #[error("credentials are required (authorization header with an access key)")]
    Missing,
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    /// Told to the caller exactly as a bad signature is: a refusal never says which access
    /// keys exist (the key is for this node's logs).
    #[error("the access key is unknown or the signature does not match")]
    UnknownKey(String),
    #[error("the access key is unknown or the signature does not match")]
    BadSignature,
    #[error("the console session has expired; log in again")]
    Expired,
    #[error("x-mq-date-time {date:?} is outside the accepted clock skew")]
    DateOutOfWindow { date: String },
    #[error("too many failed sign-ins from this address in the last minute; wait and check the keys")]
    HeldBack,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unauthorized: {0}")]
    Unauthenticated(#[from] Unauthenticated),
    /// RocketMQ `FORBIDDEN`, 40300.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// One request named resources of two tenants (RocketMQ `FORBIDDEN`).
    #[error("forbidden: the request acts in tenant {tenant:?} but names {resource} in tenant {other:?}")]
    CrossTenant {
        tenant: String,
        resource: String,
        other: String,
    },
    /// RocketMQ `TOO_MANY_REQUESTS`, 42900.
    #[error(
        "too many requests: tenant {tenant:?} is at its ceiling of {ceiling_tps} TPS units; retry in {retry_after:?}"
    )]
    TooManyRequests {
        tenant: String,
        ceiling_tps: u32,
        retry_after: std::time::Duration,
    },
    #[error("cannot read the tenant's quota: {0}")]
    Quota(#[source] std::sync::Arc<strata_meta::Error>),
    #[error(transparent)]
    Meta(#[from] strata_meta::Error),
    /// A lookup another request ran at the same time failed.
    #[error("account lookup failed: {0}")]
    Lookup(#[source] std::sync::Arc<Error>),
    #[error("a sealed secret cannot be opened (wrong at-rest key, or altered)")]
    Unsealable,
    #[error("at-rest key: {0}")]
    BadKey(&'static str),
    #[error("at-rest key file {path}: {source}")]
    KeyFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// A label for metrics: unauthenticated, forbidden, throttled or internal.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) | Error::CrossTenant { .. } => "forbidden",
            Error::TooManyRequests { .. } => "throttled",
            _ => "internal",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
