//! Treatments: the prompts and music played to callers.
//!
//! A treatment is decoded from a file ([`load`]: PCM WAV 8..48 kHz and beyond, mono or
//! stereo, 8/16/24/32-bit integer or float, G.711 WAV, and FLAC/MP3/Ogg Vorbis/AIFF through
//! `symphonia`), downmixed to mono, resampled to 8 kHz with a windowed-sinc anti-aliasing
//! filter ([`resample`]) and encoded once to both G.711 laws. The result, a [`Treatment`], is
//! immutable and shared through `Arc` by the [`TreatmentCache`], so playing it to 10,000 calls
//! costs no decoding. A [`Player`] paces it out as RTP frames. [`parse_option`] reads the
//! option forms of spec 20 §2 (file name, `{"file": ..., "hints": {...}}`, `{}`), and
//! [`inspect()`] reports on a file for `boomerang treatments check`.

mod cache;
mod inspect;
mod load;
mod player;
pub mod resample;
mod spec;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cache::TreatmentCache;
pub use inspect::{InspectReport, Levels, inspect};
pub use load::{DecodedAudio, MAX_DURATION, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SourceFormat, decode};
pub use player::{MAX_FRAME_SAMPLES, PlayMode, Player, PlayerState};
pub use spec::{SpecError, TreatmentOption, TreatmentSource, TreatmentSpec, parse_option};

use crate::g711::Law;

/// Sample rate of every loaded treatment.
pub const TREATMENT_RATE: u32 = 8000;

/// Why a treatment could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TreatmentError {
    /// The file does not exist.
    #[error("{path}: no such file")]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: file is empty (0 bytes)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Not a format or codec we can decode.
    #[error("{path}: unsupported format: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// The file is damaged (truncated, inconsistent headers, undecodable data).
    #[error("{path}: corrupt or truncated: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Sample rate out of the supported range.
    #[error("{path}: sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz")]
    SampleRate {
        /// The file.
        path: PathBuf,
        /// Its sample rate.
        rate: u32,
    },
    /// Channel count out of the supported range.
    #[error("{path}: {channels} channels; 1 to 8 are supported")]
    Channels {
        /// The file.
        path: PathBuf,
        /// Its channel count.
        channels: u32,
    },
    /// Longer than [`MAX_DURATION`].
    #[error("{path}: longer than the {max} s a treatment may last", max = MAX_DURATION.as_secs())]
    TooLong {
        /// The file.
        path: PathBuf,
    },
    /// No audio samples at all.
    #[error("{path}: contains no audio")]
    NoAudio {
        /// The file.
        path: PathBuf,
    },
    /// The treatment names a URL this crate does not fetch.
    #[error(
        "{url}: remote treatments are not fetched by the media core; download it to the treatments folder"
    )]
    Remote {
        /// The URL.
        url: String,
    },
    /// A name that would leave the treatments folder.
    #[error("{name}: treatment names may not leave the treatments folder")]
    OutsideRoot {
        /// The name.
        name: String,
    },
}

impl TreatmentError {
    /// The file (or name or URL) the error is about.
    pub fn subject(&self) -> String {
        match self {
            TreatmentError::NotFound { path }
            | TreatmentError::Io { path, .. }
            | TreatmentError::Empty { path }
            | TreatmentError::Unsupported { path, .. }
            | TreatmentError::Corrupt { path, .. }
            | TreatmentError::SampleRate { path, .. }
            | TreatmentError::Channels { path, .. }
            | TreatmentError::TooLong { path }
            | TreatmentError::NoAudio { path } => path.display().to_string(),
            TreatmentError::Remote { url } => url.clone(),
            TreatmentError::OutsideRoot { name } => name.clone(),
        }
    }
}

/// A decoded, resampled and G.711-encoded treatment, ready to play. Immutable; share it
/// through `Arc`.
#[derive(Debug)]
pub struct Treatment {
    name: String,
    source: Option<SourceFormat>,
    pcm: Box<[i16]>,
    ulaw: Box<[u8]>,
    alaw: Box<[u8]>,
}

impl Treatment {
    /// Build a treatment from 8 kHz mono PCM (for example synthesised tones).
    pub fn from_pcm(name: impl Into<String>, pcm: Vec<i16>) -> Treatment {
        let ulaw = pcm.iter().map(|&s| Law::Ulaw.encode(s)).collect();
        let alaw = pcm.iter().map(|&s| Law::Alaw.encode(s)).collect();
        Treatment {
            name: name.into(),
            source: None,
            pcm: pcm.into_boxed_slice(),
            ulaw,
            alaw,
        }
    }

    /// Build a treatment from decoded audio: resample to 8 kHz, quantise, encode.
    pub fn from_decoded(name: impl Into<String>, audio: &DecodedAudio) -> Treatment {
        let resampled = resample::resample(&audio.mono, audio.format.sample_rate, TREATMENT_RATE);
        let pcm: Vec<i16> = resampled.iter().map(|&x| to_i16(x)).collect();
        let mut t = Treatment::from_pcm(name, pcm);
        t.source = Some(audio.format.clone());
        t
    }

    /// Name (the path it was loaded from, or the name it was given).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The format of the source file, when loaded from one.
    pub fn source_format(&self) -> Option<&SourceFormat> {
        self.source.as_ref()
    }

    /// The 8 kHz mono samples.
    pub fn pcm(&self) -> &[i16] {
        &self.pcm
    }

    /// The samples pre-encoded in `law`.
    pub fn encoded(&self, law: Law) -> &[u8] {
        match law {
            Law::Ulaw => &self.ulaw,
            Law::Alaw => &self.alaw,
        }
    }

    /// Number of 8 kHz samples.
    pub fn len_samples(&self) -> usize {
        self.pcm.len()
    }

    /// Duration.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.pcm.len() as u64 * 1_000_000 / u64::from(TREATMENT_RATE))
    }
}

/// Float sample (nominal ±1.0) to 16-bit, rounded and clipped.
pub(crate) fn to_i16(x: f32) -> i16 {
    let v = (x * 32768.0).round();
    if v.is_nan() {
        0
    } else {
        v.clamp(-32768.0, 32767.0) as i16
    }
}

/// Load a treatment file: decode, downmix, resample to 8 kHz, encode to both G.711 laws.
pub fn load(path: &Path) -> Result<Treatment, TreatmentError> {
    let audio = decode(path)?;
    Ok(Treatment::from_decoded(path.display().to_string(), &audio))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pcm_encodes_both_laws() {
        let t = Treatment::from_pcm("t", vec![0, 1000, -1000, 32767]);
        assert_eq!(
            t.encoded(Law::Ulaw),
            &[0xFF, Law::Ulaw.encode(1000), Law::Ulaw.encode(-1000), 0x80]
        );
        assert_eq!(t.encoded(Law::Alaw)[0], 0xD5);
        assert_eq!(t.len_samples(), 4);
        assert_eq!(t.duration(), Duration::from_micros(500));
        assert_eq!(to_i16(1.5), 32767);
        assert_eq!(to_i16(-1.5), -32768);
        assert_eq!(to_i16(f32::NAN), 0);
        assert_eq!(to_i16(0.5), 16384);
    }
}
