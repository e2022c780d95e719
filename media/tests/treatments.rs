//! Loading, caching and inspecting treatment files generated in a temporary folder.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use boomerang_media::Time;
use boomerang_media::g711::Law;
use boomerang_media::treatment::{
    self, PlayMode, Player, TreatmentCache, TreatmentError, TreatmentOption, TreatmentSource, inspect,
    parse_option,
};

const TONE_HZ: f64 = 1000.0;
const SECONDS: f64 = 0.25;

fn tone(rate: u32, i: usize, amp: f64) -> f64 {
    amp * (2.0 * PI * TONE_HZ * i as f64 / f64::from(rate)).sin()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Int(u16),
    Float,
}

fn write_wav(path: &Path, rate: u32, channels: u16, kind: Kind, amp: f64) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: match kind {
            Kind::Int(b) => b,
            Kind::Float => 32,
        },
        sample_format: match kind {
            Kind::Int(_) => hound::SampleFormat::Int,
            Kind::Float => hound::SampleFormat::Float,
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let n = (f64::from(rate) * SECONDS) as usize;
    for i in 0..n {
        let x = tone(rate, i, amp);
        for _ in 0..channels {
            match kind {
                Kind::Int(8) => w.write_sample((x * 127.0).round() as i8).unwrap(),
                Kind::Int(16) => w.write_sample((x * 32767.0).round() as i16).unwrap(),
                Kind::Int(24) => w.write_sample((x * 8_388_607.0).round() as i32).unwrap(),
                Kind::Int(_) => w.write_sample((x * 2_147_483_647.0).round() as i32).unwrap(),
                Kind::Float => w.write_sample(x as f32).unwrap(),
            }
        }
    }
    w.finalize().unwrap();
}

/// Amplitude and phase-free match of the 1 kHz component of 8 kHz samples (middle half).
fn tone_amplitude(pcm: &[i16]) -> f64 {
    let mid = &pcm[pcm.len() / 4..3 * pcm.len() / 4];
    let (mut s, mut c) = (0.0, 0.0);
    for (i, &x) in mid.iter().enumerate() {
        let ph = 2.0 * PI * TONE_HZ * i as f64 / 8000.0;
        s += f64::from(x) * ph.sin();
        c += f64::from(x) * ph.cos();
    }
    2.0 * (s * s + c * c).sqrt() / mid.len() as f64 / 32768.0
}

