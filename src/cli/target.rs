//! How the CLI reaches a broker and signs its admin calls (the 5.x signature: HMAC-SHA1 of
//! `x-mq-date-time` with the secret key).

use strata_proto::admin::strata_admin_client::StrataAdminClient;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::server::BoxError;

/// A broker and a namespace (tenant) on it.
#[derive(clap::Args, Debug)]
pub struct Target {
    /// Namespace (tenant); empty is the default tenant.
    #[arg(long, visible_alias = "tenant", default_value = "")]
    pub namespace: String,
    #[command(flatten)]
    pub broker: Broker,
}

/// How to reach a broker.
#[derive(clap::Args, Debug)]
pub struct Broker {
    /// The broker's gRPC endpoint (host:port or a URL).
    #[arg(long, default_value = "127.0.0.1:8081", env = "STRATA_ENDPOINT")]
    pub endpoint: String,
    #[command(flatten)]
    pub credentials: Credentials,
    /// PEM CA to trust for an https:// endpoint (default: the public web roots).
    #[arg(long, env = "STRATA_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// The CLI's own credentials (needed when the broker runs with auth on).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Credentials {
    /// Access key to sign requests with.
    #[arg(long = "access-key", env = "STRATA_ACCESS_KEY")]
    pub access_key: Option<String>,
    /// Secret key to sign requests with.
    #[arg(long = "secret-key", env = "STRATA_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
}

impl Credentials {
    /// From `STRATA_ACCESS_KEY` / `STRATA_SECRET_KEY` only (commands whose `--access-key`
    /// names something else).
    pub fn from_env() -> Self {
        Self {
            access_key: std::env::var("STRATA_ACCESS_KEY").ok(),
            secret_key: std::env::var("STRATA_SECRET_KEY").ok(),
        }
    }
}

/// Adds `authorization` and `x-mq-date-time` to every call when credentials are set.
#[derive(Clone, Debug)]
pub struct Signer(pub Credentials);

impl Interceptor for Signer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let (Some(ak), Some(sk)) = (&self.0.access_key, &self.0.secret_key) else {
            return Ok(request);
        };
        let now_ms = strata_meta::Clock::now_ms(&strata_meta::clock::SystemClock);
        let date = strata_tenancy::signature::date_now(now_ms);
        let header = strata_tenancy::signature::header(ak, sk.as_bytes(), &date);
        let value = |s: String| {
            MetadataValue::try_from(s).map_err(|_| tonic::Status::invalid_argument("credentials must be ASCII"))
        };
        request.metadata_mut().insert("x-mq-date-time", value(date)?);
        request.metadata_mut().insert("authorization", value(header)?);
        Ok(request)
    }
}

pub type AdminClient = StrataAdminClient<InterceptedService<Channel, Signer>>;

pub async fn admin_client(target: &Target) -> Result<AdminClient, BoxError> {
    connect(&target.broker).await
}

pub async fn connect(target: &Broker) -> Result<AdminClient, BoxError> {
    let url = crate::bench::endpoint_url(&target.endpoint);
    let mut endpoint = Channel::from_shared(url.clone())?;
    if url.starts_with("https://") {
        let tls = match &target.ca_cert {
            Some(path) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(path)?)),
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        endpoint = endpoint.tls_config(tls)?;
    }
    // Unreachable is UNAVAILABLE, like a broker that answers so: one exit code for both.
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("cannot reach the broker at {}: {e}", target.endpoint)))?;
    Ok(StrataAdminClient::with_interceptor(
        channel,
        Signer(target.credentials.clone()),
    ))
}
