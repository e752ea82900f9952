//! What keeps other web sites from driving the HTTP listener through a visitor's browser.
//! With authentication on, a request needs a signature or a SameSite=Strict session cookie,
//! which no other site can produce. With it off (loopback only, unless the operator said
//! otherwise) a browser on the same machine is the way in, so:
//! - a `Host` that is not an IP address, `localhost` or a configured name is refused: a page
//!   of `evil.example` whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own
//!   name;
//! - an API write whose content type is not `application/json` is refused: a cross-site page
//!   can send a form or `text/plain` body without the browser asking first (a CORS "simple
//!   request"), but not JSON;
//! - every answer says `frame-ancestors 'none'`: no other page can frame the console and trick
//!   clicks out of it (always, with authentication on too).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use strata_proto::v2::Code;

use super::Web;
use super::error::ApiError;

/// The listener's guard against cross-site use (a middleware on every route).
pub async fn refuse_cross_site(State(web): State<Web>, request: Request, next: Next) -> Response {
    if !web.guard.enabled()
        && let Err(why) = open_listener_allows(&request, &web.allowed_hosts)
    {
        return ApiError::new(Code::Forbidden, why).into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Why a listener without authentication refuses `request`, if it does.
fn open_listener_allows(request: &Request, allowed_hosts: &[String]) -> Result<(), String> {
    let headers = request.headers();
    if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok())
        && !host_allowed(host, allowed_hosts)
    {
        return Err(format!(
            "Host {host:?} is not this listener's (an IP address, localhost or http.allowed_hosts): \
             with authentication off, requests by other names are refused"
        ));
    }
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if writes && request.uri().path().starts_with("/api/") && !is_json(headers) {
        return Err(
            "with authentication off, API writes must have content-type application/json \
                    (a cross-site page cannot send it without asking first)"
                .into(),
        );
    }
    Ok(())
}

/// `host[:port]` names this listener: an IP literal, `localhost`, or a configured name.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(method: Method, path: &str, host: &str, content_type: Option<&str>) -> Request {
        let mut b = Request::builder().method(method).uri(path).header(header::HOST, host);
        if let Some(t) = content_type {
            b = b.header(header::CONTENT_TYPE, t);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn only_this_listeners_names_and_json_writes() {
        let allowed = ["broker.internal".to_string()];
        let ok = |m, p, h, t| open_listener_allows(&request(m, p, h, t), &allowed).is_ok();
        for host in [
            "127.0.0.1:8082",
            "localhost:8082",
            "LOCALHOST",
            "[::1]:8082",
            "10.0.0.5",
            "broker.internal:80",
        ] {
            assert!(ok(Method::GET, "/console", host, None), "{host}");
        }
        for host in [
            "evil.example:8082",
            "evil.example",
            "127.0.0.1.evil.example",
            "[evil]:1",
        ] {
            assert!(!ok(Method::GET, "/console", host, None), "{host}");
        }
        let json = Some("application/json; charset=utf-8");
        assert!(ok(Method::POST, "/api/v1/topics/t/messages", "127.0.0.1", json));
        for t in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data"),
        ] {
            assert!(!ok(Method::POST, "/api/v1/topics/t/messages", "127.0.0.1", t), "{t:?}");
            assert!(!ok(Method::DELETE, "/api/v1/topics/t", "127.0.0.1", t), "{t:?}");
        }
        assert!(
            ok(Method::GET, "/api/v1/topics", "127.0.0.1", None),
            "reads need no body"
        );
        assert!(
            ok(
                Method::POST,
                "/console/login",
                "127.0.0.1",
                Some("application/x-www-form-urlencoded")
            ),
            "console forms are checked by origin (console::same_origin)"
        );
    }
}
