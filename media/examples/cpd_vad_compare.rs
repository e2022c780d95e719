//! Voice activity detection of the CPD engine against `webrtc-vad` (the issue's reference),
//! frame by frame, on espeak-ng speech with known ground truth:
//!
//! ```text
//! cargo run --release -p boomerang-media --example cpd_vad_compare
//! ```
//!
//! Each clip is 600 ms of line noise, an espeak-ng utterance (8 voices, 130-190 wpm, greetings
//! with pauses and short answers), 800 ms of noise, then white noise at the SNR of the row
//! (against the speech's active RMS) and a µ-law round trip. Ground truth per 20 ms frame: the
//! clean speech frame is within 30 dB of the clip's loudest frame (weak fricatives below that
//! are not counted either way: they are "don't care" frames). Scored: accuracy over the scored
//! frames, speech frames found (hit rate) and non-speech frames called speech (false alarms).
//! The engine's VAD is read through `Cpd::voice_now` (energy over an adaptive noise floor,
//! tones excluded); webrtc-vad runs in each of its four modes on the same frames.

use std::process::Command;

use boomerang_media::cpd::{Cpd, CpdParams};
use boomerang_media::g711::Law;
use webrtc_vad::{SampleRate, Vad, VadMode};

const TEXTS: [&str; 8] = [
    "Hello?",
    "Hello, this is Anna.",
    "Hi, you have reached the voicemail of John Miller. Please leave a message after the tone.",
    "Yes?",
    "Thank you for calling Acme Insurance. Our office is currently closed.",
    "Hello, who is this?",
    "Hey, it's Sam. You know what to do.",
    "Good morning. Smith residence.",
];
const VOICES: [&str; 8] = [
    "en-us",
    "en-gb",
    "en-us+f3",
    "en+m3",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-rp+f2",
    "en-us+f4",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn gauss(&mut self) -> f32 {
        let u1 = self.unit().max(1e-7);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }
}

fn speak(text: &str, voice: &str, speed: u32, tmp: &std::path::Path) -> Option<Vec<f32>> {
    let wav = tmp.join("vad.wav");
    let ok = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &speed.to_string(), "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let t = boomerang_media::treatment::load(&wav).ok()?;
    let v: Vec<f32> = t.pcm().iter().map(|&s| f32::from(s) / 32768.0).collect();
    let peak = v.iter().fold(0f32, |a, b| a.max(b.abs())).max(1e-6);
    Some(v.into_iter().map(|s| s * 0.3 / peak).collect())
}

#[derive(Default, Clone, Copy)]
struct Score {
    speech: u32,
    hits: u32,
    quiet: u32,
    false_alarms: u32,
}

impl Score {
    fn add(&mut self, truth: bool, said: bool) {
        if truth {
            self.speech += 1;
            self.hits += u32::from(said);
        } else {
            self.quiet += 1;
            self.false_alarms += u32::from(said);
        }
    }
    fn row(&self) -> String {
        let pc = |a: u32, b: u32| 100.0 * f64::from(a) / f64::from(b.max(1));
        format!(
            "{:>6.1}% {:>6.1}% {:>6.1}%",
            pc(
                self.hits + self.quiet - self.false_alarms,
                self.speech + self.quiet
            ),
            pc(self.hits, self.speech),
            pc(self.false_alarms, self.quiet)
        )
    }
}

