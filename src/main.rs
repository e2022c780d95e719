//! The `boomerang` command: serve, check configurations, check treatment files.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

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
        command: cli::config::ConfigCommand,
    },
    /// Call-progress detection tools: analyse recordings, evaluate on a labelled corpus.
    Cpd {
        #[command(subcommand)]
        command: cli::cpd::CpdCommand,
    },
    /// Place one test call through a trunk; print its events as JSON lines.
    Call(cli::call::CallArgs),
    /// Treatment (audio file) tools.
    Treatments {
        #[command(subcommand)]
        command: cli::treatments::TreatmentsCommand,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => cli::serve::run(config),
        Command::Config { command } => cli::config::run(command),
        Command::Treatments { command } => cli::treatments::run(command),
        Command::Call(args) => cli::call::run(args),
        Command::Cpd { command } => cli::cpd::run(command),
    }
}
