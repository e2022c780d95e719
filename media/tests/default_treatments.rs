//! The treatments shipped in `treatments/` are playable, telephone-ready and sensible.

use std::path::{Path, PathBuf};
use std::time::Duration;

use boomerang_media::treatment::{self, inspect};

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../treatments")
        .join(name)
}

#[test]
fn shipped_treatments_are_8khz_mono_16bit_and_clean() {
    let expected = [
        ("waiting_for_agent.wav", 29.0..31.0),
        ("all_agents_busy.wav", 4.0..20.0),
        ("call_fail_ans_machine.wav", 6.0..25.0),
        ("customer_connect.wav", 3.0..15.0),
    ];
    for (name, secs) in expected {
        let path = shipped(name);
        let r = inspect(&path);
        assert!(r.is_playable(), "{r}");
        let f = r.format.as_ref().unwrap();
        assert_eq!(
            (f.sample_rate, f.channels, f.bits_per_sample),
            (8000, 1, Some(16)),
            "{name}"
        );
        let d = r.duration.unwrap().as_secs_f64();
        assert!(secs.contains(&d), "{name}: {d} s");
        let l = r.levels.unwrap();
        assert_eq!(l.clipped_samples, 0, "{name}");
        assert!(
            l.peak_dbfs < -2.0 && l.peak_dbfs > -10.0,
            "{name}: peak {}",
            l.peak_dbfs
        );
        assert!(l.rms_dbfs > -30.0, "{name}: rms {}", l.rms_dbfs);
        assert!(l.leading_silence < Duration::from_secs(1), "{name}");
        assert!(r.warnings.is_empty(), "{name}: {:?}", r.warnings);
    }
}

#[test]
fn the_music_loops_without_a_click() {
    let t = treatment::load(&shipped("waiting_for_agent.wav")).unwrap();
    let pcm = t.pcm();
    let (first, last) = (pcm[0], pcm[pcm.len() - 1]);
    // The seam from the last sample back to the first is no bigger a step than the music
    // takes on its own.
    let seam = (i32::from(last) - i32::from(first)).abs();
    assert!(seam < 300, "seam step {seam}");
    // Both ends are quiet: faded.
    let edge = |s: &[i16]| s.iter().map(|&x| i32::from(x).abs()).max().unwrap_or(0);
    assert!(edge(&pcm[..40]) < 2000, "start {}", edge(&pcm[..40]));
    assert!(
        edge(&pcm[pcm.len() - 40..]) < 2000,
        "end {}",
        edge(&pcm[pcm.len() - 40..])
    );
}
