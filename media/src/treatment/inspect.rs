//! `boomerang treatments check`: what a treatment file holds and whether it will play.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Treatment, TreatmentError, decode, load::SourceFormat};

/// Below this level (dBFS) audio counts as silence for the leading/trailing measurements.
pub const SILENCE_DBFS: f64 = -50.0;

/// Level measurements of a file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Levels {
    /// Peak level over all channels, dBFS (−inf for digital silence).
    pub peak_dbfs: f64,
    /// RMS level of the mono mix, dBFS.
    pub rms_dbfs: f64,
    /// Samples at or beyond full scale, over all channels.
    pub clipped_samples: u64,
    /// Silence before the first sound.
    pub leading_silence: Duration,
    /// Silence after the last sound.
    pub trailing_silence: Duration,
}

/// What `treatments check` says about one file.
#[derive(Debug)]
pub struct InspectReport {
    /// The file.
    pub path: PathBuf,
    /// Its format, when it could be read.
    pub format: Option<SourceFormat>,
    /// Its duration at the source rate.
    pub duration: Option<Duration>,
    /// Levels, when it could be decoded.
    pub levels: Option<Levels>,
    /// Duration after conversion to 8 kHz G.711, or why it does not convert.
    pub conversion: Result<Duration, TreatmentError>,
    /// Things worth fixing that do not stop playback.
    pub warnings: Vec<String>,
}

impl InspectReport {
    /// True when the file converts and can be played.
    pub fn is_playable(&self) -> bool {
        self.conversion.is_ok()
    }
}

fn dbfs(x: f64) -> f64 {
    if x <= 0.0 {
        f64::NEG_INFINITY
    } else {
        20.0 * x.log10()
    }
}

fn samples_to_duration(n: usize, rate: u32) -> Duration {
    Duration::from_micros(n as u64 * 1_000_000 / u64::from(rate.max(1)))
}

/// Inspect a treatment file. Never panics; every problem ends up in the report.
pub fn inspect(path: &Path) -> InspectReport {
    let mut report = InspectReport {
        path: path.to_path_buf(),
        format: None,
        duration: None,
        levels: None,
        conversion: Ok(Duration::ZERO),
        warnings: Vec::new(),
    };
    let audio = match decode(path) {
        Ok(a) => a,
        Err(e) => {
            report.conversion = Err(e);
            return report;
        }
    };
    let rate = audio.format.sample_rate;
    let threshold = 10f64.powf(SILENCE_DBFS / 20.0) as f32;
    let first = audio.mono.iter().position(|x| x.abs() > threshold);
    let last = audio.mono.iter().rposition(|x| x.abs() > threshold);
    let sum_sq: f64 = audio.mono.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    let rms = (sum_sq / audio.mono.len().max(1) as f64).sqrt();
    let (leading, trailing) = match (first, last) {
        (Some(f), Some(l)) => (f, audio.mono.len() - 1 - l),
        _ => (audio.mono.len(), 0),
    };
    let levels = Levels {
        peak_dbfs: dbfs(f64::from(audio.peak)),
        rms_dbfs: dbfs(rms),
        clipped_samples: audio.clipped,
        leading_silence: samples_to_duration(leading, rate),
        trailing_silence: samples_to_duration(trailing, rate),
    };
    let w = &mut report.warnings;
    if levels.clipped_samples > 0 {
        w.push(format!(
            "{} samples are clipped at full scale",
            levels.clipped_samples
        ));
    } else if levels.peak_dbfs > -1.0 {
        w.push(format!(
            "peak {:.1} dBFS leaves no headroom; -3 dBFS or lower is safer",
            levels.peak_dbfs
        ));
    }
    if first.is_none() {
        w.push("the file is silent".to_string());
    } else if levels.rms_dbfs < -40.0 {
        w.push(format!("very quiet: RMS {:.1} dBFS", levels.rms_dbfs));
    }
    if first.is_some() && levels.leading_silence > Duration::from_secs(1) {
        w.push(format!(
            "{:.1} s of silence before the first sound",
            levels.leading_silence.as_secs_f64()
        ));
    }
    if first.is_some() && levels.trailing_silence > Duration::from_secs(2) {
        w.push(format!(
            "{:.1} s of silence at the end",
            levels.trailing_silence.as_secs_f64()
        ));
    }
    if rate != super::TREATMENT_RATE {
        w.push(format!("{rate} Hz: resampled to 8000 Hz at load"));
    }
    if audio.format.channels > 1 {
        w.push(format!(
            "{} channels: mixed down to mono at load",
            audio.format.channels
        ));
    }
    let converted = Treatment::from_decoded(path.display().to_string(), &audio);
    report.duration = Some(audio.duration());
    report.format = Some(audio.format);
    report.levels = Some(levels);
    report.conversion = Ok(converted.duration());
    report
}

fn fmt_db(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1} dBFS")
    } else {
        "-inf dBFS".to_string()
    }
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.path.display())?;
        if let Some(format) = &self.format {
            writeln!(f, "  format:    {format}")?;
        }
        if let Some(d) = self.duration {
            writeln!(f, "  duration:  {:.2} s", d.as_secs_f64())?;
        }
        if let Some(l) = &self.levels {
            writeln!(f, "  peak:      {}", fmt_db(l.peak_dbfs))?;
            writeln!(f, "  rms:       {}", fmt_db(l.rms_dbfs))?;
            writeln!(f, "  clipping:  {} samples", l.clipped_samples)?;
            writeln!(
                f,
                "  silence:   {:.2} s leading, {:.2} s trailing",
                l.leading_silence.as_secs_f64(),
                l.trailing_silence.as_secs_f64()
            )?;
        }
        match &self.conversion {
            Ok(d) => writeln!(f, "  converts:  ok, 8000 Hz mono G.711, {:.2} s", d.as_secs_f64())?,
            Err(e) => writeln!(f, "  converts:  NO: {e}")?,
        }
        for w in &self.warnings {
            writeln!(f, "  warning:   {w}")?;
        }
        write!(
            f,
            "  result:    {}",
            if self.is_playable() {
                "playable"
            } else {
                "NOT PLAYABLE"
            }
        )
    }
}
