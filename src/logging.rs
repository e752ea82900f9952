//! Logs and spans: text or JSON lines on stdout (`RUST_LOG` filters them), and, when an OTLP
//! endpoint is given, every span exported to that collector over OTLP/HTTP (protobuf).

use clap::ValueEnum;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,h2=warn,tower=warn,hyper=warn,sqlx=warn"));
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
