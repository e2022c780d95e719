//! `boomerang serve [--config FILE]`: run the server until interrupted.

use std::path::PathBuf;
use std::process::ExitCode;

use boomerang::config::Config;
use boomerang::server::Server;

pub fn run(config_file: Option<PathBuf>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = match &config_file {
        Some(file) => match Config::load(file) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::demo(),
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let mut server = match Server::builder(config).start().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("boomerang listening on http://{}", server.local_addr());
        if let Some(t) = server.telephony() {
            println!("boomerang SIP on udp {}", t.local_addr());
        }
        tokio::select! {
            _ = server.wait() => {}
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted; shutting down");
                server.shutdown().await;
            }
        }
        ExitCode::SUCCESS
    })
}
