//! Corpus test: generate the project's labelled CPD corpus (espeak-ng speech, tones synthesised
//! in Rust; deterministic, seed 1) into a temp dir and hold the targets with
//! `cpd eval`'s scoring. Needs the Debian package espeak-ng (test.sh installs it).
//!
//! Margins: each assertion compares against the target; the figure measured when the
//! test was written is recorded next to it (the margin is the difference).

#[path = "../corpus/gen.rs"]
mod corpus;

use boomerang_media::cpd::CpdParams;
use boomerang_media::cpd::report::eval_dir;

#[test]
fn corpus_holds_the_targets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = corpus::generate(dir.path(), 1, &corpus::Sizes::full())
        .expect("corpus generation (is espeak-ng installed?)");
    assert!(n >= 280, "{n} files");
    let (r, _outcomes, problems) = eval_dir(dir.path(), &CpdParams::default()).expect("eval");
    println!("{r}");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(r.files, n);

    // human vs machine: target >= 97 % (measured 100.0 %), human as machine <= 1 % (measured 0 %)
    assert!(r.hm_accuracy >= 0.97, "accuracy {}", r.hm_accuracy);
    assert!(
        r.human_as_machine <= 0.01,
        "human as machine {}",
        r.human_as_machine
    );

    // beep: recall >= 98.5 % (measured 100 %), onset error p95 <= 40 ms (measured 5 ms, max
    // 31 ms), every beep reported within 120 ms of its onset (measured max 111 ms), no false
    // beeps (ringback, busy, SIT and DTMF are all in the corpus; measured 0)
    assert!(r.beep_recall() >= 0.985, "beep recall {}", r.beep_recall());
    assert!(r.onset_error.1 <= 40, "onset error {:?}", r.onset_error);
    assert!(r.beep_delay.2 <= 120, "beep delay {:?}", r.beep_delay);
    assert_eq!(r.false_beeps, 0);

    // fax recall >= 99.5 % (measured 100 %); SIT >= 99 % detected (100 %), >= 97 % right code
    // (100 %); busy and ringback >= 99 % precision and recall (100 %)
    for (class, target) in [("fax", 0.995), ("sit", 0.99), ("busy", 0.99), ("ringback", 0.99)] {
        let (p, rc, _) = r.per_class[class];
        assert!(rc >= target, "{class} recall {rc}");
        if class == "busy" || class == "ringback" {
            assert!(p >= target, "{class} precision {p}");
        }
    }
    assert!(
        r.sit_codes.0 > 0 && r.sit_codes.1 * 100 >= r.sit_codes.0 * 97,
        "{:?}",
        r.sit_codes
    );
    // dead air is silence, never machine
    assert_eq!(r.confusion.get(&("silence", "machine")), None);

    // Latency: the targets (human p50 1.5 s / p95 2.5 s, machine p50 2.0 s / p95 3.5 s)
    // are NOT all met on this corpus (measured from the file start, leading silence included:
    // human p50 1760 / p95 2640 ms, machine p50 2280 / p95 2660 ms). Held here as regression
    // bounds with ~10 % margin; see BENCHMARKS.md.
    let (h50, h95) = r.latency["human"];
    let (m50, m95) = r.latency["machine"];
    assert!(h50 <= 1950 && h95 <= 2900, "human latency {h50}/{h95}");
    assert!(m50 <= 2500 && m95 <= 3500, "machine latency {m50}/{m95}");
    // busy/ringback within two cadence cycles (longest plan cycle 6 s; measured p95 2480 ms)
    assert!(r.latency["busy"].1 <= 3200 && r.latency["ringback"].1 <= 6000);
}
