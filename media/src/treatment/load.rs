//! Decoding treatment files: `hound` for PCM WAV, `symphonia` for everything else (G.711 or
//! ADPCM WAV, FLAC, MP3, Ogg Vorbis, AIFF).

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;

use super::TreatmentError;

/// Lowest accepted sample rate.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest accepted sample rate.
pub const MAX_SAMPLE_RATE: u32 = 96_000;
/// Longest accepted treatment.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
const MAX_CHANNELS: u32 = 8;

/// What a source file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFormat {
    /// Container, e.g. `WAV`.
    pub container: String,
    /// Codec or sample encoding, e.g. `PCM signed 16-bit`, `G.711 µ-law`, `FLAC`.
    pub codec: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u32,
    /// Bits per sample, when the format has a fixed one.
    pub bits_per_sample: Option<u32>,
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}, {} Hz, ", self.container, self.codec, self.sample_rate)?;
        match self.channels {
            1 => write!(f, "mono"),
            2 => write!(f, "stereo"),
            n => write!(f, "{n} channels"),
        }
    }
}

/// A decoded file: mono samples (nominal ±1.0) at the source rate, and what was seen on the
/// way (peak and clipping are measured on every channel before downmixing).
#[derive(Clone, Debug)]
pub struct DecodedAudio {
    /// Source format.
    pub format: SourceFormat,
    /// Mono samples (channels averaged), nominal range ±1.0.
    pub mono: Vec<f32>,
    /// Largest absolute sample over all channels.
    pub peak: f32,
    /// Samples (over all channels) at or beyond full scale.
    pub clipped: u64,
}

impl DecodedAudio {
    /// Duration at the source rate.
    pub fn duration(&self) -> Duration {
        let rate = u64::from(self.format.sample_rate.max(1));
        Duration::from_micros(self.mono.len() as u64 * 1_000_000 / rate)
    }
}

/// Downmixes interleaved frames, tracking peak and clipping.
struct Mixer {
    channels: usize,
    mono: Vec<f32>,
    peak: f32,
    clipped: u64,
    max_frames: usize,
}

/// A sample at or beyond this magnitude counts as clipped (full scale of 16-bit is 32767/32768).
const CLIP_LEVEL: f32 = 32766.5 / 32768.0;

impl Mixer {
    fn new(channels: u32, rate: u32, hint_frames: usize) -> Self {
        let max_frames = (MAX_DURATION.as_secs() * u64::from(rate)) as usize;
        Mixer {
            channels: channels.max(1) as usize,
            // The header's length is a hint only: a lying header must not reserve memory.
            mono: Vec::with_capacity(hint_frames.min(max_frames).min(1 << 20)),
            peak: 0.0,
            clipped: 0,
            max_frames,
        }
    }

    /// Push interleaved samples; false once the file is too long.
    fn push(&mut self, interleaved: &[f32]) -> bool {
        let inv = 1.0 / self.channels as f32;
        for frame in interleaved.chunks_exact(self.channels) {
            let mut sum = 0.0;
            for &s in frame {
                let a = if s.is_finite() { s.abs() } else { 0.0 };
                self.peak = self.peak.max(a);
                if a >= CLIP_LEVEL {
                    self.clipped += 1;
                }
                sum += if s.is_finite() { s } else { 0.0 };
            }
            self.mono.push(sum * inv);
        }
        self.mono.len() <= self.max_frames
    }
}

fn check_format(path: &Path, rate: u32, channels: u32) -> Result<(), TreatmentError> {
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        return Err(TreatmentError::SampleRate {
            path: path.to_path_buf(),
            rate,
        });
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(TreatmentError::Channels {
            path: path.to_path_buf(),
            channels,
        });
    }
    Ok(())
}

/// Decode a treatment file to mono samples at its own rate. Never panics on any file content.
pub fn decode(path: &Path) -> Result<DecodedAudio, TreatmentError> {
    let p = || path.to_path_buf();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TreatmentError::NotFound { path: p() });
        }
        Err(e) => {
            return Err(TreatmentError::Io { path: p(), source: e });
        }
    };
    if meta.is_dir() {
        return Err(TreatmentError::Unsupported {
            path: p(),
            reason: "is a directory".into(),
        });
    }
    if meta.len() == 0 {
        return Err(TreatmentError::Empty { path: p() });
    }
    let container = precheck(path, meta.len())?;
    let audio = match decode_wav_hound(path) {
        HoundOutcome::Decoded(r) => r?,
        HoundOutcome::NotForHound => decode_symphonia(path, container)?,
    };
    if audio.mono.is_empty() {
        return Err(TreatmentError::NoAudio { path: p() });
    }
    Ok(audio)
}

