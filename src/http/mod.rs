//! The HTTP listener (`http_listen`): the operator's probes and metrics ([`probes`]), the
//! HTTP/JSON API ([`api`]) and the web console ([`console`]). API calls and console pages are
//! translated into the gRPC handlers' own requests on the caller's behalf ([`caller`]).

pub mod api;
mod caller;
pub mod console;
mod cross_site;
mod error;
mod probes;

use std::sync::Arc;

use crate::connections::LimitedListener;
use strata_meta::Clock;
use strata_tenancy::Guard;
use tracing::Instrument;

use crate::admin::Admin;
use crate::front::Front;
pub use probes::{Observed, Readiness, install_recorder};

/// What the API and the console reach.
pub struct WebState {
    pub front: Front,
    pub admin: Arc<Admin>,
    pub guard: Arc<Guard>,
    /// Largest request body (`grpc.max_message_bytes`, as a gRPC frame).
    pub max_body_bytes: usize,
    /// Host names the listener answers to with authentication off, besides IP addresses and
    /// `localhost` (`http_allowed_hosts`).
    pub allowed_hosts: Vec<String>,
    /// The console's samples over time.
    pub history: Arc<console::history::History>,
    pub clock: Arc<dyn Clock>,
}

impl WebState {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

pub type Web = Arc<WebState>;

/// The client's address, as the listener accepted it (failed sign-ins count per address).
pub fn peer(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<crate::connections::Peer>>()
        .map(|c| c.0.0.ip())
}

/// A span per request, and `strata_http_requests_total` by surface and status class.
async fn observe(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let path = request.uri().path();
    let surface = ["/api/", "/console"]
        .into_iter()
        .find(|p| path.starts_with(p))
        .map_or("other", |p| p.trim_matches('/'));
    let span = tracing::info_span!("http", method = %request.method(), path = %path);
    let response = next.run(request).instrument(span).await;
    let class = match response.status().as_u16() {
        500.. => "5xx",
        400..=499 => "4xx",
        _ => "ok",
    };
    metrics::counter!("strata_http_requests_total", "surface" => surface, "status" => class).increment(1);
    response
}

/// Serves every endpoint on `listener` until the task is aborted.
pub fn spawn(listener: LimitedListener, observed: Arc<Observed>, web: Web) -> tokio::task::JoinHandle<()> {
    let app = probes::router(observed)
        .merge(api::router(web.clone()))
        .merge(console::router(web.clone()))
        .layer(axum::middleware::from_fn_with_state(web, cross_site::refuse_cross_site))
        .layer(axum::middleware::from_fn(observe));
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<crate::connections::Peer>();
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP listener stopped");
        }
    })
}
