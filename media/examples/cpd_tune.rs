//! The human/machine latency-accuracy trade-off on labelled directories: sweeps the two timers
//! of the classifier (`greeting_ms`, `after_greeting_silence_ms`) with the real engine and
//! prints, per setting, human-vs-machine accuracy, humans read as machines and the latencies,
//! pooled over every directory given (e.g. the project's corpus and the reference one):
//!
//! ```text
//! cargo run --release -p boomerang-media --example cpd_tune -- DIR [DIR...]
//! ```
//!
//! A contact centre runs the same on its own labelled calls to choose its settings.

use boomerang_media::cpd::CpdParams;
use boomerang_media::cpd::eval::score;
use boomerang_media::cpd::report::eval_dir;

fn main() {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        eprintln!("usage: cpd_tune DIR [DIR...]");
        return;
    }
    println!(
        "{:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "greeting", "silence", "h/m acc", "h as m", "human p50", "human p95", "mach p50", "mach p95"
    );
    for greeting in [1400u32, 1500, 1600, 1700, 1800, 2000] {
        for silence in [400u32, 500, 600, 700, 800] {
            let p = CpdParams {
                greeting_ms: greeting,
                after_greeting_silence_ms: silence,
                ..CpdParams::default()
            };
            let mut all = Vec::new();
            for d in &dirs {
                match eval_dir(std::path::Path::new(d), &p) {
                    Ok((_, outcomes, _)) => all.extend(outcomes),
                    Err(e) => {
                        eprintln!("{d}: {e}");
                        return;
                    }
                }
            }
            let r = score(&all);
            let (h50, h95) = r.latency.get("human").copied().unwrap_or((0, 0));
            let (m50, m95) = r.latency.get("machine").copied().unwrap_or((0, 0));
            println!(
                "{greeting:>8} {silence:>8} {:>7.1}% {:>7.1}% {h50:>9} {h95:>9} {m50:>9} {m95:>9}",
                r.hm_accuracy * 100.0,
                r.human_as_machine * 100.0
            );
        }
    }
}