/// The container a file starts with; symphonia's reader for it is chosen from this, never by
/// its probe, which searches the whole file for any marker (and so ran into headers buried in
/// garbage, found by the fuzz target).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Container {
    Wav,
    Aiff,
    Flac,
    Ogg,
    /// MPEG audio starting at this offset (after an ID3v2 tag).
    Mp3(u64),
}

/// Looks at the start of a file before any decoder sees it.
///
/// - Only files that start like a format we decode are handed on.
/// - The sample rate and channel count of WAV (`fmt `) and AIFF (`COMM`) headers are checked
///   first: symphonia 0.5 panics on a 0 Hz rate (found by the `treatment_load` fuzz target),
///   and "sample rate 0 Hz" is a clearer error than "corrupt" anyway.
fn precheck(path: &Path, file_len: u64) -> Result<Container, TreatmentError> {
    use std::io::Read;
    let p = || path.to_path_buf();
    let mut head = Vec::with_capacity(4096);
    let file = File::open(path).map_err(|e| TreatmentError::Io { path: p(), source: e })?;
    file.take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| TreatmentError::Io { path: p(), source: e })?;
    let magic = head.get(0..4).unwrap_or_default();
    let mp3_sync = matches!(head.get(0..2), Some(&[0xFF, b]) if b & 0xE0 == 0xE0);
    let is_sync = |at: usize| matches!(head.get(at..at + 2), Some(&[0xFF, b]) if b & 0xE0 == 0xE0);
    match magic {
        b"RIFF" if head.get(8..12) == Some(b"WAVE") => {
            check_chunks(path, &head, false).map(|()| Container::Wav)
        }
        b"FORM" if matches!(head.get(8..12), Some(b"AIFF" | b"AIFC")) => {
            check_chunks(path, &head, true).map(|()| Container::Aiff)
        }
        b"RIFF" | b"FORM" => Err(TreatmentError::Unsupported {
            path: p(),
            reason: "a RIFF/IFF file that is not WAVE or AIFF".into(),
        }),
        b"fLaC" => check_flac(path, &head, file_len).map(|()| Container::Flac),
        b"OggS" => Ok(Container::Ogg),
        _ if mp3_sync => Ok(Container::Mp3(0)),
        _ if magic.starts_with(b"ID3") => {
            // ID3v2: 10-byte header (+10 with a footer), synchsafe size in bytes 6..10.
            let Some(h) = head.get(0..10) else {
                return Err(TreatmentError::Corrupt {
                    path: p(),
                    reason: "ID3 tag is truncated".into(),
                });
            };
            let size = h[6..10]
                .iter()
                .fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7F));
            let start = 10 + size + if h[5] & 0x10 != 0 { 10 } else { 0 };
            if start as u64 >= file_len {
                return Err(TreatmentError::NoAudio { path: p() });
            }
            if start + 2 <= head.len() && !is_sync(start) {
                return Err(TreatmentError::Unsupported {
                    path: p(),
                    reason: "no MPEG audio after the ID3 tag".into(),
                });
            }
            Ok(Container::Mp3(start as u64))
        }
        _ => Err(TreatmentError::Unsupported {
            path: p(),
            reason: "not a WAV, AIFF, FLAC, Ogg or MP3 file".into(),
        }),
    }
}