#[test]
fn every_pcm_wav_variant_loads_to_8khz_mono() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for rate in [8000u32, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000] {
        for channels in [1u16, 2] {
            for kind in [
                Kind::Int(8),
                Kind::Int(16),
                Kind::Int(24),
                Kind::Int(32),
                Kind::Float,
            ] {
                let path = dir.path().join(format!("t_{rate}_{channels}_{kind:?}.wav"));
                write_wav(&path, rate, channels, kind, 0.5);
                let t = treatment::load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(t.len_samples(), (8000.0 * SECONDS) as usize, "{path:?}");
                let amp = tone_amplitude(t.pcm());
                assert!((amp - 0.5).abs() < 0.02, "{path:?}: amplitude {amp}");
                let f = t.source_format().unwrap();
                assert_eq!((f.sample_rate, f.channels), (rate, u32::from(channels)));
                // Both laws are pre-encoded from the same samples.
                assert_eq!(t.encoded(Law::Ulaw).len(), t.len_samples());
                assert_eq!(t.encoded(Law::Alaw)[100], Law::Alaw.encode(t.pcm()[100]));
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 70);
}

/// A WAV with a hand-written header: format tag, rate, channels, bits and data.
fn raw_wav(
    format_tag: u16,
    rate: u32,
    channels: u16,
    bits: u16,
    data: &[u8],
    claimed_data_len: u32,
) -> Vec<u8> {
    let block_align = channels * bits / 8;
    // Non-PCM formats carry an 18-byte fmt chunk (with cbSize), as sox writes them.
    let fmt_len: u32 = if format_tag == 1 { 16 } else { 18 };
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(20 + fmt_len + claimed_data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&fmt_len.to_le_bytes());
    v.extend_from_slice(&format_tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    if fmt_len == 18 {
        v.extend_from_slice(&0u16.to_le_bytes());
    }
    v.extend_from_slice(b"data");
    v.extend_from_slice(&claimed_data_len.to_le_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn g711_wav_files_decode_through_symphonia() {
    let dir = tempfile::tempdir().unwrap();
    for (tag, law) in [(7u16, Law::Ulaw), (6u16, Law::Alaw)] {
        let pcm: Vec<i16> = (0..2000).map(|i| (tone(8000, i, 0.5) * 32767.0) as i16).collect();
        let codes: Vec<u8> = pcm.iter().map(|&s| law.encode(s)).collect();
        let path = dir.path().join(format!("g711_{tag}.wav"));
        std::fs::write(&path, raw_wav(tag, 8000, 1, 8, &codes, codes.len() as u32)).unwrap();
        let t = treatment::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.len_samples(), 2000);
        // Re-encoding the decoded G.711 gives the same codes back.
        let same = t.encoded(law).iter().zip(&codes).filter(|(a, b)| a == b).count();
        assert!(same >= 1990, "{law:?}: {same} of 2000 codes identical");
        assert!(
            t.source_format().unwrap().codec.to_lowercase().contains("law"),
            "{:?}",
            t.source_format()
        );
    }
}

fn expect_err(path: &Path) -> TreatmentError {
    let e = treatment::load(path).expect_err("load must fail");
    assert!(
        e.to_string().contains(&path.display().to_string()),
        "error names the file: {e}"
    );
    assert!(!inspect(path).is_playable());
    e
}

#[test]
fn bad_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);

    assert!(matches!(
        expect_err(&p("missing.wav")),
        TreatmentError::NotFound { .. }
    ));

    std::fs::write(p("empty.wav"), b"").unwrap();
    assert!(matches!(
        expect_err(&p("empty.wav")),
        TreatmentError::Empty { .. }
    ));

    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(p("garbage.wav"), &garbage).unwrap();
    let e = expect_err(&p("garbage.wav"));
    assert!(
        matches!(
            e,
            TreatmentError::Unsupported { .. } | TreatmentError::Corrupt { .. }
        ),
        "{e}"
    );

    // Truncated data chunk: the header promises more than the file holds.
    write_wav(&p("good.wav"), 8000, 1, Kind::Int(16), 0.5);
    let good = std::fs::read(p("good.wav")).unwrap();
    std::fs::write(p("truncated.wav"), &good[..good.len() / 2 + 1]).unwrap();
    assert!(matches!(
        expect_err(&p("truncated.wav")),
        TreatmentError::Corrupt { .. }
    ));
    // Truncated inside the header.
    std::fs::write(p("short_header.wav"), &good[..30]).unwrap();
    let e = expect_err(&p("short_header.wav"));
    assert!(
        matches!(
            e,
            TreatmentError::Corrupt { .. } | TreatmentError::Unsupported { .. }
        ),
        "{e}"
    );

    // Absurd sample rates.
    let data = vec![0u8; 1600];
    std::fs::write(p("zero_hz.wav"), raw_wav(1, 0, 1, 16, &data, 1600)).unwrap();
    let e = expect_err(&p("zero_hz.wav"));
    assert!(
        matches!(
            e,
            TreatmentError::SampleRate { rate: 0, .. } | TreatmentError::Corrupt { .. }
        ),
        "{e}"
    );
    std::fs::write(p("1mhz.wav"), raw_wav(1, 1_000_000, 1, 16, &data, 1600)).unwrap();
    assert!(matches!(
        expect_err(&p("1mhz.wav")),
        TreatmentError::SampleRate { rate: 1_000_000, .. }
    ));

    // A header claiming an hour of audio.
    std::fs::write(p("long.wav"), raw_wav(1, 8000, 1, 16, &data, 8000 * 2 * 3600)).unwrap();
    assert!(matches!(
        expect_err(&p("long.wav")),
        TreatmentError::TooLong { .. }
    ));

    // Header only, no samples.
    std::fs::write(p("no_audio.wav"), raw_wav(1, 8000, 1, 16, &[], 0)).unwrap();
    assert!(matches!(
        expect_err(&p("no_audio.wav")),
        TreatmentError::NoAudio { .. }
    ));

    // A directory.
    std::fs::create_dir(p("dir.wav")).unwrap();
    assert!(matches!(
        expect_err(&p("dir.wav")),
        TreatmentError::Unsupported { .. }
    ));
}

#[test]
fn cache_shares_one_decoding_and_confines_names() {
    let dir = tempfile::tempdir().unwrap();
    write_wav(&dir.path().join("music.wav"), 16_000, 2, Kind::Int(16), 0.3);
    let cache = TreatmentCache::new(dir.path());
    let spec = match parse_option("GMSApplications/music.wav").unwrap() {
        TreatmentOption::Play(s) => s,
        other => panic!("{other:?}"),
    };
    let a = cache.get(&spec).unwrap();
    let b = cache.get(&spec).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(cache.len(), 1);
    // A name without an extension finds the .wav.
    let c = cache
        .get(&treatment::TreatmentSpec::new(TreatmentSource::Name(
            "music".into(),
        )))
        .unwrap();
    assert!(Arc::ptr_eq(&a, &c));
    assert!(cache.invalidate(&dir.path().join("music.wav")));
    let d = cache.get(&spec).unwrap();
    assert!(!Arc::ptr_eq(&a, &d));
    for bad in ["../etc/passwd", "a/../../b.wav", ""] {
        let e = cache.resolve(&TreatmentSource::Name(bad.into())).unwrap_err();
        assert!(matches!(e, TreatmentError::OutsideRoot { .. }), "{bad}: {e}");
    }
    assert!(matches!(
        cache.get(&treatment::TreatmentSpec::new(TreatmentSource::Url(
            "https://x/a.wav".into()
        ))),
        Err(TreatmentError::Remote { .. })
    ));
    // A missing file is an error and is not cached.
    assert!(
        cache
            .get(&treatment::TreatmentSpec::new(TreatmentSource::Name(
                "nope.wav".into()
            )))
            .is_err()
    );
    assert_eq!(cache.len(), 1);
    cache.clear();
    assert!(cache.is_empty());
}

#[test]
fn a_cached_treatment_plays_to_many_calls() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("prompt.wav");
    write_wav(&path, 8000, 1, Kind::Int(16), 0.5);
    let cache = TreatmentCache::new(dir.path());
    let t = cache.get_path(&path).unwrap();
    let mut players: Vec<Player> = (0..100)
        .map(|_| {
            Player::new(
                Arc::clone(&t),
                Law::Ulaw,
                PlayMode::Once,
                Duration::from_millis(20),
            )
        })
        .collect();
    let mut frames = 0;
    for p in &mut players {
        p.start(Time::ZERO);
        while let Some(f) = p.next_frame() {
            assert_eq!(f.len(), 160);
            frames += 1;
        }
    }
    // 0.25 s = 12.5 frames -> 13 per call.
    assert_eq!(frames, 100 * 13);
    assert_eq!(Arc::strong_count(&t), 102);
}

