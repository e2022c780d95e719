//! `boomerang cpd analyze FILE... [--timeline]` and `boomerang cpd eval DIR`: call-progress
//! detection on recordings, for tuning CPD to a contact centre's own traffic.

use std::path::PathBuf;
use std::process::ExitCode;

use boomerang_media::cpd::CpdParams;
use boomerang_media::cpd::report::{analyse_file, eval_dir, result_json, timeline_chart};

#[derive(clap::Subcommand)]
pub enum CpdCommand {
    /// Analyse recordings: one JSON object per file and line (class, decision_ms, beep_ms,
    /// sit_code, evidence).
    Analyze {
        /// Audio files (WAV/FLAC/...; resampled to 8 kHz mono).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also print a readable per-100 ms chart of the analysis after each JSON line.
        #[arg(long)]
        timeline: bool,
        /// Override a parameter: `--set greeting_ms=1800` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Score CPD on a labelled directory: DIR/labels.csv holds `file,label,beep_at_ms`.
    Eval {
        /// Directory with labels.csv and the files it names.
        dir: PathBuf,
        /// Also print one line per misclassified file.
        #[arg(long)]
        errors: bool,
        /// Override a parameter: `--set greeting_ms=1800` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

fn params(set: &[String]) -> Result<CpdParams, String> {
    let mut p = CpdParams::default();
    for kv in set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--set {kv}: expected KEY=VALUE"))?;
        p.set(k, v)?;
    }
    Ok(p)
}

pub fn run(command: CpdCommand) -> ExitCode {
    let set = match &command {
        CpdCommand::Analyze { set, .. } | CpdCommand::Eval { set, .. } => set,
    };
    let params = match params(set) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        CpdCommand::Analyze { files, timeline, .. } => {
            let mut failed = 0;
            for path in &files {
                let name = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                match analyse_file(path, &params) {
                    Ok(cpd) => {
                        println!("{}", result_json(&name, &cpd));
                        if timeline {
                            print!("{}", timeline_chart(&cpd));
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: {}: {e}", path.display());
                    }
                }
            }
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        CpdCommand::Eval { dir, errors, .. } => match eval_dir(&dir, &params) {
            Ok((report, outcomes, problems)) => {
                for p in &problems {
                    eprintln!("warning: {p}");
                }
                if errors {
                    for o in &outcomes {
                        let want = boomerang_media::cpd::eval::expected_class(&o.label.label);
                        if want != Some(o.class) || o.label.beep_at_ms.is_some() != o.beep_ms.is_some() {
                            println!(
                                "miss: {} label {} beep {:?} -> {} at {} ms beep {:?}",
                                o.label.file,
                                o.label.label,
                                o.label.beep_at_ms,
                                o.class.as_str(),
                                o.decision_ms,
                                o.beep_ms
                            );
                        }
                    }
                }
                print!("{report}");
                if report.files == 0 {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