/// FLAC metadata blocks must fit in the file and a picture's length fields in its block:
/// symphonia 0.5 allocates whatever a picture header claims, gigabytes included (found by the
/// fuzz target). STREAMINFO's rate and channels are checked too.
fn check_flac(path: &Path, head: &[u8], file_len: u64) -> Result<(), TreatmentError> {
    let p = || path.to_path_buf();
    let mut at = 4usize;
    while let Some(h) = head.get(at..at + 4) {
        let (last, kind) = (h[0] & 0x80 != 0, h[0] & 0x7F);
        let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let body = at + 4;
        if (body + len) as u64 > file_len {
            return Err(TreatmentError::Corrupt {
                path: p(),
                reason: "FLAC metadata block runs past the end of the file".into(),
            });
        }
        if kind == 0 {
            let Some(si) = head.get(body..body + 18) else {
                return Err(TreatmentError::Corrupt {
                    path: p(),
                    reason: "FLAC STREAMINFO is truncated".into(),
                });
            };
            let rate = (u32::from(si[10]) << 12) | (u32::from(si[11]) << 4) | (u32::from(si[12]) >> 4);
            let channels = u32::from((si[12] >> 1) & 0x07) + 1;
            check_format(path, rate, channels)?;
        }
        if kind == 6 {
            // PICTURE: its inner length fields must fit in the block too.
            let field = |off: usize| {
                head.get(off..off + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            };
            let mut q = body + 4;
            for _ in 0..2 {
                let Some(n) = field(q) else { break };
                if n > len {
                    return Err(TreatmentError::Corrupt {
                        path: p(),
                        reason: "FLAC picture block is inconsistent".into(),
                    });
                }
                q += 4 + n;
            }
            if let Some(n) = field(q + 16) {
                if n > len {
                    return Err(TreatmentError::Corrupt {
                        path: p(),
                        reason: "FLAC picture block is inconsistent".into(),
                    });
                }
            }
        }
        if last {
            break;
        }
        at = body + len;
    }
    Ok(())
}

/// Walks the chunks of a RIFF (little-endian) or IFF (big-endian) header in `head`.
fn check_chunks(path: &Path, head: &[u8], big_endian: bool) -> Result<(), TreatmentError> {
    let p = || path.to_path_buf();
    let u16_at = |at: usize| {
        head.get(at..at + 2).map(|b| {
            if big_endian {
                u16::from_be_bytes([b[0], b[1]])
            } else {
                u16::from_le_bytes([b[0], b[1]])
            }
        })
    };
    let u32_at = |at: usize| {
        head.get(at..at + 4).map(|b| {
            let a = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        })
    };
    let truncated = |what: &str| TreatmentError::Corrupt {
        path: p(),
        reason: format!("{what} chunk is truncated"),
    };
    let mut at = 12usize;
    while let (Some(id), Some(len)) = (head.get(at..at + 4), u32_at(at + 4)) {
        let body = at + 8;
        if !big_endian && id == b"fmt " {
            let (Some(channels), Some(rate), Some(align)) =
                (u16_at(body + 2), u32_at(body + 4), u16_at(body + 12))
            else {
                return Err(truncated("fmt"));
            };
            check_format(path, rate, u32::from(channels))?;
            if align == 0 {
                return Err(TreatmentError::Corrupt {
                    path: p(),
                    reason: "fmt chunk has a block alignment of 0".into(),
                });
            }
            return Ok(());
        }
        if big_endian && id == b"COMM" {
            let (Some(channels), Some(rate)) = (u16_at(body), head.get(body + 8..body + 18)) else {
                return Err(truncated("COMM"));
            };
            // 80-bit IEEE extended: sign + 15-bit exponent, 64-bit mantissa.
            let exp = i32::from(u16::from_be_bytes([rate[0], rate[1]]) & 0x7FFF);
            let mut mantissa = 0u64;
            for &b in &rate[2..10] {
                mantissa = (mantissa << 8) | u64::from(b);
            }
            let hz = if rate[0] & 0x80 != 0 {
                0.0
            } else {
                mantissa as f64 * 2f64.powi(exp - 16383 - 63)
            };
            let hz = if hz.is_finite() && hz < f64::from(u32::MAX) {
                hz.round() as u32
            } else {
                u32::MAX
            };
            return check_format(path, hz, u32::from(channels));
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(len as usize).saturating_add(len as usize & 1);
    }
    Ok(())
}

enum HoundOutcome {
    Decoded(Result<DecodedAudio, TreatmentError>),
    NotForHound,
}

fn decode_wav_hound(path: &Path) -> HoundOutcome {
    let p = || path.to_path_buf();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            return HoundOutcome::Decoded(Err(TreatmentError::Io { path: p(), source: e }));
        }
    };
    let reader = match hound::WavReader::new(BufReader::new(file)) {
        Ok(r) => r,
        // Not RIFF/WAVE, or a WAVE codec hound does not do (G.711, ADPCM): symphonia's turn.
        Err(hound::Error::FormatError(_)) | Err(hound::Error::Unsupported) => {
            return HoundOutcome::NotForHound;
        }
        Err(hound::Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return HoundOutcome::Decoded(Err(TreatmentError::Corrupt {
                path: p(),
                reason: "header is truncated".into(),
            }));
        }
        Err(e) => {
            return HoundOutcome::Decoded(Err(TreatmentError::Corrupt {
                path: p(),
                reason: e.to_string(),
            }));
        }
    };
    HoundOutcome::Decoded(read_hound(path, reader))
}

