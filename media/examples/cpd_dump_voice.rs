//! Dump the engine's per-20 ms voice decisions of every file of a labelled directory (one line
//! per file: `file label string` where the string has `v` for a voice block and `.` otherwise),
//! for studying utterance shapes: `cargo run --release -p boomerang-media --example
//! cpd_dump_voice -- DIR > voice.txt`.

use boomerang_media::cpd::eval::parse_labels;
use boomerang_media::cpd::{Cpd, CpdParams};

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: cpd_dump_voice DIR");
        return;
    };
    let dir = std::path::Path::new(&dir);
    let Ok(text) = std::fs::read_to_string(dir.join("labels.csv")) else {
        eprintln!("no labels.csv in {}", dir.display());
        return;
    };
    for l in parse_labels(&text).0 {
        let Ok(t) = boomerang_media::treatment::load(&dir.join(&l.file)) else {
            continue;
        };
        let mut cpd = Cpd::new(CpdParams::default());
        let mut s = String::new();
        for frame in t.pcm().chunks(160).take(400) {
            cpd.push(frame);
            s.push(if cpd.voice_now() { 'v' } else { '.' });
        }
        println!("{} {} {}", l.file, l.label, s);
    }
}
