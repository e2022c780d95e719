//! Generate the project's labelled CPD corpus (needs espeak-ng):
//!
//! ```text
//! cargo run --release -p boomerang-media --example make_cpd_corpus -- OUTDIR [SEED]
//! boomerang cpd eval OUTDIR
//! ```

#[path = "../corpus/gen.rs"]
mod corpus;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: make_cpd_corpus OUTDIR [SEED]");
        return ExitCode::FAILURE;
    };
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    match corpus::generate(std::path::Path::new(&dir), seed, &corpus::Sizes::full()) {
        Ok(n) => {
            println!("{n} files and labels.csv written to {dir}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
