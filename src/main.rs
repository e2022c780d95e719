//! The `boomerang` command: serve, and check configurations.

use std::path::PathBuf;
use std::process::ExitCode;

use boomerang::config::{Config, DEMO_TOML};
use boomerang::server::Server;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "boomerang",
    version,
    about = "Self-hosted contact-centre callback server"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default command).
    Serve {
        /// Configuration file; without it the embedded demo configuration is used.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file without starting the server.
    Check { file: PathBuf },
    /// Print the embedded demo configuration, a starting point for your own.
    Default,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => serve(config),
        Command::Config {
            command: ConfigCommand::Default,
        } => {
            print!("{DEMO_TOML}");
            ExitCode::SUCCESS
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => check(&file),
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            for warning in &config.warnings {
                println!("warning: {warning}");
            }
            println!(
                "{}: OK ({} services, {} calendars, {} users, {} warnings)",
                file.display(),
                config.services.len(),
                config.calendars.len(),
                config.users.len(),
                config.warnings.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config_file: Option<PathBuf>) -> ExitCode {
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
