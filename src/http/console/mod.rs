//! The web console (`/console`): server-rendered pages over the same calls as the HTTP API
//! (api::admin), behind the same users — a login with an access key and secret key sets a
//! signed session cookie (tenancy::http_auth); what a page may show or do is what the user
//! may (admin actions need ADMIN on the resource). No JavaScript: charts are inline SVG.

mod chart;
mod groups;
pub mod history;
mod layout;
mod messages;
mod metering;
mod overview;
mod topics;

use std::time::Duration;

use axum::Form;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use super::Web;
use super::caller::Caller;
use super::error::ApiError;

/// The session cookie's name.
const COOKIE: &str = "strata_session";
/// How long a login lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Who looks at a page, in which namespace (`?ns=`, else the user's own).
pub struct Viewer {
    pub caller: Caller,
    /// Authentication is off: everyone sees everything.
    pub open: bool,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[derive(Deserialize)]
struct NamespaceParam {
    ns: Option<String>,
}

impl FromRequestParts<Web> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Response> {
        // Actions are POSTs; one from another site's page is refused (the cookie is also
        // SameSite=Strict, so browsers do not send it along).
        if parts.method == axum::http::Method::POST && !same_origin(&parts.headers) {
            return Err(ApiError::new(strata_proto::v2::Code::Forbidden, "cross-site form").into_response());
        }
        let session = crate::gate::Credentials::Session(cookie(&parts.headers, COOKIE));
        let principal = match web
            .front
            .gate
            .authenticate(session, crate::http::peer(&parts.extensions))
            .await
        {
            Ok(p) => p,
            Err(_) => return Err(Redirect::to("/console/login").into_response()),
        };
        let ns = axum::extract::Query::<NamespaceParam>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.ns);
        Ok(Viewer {
            caller: Caller::new(web, principal, ns.as_deref()),
            open: !web.guard.enabled(),
        })
    }
}

/// Whether a request's `Origin` (when it has one) is the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin.split_once("://").is_some_and(|(_, rest)| rest == host)
}

#[derive(Deserialize)]
struct Login {
    access_key: String,
    secret_key: String,
}

#[derive(Deserialize)]
struct LoginQuery {
    failed: Option<String>,
}

async fn login_page(State(web): State<Web>, q: axum::extract::Query<LoginQuery>) -> Response {
    let body = html! {
        h1 { "Log in" }
        @if !web.guard.enabled() {
            p.note { "Authentication is off on this broker: " a href="/console" { "go to the console" } "." }
        }
        @if let Some(why) = &q.failed { p.error { (why) } }
        form method="post" action="/console/login" class="login" {
            label { "Access key" input name="access_key" autocomplete="username" required; }
            label { "Secret key" input name="secret_key" type="password" autocomplete="current-password" required; }
            button type="submit" { "Log in" }
        }
    };
    layout::bare("Log in", body).into_response()
}

async fn login(State(web): State<Web>, parts: Parts, Form(form): Form<Login>) -> Response {
    let headers = &parts.headers;
    if !same_origin(headers) {
        return ApiError::new(strata_proto::v2::Code::Forbidden, "cross-site form").into_response();
    }
    let peer = crate::http::peer(&parts.extensions);
    let principal = match web.front.gate.login(&form.access_key, &form.secret_key, peer).await {
        Ok(p) => p,
        Err(e) => {
            // The same words for an unknown key and a wrong secret: no probing for users.
            tracing::debug!(error = %e, "console login refused");
            let why = url_encode("Not logged in: wrong access key or secret key");
            return Redirect::to(&format!("/console/login?failed={why}")).into_response();
        }
    };
    let mut response = Redirect::to("/console").into_response();
    if let Some(token) = web.guard.session(&principal, &form.access_key, SESSION_TTL) {
        let secure = if forwarded_https(headers) { "; Secure" } else { "" };
        let value = format!(
            "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_TTL.as_secs()
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    response
}

/// Behind a TLS-terminating proxy (`X-Forwarded-Proto: https`) the cookie is marked Secure.
fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

async fn logout() -> Response {
    let mut response = Redirect::to("/console/login").into_response();
    let expired = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The console's routes.
pub fn router(web: Web) -> Router {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/nodes", get(overview::nodes))
        .route("/console/topics", get(topics::list).post(topics::create))
        .route("/console/topics/{topic}", get(topics::detail))
        .route("/console/groups", get(groups::list).post(groups::create))
        .route("/console/groups/{group}", get(groups::detail))
        .route("/console/groups/{group}/reset", post(groups::reset))
        .route("/console/groups/{group}/resend", post(groups::resend))
        .route("/console/messages", get(messages::search))
        .route("/console/messages/{message_id}", get(messages::detail))
        .route("/console/metering", get(metering::page))
        .route("/console/metering.csv", get(metering::csv))
        .with_state(web)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; strata_session=AK:1:ff"));
        assert_eq!(cookie(&h, COOKIE), Some("AK:1:ff"));
        assert_eq!(cookie(&h, "b"), None);
        assert!(same_origin(&h), "no Origin: a same-site navigation");
        h.insert(header::HOST, HeaderValue::from_static("console.example:8082"));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://console.example:8082"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&h));
        assert_eq!(url_encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
