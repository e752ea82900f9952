//! Logs and spans: text or JSON lines on stdout (`RUST_LOG` filters them), and, when an OTLP
//! endpoint is given, every span exported to that collector over OTLP/HTTP (protobuf).

use clap::ValueEnum;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// Crates whose INFO and DEBUG lines are noise at any level.
const QUIET: &str = "h2=warn,tower=warn,hyper=warn,sqlx=warn";

/// Changes the process's log filter at run time (the admin API's ChangeLogLevel).
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Sets the log level of every line from now on: `trace`, `debug`, `info`, `warn`, `error`
/// (the noisy libraries stay at `warn`).
pub fn set_level(level: &str) -> Result<(), String> {
    let handle = FILTER.get().ok_or("logging is not initialised")?;
    let filter = EnvFilter::try_new(format!("{level},{QUIET}")).map_err(|e| format!("{level:?}: {e}"))?;
    handle.reload(filter).map_err(|e| e.to_string())
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Keeps the span exporter alive; `shutdown` sends what is still batched.
pub struct Logging {
    spans: Option<SdkTracerProvider>,
}

impl Logging {
    /// Installs the process's subscriber. `otlp`: the collector's base URL
    /// (`http://host:4318`); spans go to `{otlp}/v1/traces`.
    pub fn init(format: LogFormat, otlp: Option<&str>) -> Result<Self, String> {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET}")));
        let (filter, handle) = reload::Layer::new(filter);
        let _ = FILTER.set(handle);
        let lines = tracing_subscriber::fmt::layer().with_target(false);
        let lines = match format {
            LogFormat::Text => lines.boxed(),
            LogFormat::Json => lines.json().boxed(),
        };
        let spans = match otlp {
            None => None,
            Some(base) => {
                let exporter = SpanExporter::builder()
                    .with_http()
                    .with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')))
                    .build()
                    .map_err(|e| format!("OTLP exporter for {base}: {e}"))?;
                Some(
                    SdkTracerProvider::builder()
                        .with_batch_exporter(exporter)
                        .with_resource(Resource::builder().with_service_name("strata").build())
                        .build(),
                )
            }
        };
        let export = spans
            .as_ref()
            .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("strata")));
        tracing_subscriber::registry()
            .with(filter)
            .with(lines)
            .with(export)
            .try_init()
            .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
        Ok(Self { spans })
    }

    /// Flushes batched spans to the collector (call outside the async runtime: it blocks).
    pub fn shutdown(self) {
        if let Some(p) = self.spans
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: spans not exported at shutdown: {e}");
        }
    }
}