fn read_hound<R: std::io::Read>(
    path: &Path,
    mut reader: hound::WavReader<R>,
) -> Result<DecodedAudio, TreatmentError> {
    let p = || path.to_path_buf();
    let spec = reader.spec();
    check_format(path, spec.sample_rate, u32::from(spec.channels))?;
    let frames = reader.duration() as usize;
    if frames as u64 > MAX_DURATION.as_secs() * u64::from(spec.sample_rate) {
        return Err(TreatmentError::TooLong { path: p() });
    }
    let (codec, valid) = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 8) => ("PCM unsigned 8-bit".to_string(), true),
        (hound::SampleFormat::Int, b @ (16 | 24 | 32)) => (format!("PCM signed {b}-bit"), true),
        (hound::SampleFormat::Float, 32) => ("PCM float 32-bit".to_string(), true),
        (fmt, b) => (format!("{fmt:?} {b}-bit"), false),
    };
    if !valid {
        return Err(TreatmentError::Unsupported {
            path: p(),
            reason: codec,
        });
    }
    let format = SourceFormat {
        container: "WAV".into(),
        codec,
        sample_rate: spec.sample_rate,
        channels: u32::from(spec.channels),
        bits_per_sample: Some(u32::from(spec.bits_per_sample)),
    };
    let mut mixer = Mixer::new(format.channels, spec.sample_rate, frames);
    let mut chunk: Vec<f32> = Vec::with_capacity(4096 * usize::from(spec.channels));
    let truncated = |e: hound::Error| match e {
        hound::Error::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            TreatmentError::Corrupt {
                path: p(),
                reason: "data chunk is truncated (file shorter than its header says)".into(),
            }
        }
        other => TreatmentError::Corrupt {
            path: p(),
            reason: other.to_string(),
        },
    };
    macro_rules! pump {
        ($ty:ty, $scale:expr) => {{
            for s in reader.samples::<$ty>() {
                let s = s.map_err(truncated)?;
                chunk.push(s as f32 * $scale);
                if chunk.len() >= 4096 * usize::from(spec.channels) {
                    if !mixer.push(&chunk) {
                        return Err(TreatmentError::TooLong { path: p() });
                    }
                    chunk.clear();
                }
            }
        }};
    }
    match (spec.sample_format, spec.bits_per_sample) {
        // hound returns 8-bit WAV samples already centred on zero.
        (hound::SampleFormat::Int, 8) => pump!(i8, 1.0 / 128.0),
        (hound::SampleFormat::Int, 16) => pump!(i16, 1.0 / 32768.0),
        (hound::SampleFormat::Int, 24) => pump!(i32, 1.0 / 8_388_608.0),
        (hound::SampleFormat::Int, _) => pump!(i32, 1.0 / 2_147_483_648.0),
        (hound::SampleFormat::Float, _) => pump!(f32, 1.0),
    }
    if !mixer.push(&chunk) {
        return Err(TreatmentError::TooLong { path: p() });
    }
    Ok(DecodedAudio {
        format,
        mono: mixer.mono,
        peak: mixer.peak,
        clipped: mixer.clipped,
    })
}

fn decode_symphonia(path: &Path, container: Container) -> Result<DecodedAudio, TreatmentError> {
    let owned: PathBuf = path.to_path_buf();
    // symphonia is written not to panic on bad input, but it is a large decoder; a panic in it
    // must not take a call (or the server) down, so it becomes a Corrupt error here.
    match std::panic::catch_unwind(move || decode_symphonia_inner(&owned, container)) {
        Ok(r) => r,
        Err(_) => Err(TreatmentError::Corrupt {
            path: path.to_path_buf(),
            reason: "the decoder failed on this file".into(),
        }),
    }
}

