//! `cargo run -p boomerang-media --example treatments_check -- FILE...`: what the server's
//! `boomerang treatments check` prints, for trying files without the server.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut ok = true;
    for arg in std::env::args().skip(1) {
        let report = boomerang_media::treatment::inspect(Path::new(&arg));
        println!("{report}\n");
        ok &= report.is_playable();
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