fn main() {
    // `KEY=VALUE` arguments override engine parameters (e.g. voice_margin_db=4)
    let mut params = CpdParams::default();
    for kv in std::env::args().skip(1) {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("expected KEY=VALUE, got {kv}");
            return;
        };
        if let Err(e) = params.set(k, v) {
            eprintln!("{e}");
            return;
        }
    }
    let tmp = std::env::temp_dir().join(format!("cpd-vad-{}", std::process::id()));
    if std::fs::create_dir_all(&tmp).is_err() {
        eprintln!("cannot create {}", tmp.display());
        return;
    }
    let mut clips = Vec::new();
    for (i, text) in TEXTS.iter().enumerate() {
        for (j, voice) in VOICES.iter().enumerate().filter(|(j, _)| (i + j) % 2 == 0) {
            match speak(text, voice, 130 + 20 * ((i + j) as u32 % 4), &tmp) {
                Some(s) => clips.push(s),
                None => {
                    eprintln!("espeak-ng failed (install the Debian package espeak-ng)");
                    return;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    println!(
        "{} clips; frames scored where the truth is clear (see the header)\n",
        clips.len()
    );
    println!(
        "{:>8} | {:>22} | {:>22} | {:>22} | {:>22} | {:>22}",
        "SNR", "CPD engine", "webrtc-vad mode 0", "mode 1", "mode 2", "mode 3"
    );
    println!(
        "{:>8} | {}",
        "",
        [
            "   acc.    hit  false",
            "   acc.    hit  false",
            "   acc.    hit  false",
            "   acc.    hit  false",
            "   acc.    hit  false"
        ]
        .join(" | ")
    );
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mode = |i: usize| match i {
        0 => VadMode::Quality,
        1 => VadMode::LowBitrate,
        2 => VadMode::Aggressive,
        _ => VadMode::VeryAggressive,
    };
    for snr in [None, Some(30.0f32), Some(20.0), Some(15.0), Some(10.0)] {
        let mut ours = Score::default();
        let mut theirs = [Score::default(); 4];
        for clip in &clips {
            let mut clean = vec![0f32; 4800];
            clean.extend_from_slice(clip);
            clean.extend(std::iter::repeat_n(0.0, 6400));
            while clean.len() % 160 != 0 {
                clean.push(0.0);
            }
            let active: Vec<f32> = clip.iter().copied().filter(|s| s.abs() > 1e-3).collect();
            let p = active.iter().map(|s| s * s).sum::<f32>() / active.len().max(1) as f32;
            // line noise at -70 dBFS at least (a real line is never digitally silent)
            let sigma = match snr {
                Some(snr) => (p / 10f32.powf(snr / 10.0)).sqrt(),
                None => 10f32.powf(-70.0 / 20.0),
            };
            let noisy: Vec<i16> = clean
                .iter()
                .map(|&s| {
                    let v = ((s + sigma * rng.gauss()) * 32768.0)
                        .round()
                        .clamp(-32768.0, 32767.0) as i16;
                    Law::Ulaw.decode(Law::Ulaw.encode(v))
                })
                .collect();
            let frame_db: Vec<f32> = clean
                .chunks(160)
                .map(|f| 10.0 * (f.iter().map(|s| s * s).sum::<f32>() / 160.0 + 1e-12).log10())
                .collect();
            let top = frame_db.iter().fold(-200f32, |a, &b| a.max(b));
            let mut cpd = Cpd::new(params);
            let mut vads: Vec<Vad> = (0..4)
                .map(|i| Vad::new_with_rate_and_mode(SampleRate::Rate8kHz, mode(i)))
                .collect();
            for (k, frame) in noisy.chunks(160).enumerate() {
                cpd.push(frame);
                let said_ours = cpd.voice_now();
                let said: Vec<bool> = vads
                    .iter_mut()
                    .map(|v| v.is_voice_segment(frame).unwrap_or(false))
                    .collect();
                let db = frame_db.get(k).copied().unwrap_or(-200.0);
                // clear truth only: speech within 30 dB of the peak, silence more than 50 dB
                // below it; the frames between are weak fricatives and breath: not scored
                let truth = if db >= top - 30.0 {
                    true
                } else if db < top - 50.0 {
                    false
                } else {
                    continue;
                };
                ours.add(truth, said_ours);
                for (t, s) in theirs.iter_mut().zip(&said) {
                    t.add(truth, *s);
                }
            }
        }
        let name = snr.map_or("clean".to_string(), |s| format!("{s:.0} dB"));
        println!(
            "{name:>8} | {} | {} | {} | {} | {}",
            ours.row(),
            theirs[0].row(),
            theirs[1].row(),
            theirs[2].row(),
            theirs[3].row()
        );
    }
}
