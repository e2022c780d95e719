//! Inputs the fuzz targets found; each must give an error, not a panic.

use boomerang_media::treatment::{self, TreatmentError};

/// `treatment_load`: a PCM WAV with a 0 Hz sample rate and a misnamed data chunk, which hound
/// rejects and symphonia 0.5 panicked on (`TimeBase` with a zero denominator).
#[test]
fn zero_rate_wav_that_hound_rejects() {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF\xc8\x14\x02\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00");
    bytes.extend_from_slice(&[0, 0, 0, 0, 0x80, 1, 0, 0, 2, 0, 16, 0]);
    bytes.extend_from_slice(b"dat\x00");
    bytes.extend_from_slice(&[0u8; 40]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.wav");
    std::fs::write(&path, &bytes).unwrap();
    let e = treatment::load(&path).unwrap_err();
    assert!(matches!(e, TreatmentError::SampleRate { rate: 0, .. }), "{e}");
    assert!(!treatment::inspect(&path).is_playable());
}

/// `treatment_load`: a RIFF/WAVE header with a 0 Hz rate *inside* a file that does not start
/// with it; symphonia's probe searched for the marker and panicked on it.
#[test]
fn embedded_riff_header_with_zero_rate() {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(
        b"IFRF\xc0\x14\x02\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x06\x00\x01\x00\x40\x1f\x00\x00\x80\x01",
    );
    bytes.extend_from_slice(b"\x00\x00\x02\x00\x10");
    bytes.extend_from_slice(b"RIFF\xc8\x14\x02\x00WAVEfmt \x10\x00\x00\x00\x00\x01\x00\x02\x00\x00\x00\x00");
    bytes.extend_from_slice(&[0u8; 40]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash2.wav");
    std::fs::write(&path, &bytes).unwrap();
    let e = treatment::load(&path).unwrap_err();
    assert!(matches!(e, TreatmentError::Unsupported { .. }), "{e}");
}

/// AIFF with a 0 Hz rate in its COMM chunk is refused before symphonia sees it.
#[test]
fn aiff_with_zero_rate() {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"FORM\x00\x00\x00\x40AIFFCOMM\x00\x00\x00\x12");
    bytes.extend_from_slice(&[0, 1, 0, 0, 0, 16, 0, 16]);
    bytes.extend_from_slice(&[0u8; 10]); // rate 0.0
    bytes.extend_from_slice(&[0u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zero.aiff");
    std::fs::write(&path, &bytes).unwrap();
    let e = treatment::load(&path).unwrap_err();
    assert!(matches!(e, TreatmentError::SampleRate { rate: 0, .. }), "{e}");
}

/// `treatment_load`: a FLAC picture block claiming gigabytes; symphonia allocated it.
#[test]
fn flac_with_a_huge_picture_block() {
    let mut bytes = b"fLaC\x06\x00\xb9\xb9".to_vec();
    bytes.extend_from_slice(&[0xB9; 64]);
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0x3A, 0x48, 0x7D, 0x49, 0x01]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("picture.flac");
    std::fs::write(&path, &bytes).unwrap();
    let e = treatment::load(&path).unwrap_err();
    assert!(matches!(e, TreatmentError::Corrupt { .. }), "{e}");
}

/// `treatment_load`: MPEG sync bytes followed by a FLAC header with a huge picture; the
/// generic probe searched on and found the FLAC marker. Readers are now chosen by the magic
/// number at offset 0, so this is (at most) a broken MP3.
#[test]
fn mp3_sync_then_buried_flac_header() {
    let bytes = b"\xff\xef\x00\x00\xe0\x1dfLaC\x06\x00fLaC\x06\x00\xfa\xffOg".to_vec();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buried.mp3");
    std::fs::write(&path, &bytes).unwrap();
    assert!(treatment::load(&path).is_err());
}
