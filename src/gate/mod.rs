//! The gate under every front (gRPC, Remoting, HTTP/JSON, console): who is calling
//! ([`Gate::authenticate`], from the credentials as their protocol carried them), the one
//! tenant the request acts in and whether the caller may touch every resource it names there
//! ([`Gate::admit`]), what it may spend (quotas), and, once the role has answered, what it
//! cost (metering) and what happened to its messages (message trace, [`trace`]). Fronts
//! decode their protocol, ask the gate, call the role and encode the answer; none of them
//! keeps a copy of these rules. Refusals are `strata_tenancy::Error`, mapped to each
//! protocol's codes in one place per protocol (docs/tenancy.md, "The gate").

mod failures;
mod trace;

pub use trace::Producer;

use std::net::IpAddr;
use std::sync::Arc;

use strata_meta::Clock;
use strata_tenancy::http_auth::SignedRequest;
use strata_tenancy::quota::units;
use strata_tenancy::{Charge, Error, Guard, Meter, Need, Principal, Quotas, Unauthenticated};
use tracing::{debug, warn};

use crate::trace::Tracer;

/// A caller's credentials, as its protocol carried them (no Debug: never logged).
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    /// 5.x gRPC: the `authorization` and `x-mq-date-time` headers.
    Grpc {
        authorization: Option<&'a str>,
        date: Option<&'a str>,
    },
    /// 4.x Remoting: the `AccessKey` and `Signature` fields, over the frame's `content`.
    Remoting {
        access_key: Option<&'a str>,
        signature: Option<&'a str>,
        content: &'a [u8],
    },
    /// The HTTP/JSON API: the `authorization` header over the signed parts of the request.
    Http {
        authorization: Option<&'a str>,
        request: &'a SignedRequest<'a>,
    },
    /// A console session cookie.
    Session(Option<&'a str>),
}

pub struct Gate {
    /// Authentication and the ACL (lets everything through when auth is off).
    pub guard: Arc<Guard>,
    /// Reserved + burst quotas per tenant.
    pub quotas: Arc<Quotas>,
    /// What each tenant used (metering).
    pub meter: Arc<Meter>,
    /// Records what happens to messages (message trace).
    pub tracer: Tracer,
    /// Failed authentications per client address.
    pub failures: failures::Failures,
    pub clock: Arc<dyn Clock>,
}

impl Gate {
    /// Who sent a request carrying `credentials` from `peer`. An address with too many failed
    /// attempts in the last minute is refused unchecked ([`failures`]).
    pub async fn authenticate(&self, credentials: Credentials<'_>, peer: Option<IpAddr>) -> Result<Principal, Error> {
        self.attempt(peer, self.check(credentials)).await
    }

    /// Who logs in to the console with these keys from `peer` (held back as
    /// [`Gate::authenticate`] is).
    pub async fn login(&self, access_key: &str, secret_key: &str, peer: Option<IpAddr>) -> Result<Principal, Error> {
        self.attempt(peer, self.guard.login(access_key, secret_key)).await
    }

    /// Runs a sign-in `attempt` from `peer` unless the address is held back, and counts it
    /// against the address when its credentials are refused.
    async fn attempt(
        &self,
        peer: Option<IpAddr>,
        attempt: impl std::future::Future<Output = Result<Principal, Error>>,
    ) -> Result<Principal, Error> {
        if !self.guard.enabled() {
            return Ok(Principal::Anyone);
        }
        let now = self.clock.now_ms();
        if let Some(ip) = peer
            && self.failures.blocked(ip, now)
        {
            metrics::counter!("strata_front_auth_failures_total", "reason" => "held_back").increment(1);
            return Err(Unauthenticated::HeldBack.into());
        }
        let principal = attempt.await;
        if let (Err(Error::Unauthenticated(_)), Some(ip)) = (&principal, peer) {
            self.failures.failed(ip, now);
        }
        principal.inspect_err(Self::refused)
    }

    async fn check(&self, credentials: Credentials<'_>) -> Result<Principal, Error> {
        let g = &self.guard;
        match credentials {
            Credentials::Grpc { authorization, date } => g.authenticate(authorization, date).await,
            Credentials::Remoting {
                access_key,
                signature,
                content,
            } => g.authenticate_remoting(access_key, signature, content).await,
            Credentials::Http { authorization, request } => g.authenticate_http(authorization, request).await,
            Credentials::Session(token) => g.authenticate_session(token).await,
        }
    }

    /// The tenant a request of `principal` acts in — its `namespace` (a header, or "") and
    /// every namespace written beside the names in `needs` must agree — once every need holds
    /// there; the call is then metered as `rpc` for that tenant. A refused request is counted
    /// only as a failure: its names are not believed, so it cannot create metering rows or
    /// metric series for tenants nobody owns.
    pub fn admit(
        &self,
        principal: &Principal,
        rpc: &str,
        namespace: &str,
        needs: &[Need<'_>],
    ) -> Result<String, Error> {
        let tenant = principal.admit(namespace, needs).inspect_err(Self::refused)?;
        self.meter.call(&tenant, rpc);
        Ok(tenant)
    }

    fn refused(e: &Error) {
        metrics::counter!("strata_front_auth_failures_total", "reason" => e.kind()).increment(1);
        debug!(error = %e, "request refused");
    }

    /// Charges a send of messages of these weights (`strata_ingest::record::weight`: body,
    /// keys, tag and properties) to the tenant's quota.
    pub async fn admit_send(&self, tenant: &str, weights: impl Iterator<Item = usize>) -> Result<Charge, Error> {
        self.quotas
            .admit(tenant, weights.map(units).sum())
            .await
            .inspect_err(|e| self.throttled(tenant, e))
    }

    /// Lets a receive in unless the tenant is over its ceiling.
    pub async fn admit_receive(&self, tenant: &str) -> Result<(), Error> {
        self.quotas
            .admit_receive(tenant)
            .await
            .inspect_err(|e| self.throttled(tenant, e))
    }

    fn throttled(&self, tenant: &str, e: &Error) {
        if matches!(e, Error::TooManyRequests { .. }) {
            self.meter.throttled(tenant);
        }
        debug!(error = %e, tenant, "throttled");
    }

    /// Charges and meters messages of these sizes delivered to a tenant's consumers.
    pub async fn delivered(&self, tenant: &str, sizes: impl Iterator<Item = usize>) {
        let (mut n, mut bytes, mut units_out) = (0u64, 0u64, 0u64);
        for len in sizes {
            n += 1;
            bytes += len as u64;
            units_out += units(len);
        }
        if n == 0 {
            return;
        }
        match self.quotas.charge(tenant, units_out).await {
            Ok(charge) => self.meter.received(tenant, n, bytes, charge),
            Err(e) => warn!(error = %e, tenant, "delivered messages not charged"),
        }
    }
}
