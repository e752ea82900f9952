//! `strata`: the StrataMQ broker and its admin CLI.

mod admin;
mod bench;
mod cli;
mod config;
mod connections;
mod drain;
mod front;
mod gate;
mod http;
mod logging;
mod metering;
mod remoting;
mod server;
mod trace;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    // Two TLS backends are linked (ring for gRPC, aws-lc for the S3 client): name the one
    // rustls uses by default, or it cannot choose and panics at the first handshake.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let logging = match logging::Logging::init(cli.log_format, cli.otlp_endpoint.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(cli::run(cli.command));
    drop(runtime);
    logging.shutdown();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A refused admin call: its code's name and the broker's reason, not tonic's
            // description of the code.
            match e.downcast_ref::<tonic::Status>() {
                Some(s) => eprintln!("error: {:?}: {}", s.code(), s.message()),
                None => eprintln!("error: {e}"),
            }
            std::process::ExitCode::from(cli::ExitCode::of(&e) as u8)
        }
    }
}
