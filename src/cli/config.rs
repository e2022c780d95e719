//! `boomerang config check FILE` and `boomerang config default`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use boomerang::config::{Config, DEMO_TOML};

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file without starting the server.
    Check { file: PathBuf },
    /// Print the embedded demo configuration, a starting point for your own.
    Default,
}

pub fn run(command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Default => {
            print!("{DEMO_TOML}");
            ExitCode::SUCCESS
        }
        ConfigCommand::Check { file } => check(&file),
    }
}

fn check(file: &Path) -> ExitCode {
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