#[test]
fn inspect_reports_format_levels_silence_and_clipping() {
    let dir = tempfile::tempdir().unwrap();
    // 0.5 s silence, 1 s tone at -6 dBFS, 0.25 s silence, at 16 kHz stereo.
    let path = dir.path().join("prompt.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..28_000usize {
        let x = if (8000..24_000).contains(&i) {
            tone(16_000, i, 0.5)
        } else {
            0.0
        };
        let s = (x * 32767.0).round() as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    let r = inspect(&path);
    assert!(r.is_playable(), "{r}");
    let f = r.format.as_ref().unwrap();
    assert_eq!(
        (f.sample_rate, f.channels, f.bits_per_sample),
        (16_000, 2, Some(16))
    );
    assert_eq!(r.duration, Some(Duration::from_millis(1750)));
    let l = r.levels.unwrap();
    assert!((l.peak_dbfs - (-6.02)).abs() < 0.1, "{l:?}");
    assert!(
        (l.rms_dbfs - (-9.03 + 10.0 * (1.0f64 / 1.75).log10())).abs() < 0.2,
        "{l:?}"
    );
    assert_eq!(l.clipped_samples, 0);
    assert!((l.leading_silence.as_secs_f64() - 0.5).abs() < 0.01, "{l:?}");
    assert!((l.trailing_silence.as_secs_f64() - 0.25).abs() < 0.01, "{l:?}");
    assert_eq!(r.conversion.as_ref().unwrap(), &Duration::from_millis(1750));
    let text = r.to_string();
    for needle in [
        "16000 Hz",
        "stereo",
        "peak:",
        "rms:",
        "clipping:  0",
        "silence:",
        "converts:  ok",
        "playable",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }

    // A clipped float file.
    let hot = dir.path().join("hot.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(&hot, spec).unwrap();
    for i in 0..8000usize {
        w.write_sample(tone(8000, i, 1.5) as f32).unwrap();
    }
    w.finalize().unwrap();
    let r = inspect(&hot);
    assert!(r.is_playable());
    assert!(r.levels.unwrap().clipped_samples > 1000);
    assert!(r.levels.unwrap().peak_dbfs > 3.0);
    assert!(
        r.warnings.iter().any(|w| w.contains("clipped")),
        "{:?}",
        r.warnings
    );

    // Not playable: the report says why.
    let r = inspect(&dir.path().join("nope.wav"));
    assert!(!r.is_playable());
    let text = r.to_string();
    assert!(
        text.contains("NOT PLAYABLE") && text.contains("no such file"),
        "{text}"
    );
}