fn decode_symphonia_inner(path: &Path, container: Container) -> Result<DecodedAudio, TreatmentError> {
    use std::io::{Seek, SeekFrom};
    use symphonia::core::formats::FormatReader;
    use symphonia::default::formats::{AiffReader, FlacReader, MpaReader, OggReader, WavReader};
    let p = || path.to_path_buf();
    let mut file = File::open(path).map_err(|e| TreatmentError::Io { path: p(), source: e })?;
    if let Container::Mp3(start) = container {
        file.seek(SeekFrom::Start(start))
            .map_err(|e| TreatmentError::Io { path: p(), source: e })?;
    }
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let opts = FormatOptions::default();
    let opened: Result<Box<dyn FormatReader>, SymError> = match container {
        Container::Wav => WavReader::try_new(mss, &opts).map(|r| Box::new(r) as Box<dyn FormatReader>),
        Container::Aiff => AiffReader::try_new(mss, &opts).map(|r| Box::new(r) as Box<dyn FormatReader>),
        Container::Flac => FlacReader::try_new(mss, &opts).map(|r| Box::new(r) as Box<dyn FormatReader>),
        Container::Ogg => OggReader::try_new(mss, &opts).map(|r| Box::new(r) as Box<dyn FormatReader>),
        Container::Mp3(_) => MpaReader::try_new(mss, &opts).map(|r| Box::new(r) as Box<dyn FormatReader>),
    };
    let mut reader = opened.map_err(|e| match e {
        SymError::Unsupported(what) => TreatmentError::Unsupported {
            path: p(),
            reason: what.to_string(),
        },
        SymError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            TreatmentError::Corrupt {
                path: p(),
                reason: "file ends inside its header".into(),
            }
        }
        other => TreatmentError::Corrupt {
            path: p(),
            reason: other.to_string(),
        },
    })?;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| TreatmentError::Unsupported {
            path: p(),
            reason: "no audio track".into(),
        })?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let codec_name = symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map(|d| d.long_name.to_string())
        .unwrap_or_else(|| "unknown codec".into());
    let rate = params.sample_rate.ok_or_else(|| TreatmentError::Corrupt {
        path: p(),
        reason: "no sample rate".into(),
    })?;
    let channels = params.channels.map(|c| c.count() as u32).unwrap_or(1);
    check_format(path, rate, channels)?;
    if params
        .n_frames
        .is_some_and(|n| n > MAX_DURATION.as_secs() * u64::from(rate))
    {
        return Err(TreatmentError::TooLong { path: p() });
    }
    let container = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("wav" | "wave") => "WAV".to_string(),
        Some(e) => e.to_ascii_uppercase(),
        None => "audio".to_string(),
    };
    let format = SourceFormat {
        container,
        codec: codec_name,
        sample_rate: rate,
        channels,
        bits_per_sample: params.bits_per_sample,
    };
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| TreatmentError::Unsupported {
            path: p(),
            reason: e.to_string(),
        })?;
    let mut mixer = Mixer::new(channels, rate, params.n_frames.unwrap_or(0) as usize);
    let mut buf: Option<SampleBuffer<f32>> = None;
    let mut decode_errors = 0u32;
    loop {
        let packet = match reader.next_packet() {
            Ok(pk) => pk,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => {
                return Err(TreatmentError::Corrupt {
                    path: p(),
                    reason: e.to_string(),
                });
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(decoded) => {
                let spec = *decoded.spec();
                if spec.channels.count() as u32 != channels || spec.rate != rate {
                    return Err(TreatmentError::Unsupported {
                        path: p(),
                        reason: "format changes mid-stream".into(),
                    });
                }
                let needed = decoded.capacity() as u64;
                let sb = match &mut buf {
                    Some(b) if b.capacity() as u64 >= needed => b,
                    slot => slot.insert(SampleBuffer::new(needed, spec)),
                };
                sb.copy_interleaved_ref(decoded);
                if !mixer.push(sb.samples()) {
                    return Err(TreatmentError::TooLong { path: p() });
                }
            }
            Err(SymError::DecodeError(_)) => {
                decode_errors += 1;
                if decode_errors > 16 {
                    return Err(TreatmentError::Corrupt {
                        path: p(),
                        reason: "too many undecodable packets".into(),
                    });
                }
            }
            Err(e) => {
                return Err(TreatmentError::Corrupt {
                    path: p(),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(DecodedAudio {
        format,
        mono: mixer.mono,
        peak: mixer.peak,
        clipped: mixer.clipped,
    })
}
