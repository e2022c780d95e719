//! Non-WAV formats through symphonia: small fixtures made with sox (0.5 s of 1 kHz at 16 kHz,
//! amplitude 0.5).

use std::path::Path;

use boomerang_media::treatment;

fn check(name: &str, codec_hint: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let t = treatment::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let f = t.source_format().unwrap();
    assert_eq!(f.sample_rate, 16_000, "{name}");
    assert!(f.codec.to_lowercase().contains(codec_hint), "{name}: {f}");
    // Lossy codecs may add encoder delay/padding: allow ±0.1 s.
    let secs = t.len_samples() as f64 / 8000.0;
    assert!((secs - 0.5).abs() < 0.1, "{name}: {secs} s");
    // The 1 kHz tone survives at about the right level.
    let mid = &t.pcm()[1000..3000];
    let rms = (mid.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / mid.len() as f64).sqrt() / 32768.0;
    assert!((rms - 0.5 / 2f64.sqrt()).abs() < 0.05, "{name}: rms {rms}");
    assert!(treatment::inspect(&path).is_playable());
}

#[test]
fn flac() {
    check("tone_1khz.flac", "lossless");
}

#[test]
fn mp3() {
    check("tone_1khz.mp3", "mp");
}

#[test]
fn ogg_vorbis() {
    check("tone_1khz.ogg", "vorbis");
}

#[test]
fn aiff() {
    check("tone_1khz.aiff", "pcm");
}
