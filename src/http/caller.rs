//! Who calls the HTTP listener, and how their calls reach the gRPC handlers: an API request is
//! authenticated by its signature (tenancy::http_auth), a console page by its session cookie,
//! both through the gate; the caller's work is then handed to the same `MessagingService` and
//! `StrataAdmin` handlers the gRPC clients reach, carrying the principal the gate found (not
//! authenticated again) — so the ACL, quotas, metering, tracing and forwarding are theirs, not
//! a second copy. The request also carries the caller's credentials re-signed for 5.x, which
//! only a node it is forwarded to reads.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use strata_tenancy::Principal;
use strata_tenancy::http_auth::{SignedRequest, body_digest};
use tonic::metadata::MetadataValue;

use super::Web;
use super::error::ApiError;
use crate::front::Verified;
use crate::gate::Credentials;

/// The header naming the namespace (tenant) a call acts in, as on gRPC.
pub const NAMESPACE_HEADER: &str = "x-mq-namespace";

/// An authenticated caller and the namespace it acts in.
pub struct Caller {
    pub principal: Principal,
    pub namespace: String,
    /// The 5.x `authorization` and `x-mq-date-time` to hand on; None with auth off.
    delegated: Option<(String, String)>,
}

impl Caller {
    /// `namespace` as asked, else the user's own tenant (else the default namespace).
    pub fn new(web: &Web, principal: Principal, namespace: Option<&str>) -> Self {
        let namespace = match (namespace, &principal) {
            (Some(ns), _) => ns.to_string(),
            (None, Principal::User(a)) => a.user.tenant.clone(),
            (None, _) => String::new(),
        };
        let delegated = web.guard.delegate(&principal);
        Self {
            principal,
            namespace,
            delegated,
        }
    }

    /// `message` as a gRPC request from this caller, in its namespace.
    pub fn grpc<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.extensions_mut().insert(Verified(self.principal.clone()));
        let md = request.metadata_mut();
        if let Ok(ns) = MetadataValue::try_from(self.namespace.as_str()) {
            md.insert(NAMESPACE_HEADER, ns);
        }
        if let Some((authorization, date)) = &self.delegated
            && let (Ok(a), Ok(d)) = (
                MetadataValue::try_from(authorization.as_str()),
                MetadataValue::try_from(date.as_str()),
            )
        {
            md.insert("authorization", a);
            md.insert("x-mq-date-time", d);
        }
        request
    }

    /// The namespace as resources name it on gRPC.
    pub fn resource(&self, name: &str) -> strata_proto::v2::Resource {
        strata_proto::v2::Resource {
            resource_namespace: self.namespace.clone(),
            name: name.to_string(),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A signed API request: its caller and its body (checked against the signature).
pub struct Signed {
    pub caller: Caller,
    pub body: Bytes,
    uri: axum::http::Uri,
}

impl Signed {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| ApiError::bad_request(format!("the JSON body is invalid: {e}")))
    }

    /// The query string's parameters as `T`.
    pub fn query<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        axum::extract::Query::try_from_uri(&self.uri)
            .map(|q| q.0)
            .map_err(|e| ApiError::bad_request(format!("the query string is invalid: {}", e.body_text())))
    }
}

impl FromRequest<Web> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, web: &Web) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let authorization = header(&parts.headers, "authorization");
        web.guard.precheck_http(authorization).await?;
        let body = axum::body::to_bytes(body, web.max_body_bytes).await.map_err(|_| {
            ApiError::new(
                strata_proto::v2::Code::PayloadTooLarge,
                format!("the request body is over {} bytes", web.max_body_bytes),
            )
        })?;
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let digest = body_digest(&body);
        let namespace = header(&parts.headers, NAMESPACE_HEADER);
        let signed = SignedRequest {
            method: parts.method.as_str(),
            target,
            date: header(&parts.headers, "x-mq-date-time").unwrap_or_default(),
            namespace: namespace.unwrap_or_default(),
            body_digest: &digest,
        };
        let credentials = Credentials::Http {
            authorization,
            request: &signed,
        };
        let principal = web
            .front
            .gate
            .authenticate(credentials, super::peer(&parts.extensions))
            .await?;
        let caller = Caller::new(web, principal, namespace);
        Ok(Self {
            caller,
            body,
            uri: parts.uri,
        })
    }
}
