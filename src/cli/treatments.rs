//! `boomerang treatments check [PATH...]`: what a developer runs on custom treatment files
//! before configuring them. Prints, for each file, its format, duration, levels, clipping,
//! leading/trailing silence and whether it converts cleanly to 8 kHz G.711; exits non-zero when
//! any file cannot be played. A directory stands for the audio files in it; no path means the
//! shipped `treatments/` folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use boomerang_media::treatment::inspect;

#[derive(clap::Subcommand)]
pub enum TreatmentsCommand {
    /// Inspect treatment files (or the audio files of directories).
    Check { paths: Vec<PathBuf> },
}

const AUDIO_EXTENSIONS: [&str; 8] = ["wav", "wave", "flac", "mp3", "ogg", "oga", "aif", "aiff"];

pub fn run(command: TreatmentsCommand) -> ExitCode {
    let TreatmentsCommand::Check { paths } = command;
    let paths = if paths.is_empty() {
        vec![PathBuf::from("treatments")]
    } else {
        paths
    };
    let mut files = Vec::new();
    for path in &paths {
        expand(path, &mut files);
    }
    if files.is_empty() {
        eprintln!("error: no treatment files found in {}", show(&paths));
        return ExitCode::FAILURE;
    }
    let mut unplayable = 0;
    for file in &files {
        let report = inspect(file);
        println!("{report}");
        if !report.is_playable() {
            unplayable += 1;
        }
    }
    println!("{} file(s) checked, {unplayable} cannot be played", files.len());
    if unplayable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A file stands for itself (whatever its name: inspect says what it is); a directory for its
/// audio files, sorted.
fn expand(path: &Path, out: &mut Vec<PathBuf>) {
    match std::fs::read_dir(path) {
        Ok(entries) if path.is_dir() => {
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                })
                .collect();
            found.sort();
            out.extend(found);
        }
        _ => out.push(path.to_path_buf()),
    }
}
