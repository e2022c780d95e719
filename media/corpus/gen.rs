//! The project's CPD corpus generator (used by `examples/make_cpd_corpus.rs` and by the corpus
//! test `tests/cpd_corpus.rs`). Tones, noise, G.711 round trips and packet loss are synthesised
//! here in Rust; speech comes from espeak-ng (Debian package `espeak-ng`), resampled to 8 kHz by
//! the treatment loader. Deterministic: a fixed-seed xorshift drives every choice.
//!
//! Output: `DIR/<label>_<NNN>.wav` (8 kHz mono 16-bit) and `DIR/labels.csv` with
//! `file,label,beep_at_ms,sit_code` (the fourth column is an optional extension `cpd eval`
//! reads: the expected SIT code).

#![allow(dead_code)]

use std::f32::consts::PI;
use std::path::Path;
use std::process::Command;

use boomerang_media::g711::Law;

const SR: usize = 8000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % u64::from(hi - lo + 1)) as u32
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn gauss(&mut self) -> f32 {
        let u1 = self.unit().max(1e-7);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

fn ms(n: u32) -> usize {
    n as usize * SR / 1000
}

fn silence(buf: &mut Vec<f32>, dur_ms: u32) {
    buf.extend(std::iter::repeat_n(0.0, ms(dur_ms)));
}

/// Tones at `dbfs` each (peak), 5 ms raised-cosine edges.
fn tone(buf: &mut Vec<f32>, freqs: &[f32], dbfs: f32, dur_ms: u32) {
    let amp = 10f32.powf(dbfs / 20.0);
    let n = ms(dur_ms);
    let edge = ms(5).min(n / 2).max(1);
    let n0 = buf.len();
    for i in 0..n {
        let t = (n0 + i) as f32 / SR as f32;
        let v: f32 = freqs.iter().map(|f| (2.0 * PI * f * t).sin()).sum();
        let e = if i < edge {
            0.5 - 0.5 * (PI * i as f32 / edge as f32).cos()
        } else if i >= n - edge {
            0.5 - 0.5 * (PI * (n - i) as f32 / edge as f32).cos()
        } else {
            1.0
        };
        buf.push(v * amp * e);
    }
}

fn cadence(buf: &mut Vec<f32>, freqs: &[f32], dbfs: f32, pattern: &[u32], total_ms: u32) {
    let start = buf.len();
    'outer: loop {
        for (i, &d) in pattern.iter().enumerate() {
            if buf.len() - start >= ms(total_ms) {
                break 'outer;
            }
            if i % 2 == 0 {
                tone(buf, freqs, dbfs, d)
            } else {
                silence(buf, d)
            }
        }
    }
}

/// FSK at 300 bd (V.21 channel 2: mark 1650, space 1850) carrying HDLC flags.
fn v21_flags(buf: &mut Vec<f32>, dbfs: f32, dur_ms: u32) {
    let amp = 10f32.powf(dbfs / 20.0);
    let n = ms(dur_ms);
    let mut phase = 0f32;
    for i in 0..n {
        let bit = (i * 300 / SR) % 8; // 0x7E: 0 1 1 1 1 1 1 0
        let f = if bit == 0 || bit == 7 { 1850.0 } else { 1650.0 };
        phase += 2.0 * PI * f / SR as f32;
        buf.push(amp * phase.sin());
    }
}

fn dtmf(buf: &mut Vec<f32>, digit: usize, dbfs: f32) {
    let lo = [697.0, 770.0, 852.0, 941.0];
    let hi = [1209.0, 1336.0, 1477.0, 1633.0];
    tone(buf, &[lo[digit % 4], hi[(digit / 4) % 4]], dbfs, 100);
    silence(buf, 80);
}

/// Speech from espeak-ng at 8 kHz, peak normalised to `peak_dbfs`.
fn speak(
    text: &str,
    voice: &str,
    speed: u32,
    pitch: u32,
    peak_dbfs: f32,
    tmp: &Path,
) -> Result<Vec<f32>, String> {
    let wav = tmp.join("speech.wav");
    let out = Command::new("espeak-ng")
        .args([
            "-v",
            voice,
            "-s",
            &speed.to_string(),
            "-p",
            &pitch.to_string(),
            "-w",
        ])
        .arg(&wav)
        .arg(text)
        .output()
        .map_err(|e| format!("espeak-ng: {e} (install the Debian package espeak-ng)"))?;
    if !out.status.success() {
        return Err(format!(
            "espeak-ng failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let t = boomerang_media::treatment::load(&wav).map_err(|e| e.to_string())?;
    let pcm = t.pcm();
    // trim espeak's own leading/trailing silence
    let first = pcm.iter().position(|s| s.unsigned_abs() > 100).unwrap_or(0);
    let last = pcm
        .iter()
        .rposition(|s| s.unsigned_abs() > 100)
        .unwrap_or(pcm.len().saturating_sub(1));
    let v: Vec<f32> = pcm
        .get(first..=last)
        .unwrap_or(&[])
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let peak = v.iter().fold(0f32, |a, b| a.max(b.abs())).max(1e-6);
    let g = 10f32.powf(peak_dbfs / 20.0) / peak;
    Ok(v.into_iter().map(|s| s * g).collect())
}

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

const HUMAN: [&str; 14] = [
    "Hello?",
    "Hello?",
    "Hello.",
    "Yes?",
    "Hi.",
    "Hello, who is this?",
    "Yeah, hello?",
    "Good morning.",
    "Speaking.",
    "Hello, this is Anna.",
    "Hi there.",
    "Hello, Smith residence.",
    "Yes, hello?",
    "Hey.",
];

const MACHINE: [&str; 10] = [
    "Hi, you have reached the voicemail of John Miller. I am not available right now, please leave a message after the tone.",
    "Hello, this is Maria. Sorry I missed your call. Leave me a message and I will get back to you.",
    "The person you are calling is not available. Please leave your message after the tone. When you are finished, hang up.",
    "Thank you for calling Acme Insurance. Our office is currently closed. Please leave your name and number.",
    "Hey, it's Sam. You know what to do.",
    "You have reached five five five, one two three four. Please leave a message.",
    "Hi, this is Dave and Karen, we can't come to the phone right now, leave a message.",
    "Welcome to the voice mailbox of extension two hundred. Please record your message after the beep.",
    "Hello. You've reached the Johnson family. We're not home. Leave a message.",
    "Sorry, I can't take your call at the moment. Leave a message and I'll call you back.",
];

struct Post {
    snr_db: Option<f32>,
    law: Option<Law>,
    loss_pct: u32,
}

fn finish(mut x: Vec<f32>, post: &Post, rng: &mut Rng) -> Vec<i16> {
    // pad to whole 20 ms frames
    while x.len() % 160 != 0 {
        x.push(0.0);
    }
    if let Some(snr) = post.snr_db {
        // SNR against the RMS of the active (non-silent) part
        let active: Vec<f32> = x.iter().copied().filter(|s| s.abs() > 1e-3).collect();
        let p = active.iter().map(|s| s * s).sum::<f32>() / active.len().max(1) as f32;
        let sigma = (p / 10f32.powf(snr / 10.0)).sqrt().max(10f32.powf(-70.0 / 20.0));
        for s in &mut x {
            *s += sigma * rng.gauss();
        }
    }
    let mut out: Vec<i16> = x
        .iter()
        .map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    if let Some(law) = post.law {
        for s in &mut out {
            *s = law.decode(law.encode(*s));
        }
    }
    if post.loss_pct > 0 {
        for frame in out.chunks_mut(160) {
            if rng.range(0, 99) < post.loss_pct {
                frame.fill(0); // a lost packet, played out as silence
            }
        }
    }
    out
}

fn write_wav(path: &Path, pcm: &[i16]) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(|e| e.to_string())?;
    for &s in pcm {
        w.write_sample(s).map_err(|e| e.to_string())?;
    }
    w.finalize().map_err(|e| e.to_string())
}

/// Counts per class.
pub struct Sizes {
    /// Human answers.
    pub human: usize,
    /// Machine greetings.
    pub machine: usize,
    /// Each of CNG, CED.
    pub fax: usize,
    /// Busy/reorder files.
    pub busy: usize,
    /// SIT files.
    pub sit: usize,
    /// Ringback files.
    pub ringback: usize,
    /// Silence files.
    pub silence: usize,
}

impl Sizes {
    /// The default corpus (about 300 files, ~40 MB; a minute or two to generate).
    pub fn full() -> Sizes {
        Sizes {
            human: 80,
            machine: 80,
            fax: 16,
            busy: 30,
            sit: 30,
            ringback: 24,
            silence: 12,
        }
    }
}

/// Generate the corpus into `dir`. Returns the number of files.
pub fn generate(dir: &Path, seed: u64, sizes: &Sizes) -> Result<usize, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(".tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut labels = String::from("file,label,beep_at_ms,sit_code\n");
    let mut count = 0;
    let mut emit =
        |label: &str, idx: usize, pcm: &[i16], beep: Option<usize>, code: &str, labels: &mut String| {
            let name = format!("{label}_{idx:03}.wav");
            let beep = beep.map(|b| (b * 1000 / SR).to_string()).unwrap_or_default();
            labels.push_str(&format!("{name},{label},{beep},{code}\n"));
            count += 1;
            write_wav(&dir.join(&name), pcm)
        };
    // post-processing by index: clean, noisy 10..30 dB, mu-law, A-law, loss
    let post = |i: usize, rng: &mut Rng| Post {
        snr_db: match i % 4 {
            1 => Some(rng.range(10, 30) as f32),
            3 => Some(rng.range(15, 30) as f32),
            _ => None,
        },
        law: match i % 3 {
            1 => Some(Law::Ulaw),
            2 => Some(Law::Alaw),
            _ => None,
        },
        loss_pct: if i % 5 == 4 { rng.range(1, 3) } else { 0 },
    };
    let sp = |rng: &mut Rng, text: &str, peak: f32| -> Result<Vec<f32>, String> {
        let voice = *rng.pick(&VOICES);
        speak(text, voice, rng.range(130, 200), rng.range(30, 70), peak, &tmp)
    };
    for i in 0..sizes.human {
        let mut x = Vec::new();
        silence(&mut x, rng.range(100, 800));
        let text = *rng.pick(&HUMAN);
        let peak = -(rng.range(3, 20) as f32);
        x.extend(sp(&mut rng, text, peak)?);
        silence(&mut x, rng.range(1500, 2500));
        if i % 6 == 5 {
            x.extend(sp(&mut rng, "Hello?", peak)?); // "Hello? ... Hello?"
            silence(&mut x, 1000);
        }
        if i % 7 == 3 {
            for d in 0..3 {
                dtmf(&mut x, (i + d) % 16, -12.0);
            }
        }
        silence(&mut x, 500);
        let pcm = finish(x, &post(i, &mut rng), &mut rng);
        emit("human", i, &pcm, None, "", &mut labels)?;
    }
    let beep_hz = [
        1000.0, 1000.0, 850.0, 1400.0, 440.0, 2000.0, 700.0, 1200.0, 500.0, 1800.0,
    ];
    for i in 0..sizes.machine {
        let mut x = Vec::new();
        silence(&mut x, rng.range(100, 600));
        let text = *rng.pick(&MACHINE);
        let peak = -(rng.range(3, 18) as f32);
        x.extend(sp(&mut rng, text, peak)?);
        silence(&mut x, rng.range(150, 900));
        let mut beep = None;
        match i % 8 {
            7 => {
                // no beep: greeting, then DTMF and a 440+480 tone (the DESA false-beep case)
                for d in 0..3 {
                    dtmf(&mut x, (i + d) % 16, -10.0);
                }
                silence(&mut x, 300);
                tone(&mut x, &[440.0, 480.0], -14.0, 1500);
            }
            6 => {} // no beep at all
            _ => {
                beep = Some(x.len());
                let hz = beep_hz[i % beep_hz.len()];
                tone(&mut x, &[hz], -(rng.range(6, 20) as f32), rng.range(150, 1000));
            }
        }
        silence(&mut x, 2000);
        let pcm = finish(x, &post(i, &mut rng), &mut rng);
        emit("machine", i, &pcm, beep, "", &mut labels)?;
    }
    for i in 0..sizes.fax {
        let mut x = Vec::new();
        silence(&mut x, rng.range(0, 1500));
        let lvl = -(rng.range(8, 25) as f32);
        cadence(&mut x, &[1100.0], lvl, &[500, 3000], 7000);
        let pcm = finish(x, &post(i, &mut rng), &mut rng);
        emit("fax_cng", i, &pcm, None, "", &mut labels)?;
        let mut x = Vec::new();
        silence(&mut x, rng.range(0, 1500));
        let lvl = -(rng.range(8, 25) as f32);
        if i % 2 == 0 {
            tone(&mut x, &[2100.0], lvl, rng.range(2600, 4000));
        } else {
            for _ in 0..7 {
                tone(&mut x, &[2100.0], lvl, 450); // ANS with phase reversals every 450 ms
            }
        }
        silence(&mut x, 75);
        v21_flags(&mut x, lvl, 1000);
        let pcm = finish(x, &post(i, &mut rng), &mut rng);
        emit("fax_ced", i, &pcm, None, "", &mut labels)?;
    }
    let busy: [(&[f32], &[u32]); 10] = [
        (&[480.0, 620.0], &[500, 500]),
        (&[480.0, 620.0], &[250, 250]),
        (&[400.0], &[375, 375]),
        (&[400.0], &[400, 350, 225, 525]),
        (&[425.0], &[500, 500]),
        (&[425.0], &[480, 480]),
        (&[425.0], &[200, 200]),
        (&[450.0], &[350, 350]),
        (&[400.0], &[750, 750]),
        (&[425.0], &[250, 250]),
    ];
    for i in 0..sizes.busy {
        let (f, pat) = busy[i % busy.len()];
        let mut x = Vec::new();
        silence(&mut x, rng.range(0, 700));
        let lvl = -(rng.range(10, 26) as f32);
        cadence(&mut x, f, lvl, pat, 6000);
        let pcm = finish(x, &post(i, &mut rng), &mut rng);
        emit("busy", i, &pcm, None, "", &mut labels)?;
    }
    let sit: [(&str, f32, u32, f32, u32, f32); 5] = [
        ("IC", 913.8, 274, 1370.6, 274, 1776.7),
        ("NC", 985.2, 380, 1428.5, 380, 1776.7),
        ("VC", 985.2, 380, 1370.6, 274, 1776.7),
        ("RO", 913.8, 274, 1428.5, 380, 1776.7),
        ("ITU", 950.0, 330, 1400.0, 330, 1800.0),
    ];
    for i in 0..sizes.sit {
        let (code, f1, d1, f2, d2, f3) = sit[i % sit.len()];
        let mut x = Vec::new();
        silence(&mut x, rng.range(0, 800));
        let lvl = -(rng.range(10, 24) as f32);
        tone(&mut x, &[f1], lvl, d1);
        tone(&mut x, &[f2], lvl, d2);
        tone(&mut x, &[f3], lvl, if code == "ITU" { 330 } else { 380 });
        silence(&mut x, 1000);
        x.extend(sp(
            &mut rng,
            "The number you have dialed is not in service.",
            -8.0,
        )?);
        silence(&mut x, 500);
        let pcm = finish(x, &post(i, &mut rng), &mut rng);
        emit("sit", i, &pcm, None, code, &mut labels)?;
    }
    let ring: [(&[f32], &[u32]); 6] = [
        (&[440.0, 480.0], &[2000, 4000]),
        (&[400.0, 450.0], &[400, 200, 400, 2000]),
        (&[425.0], &[1000, 4000]),
        (&[440.0], &[1500, 3500]),
        (&[425.0], &[1500, 3000]),
        (&[400.0, 450.0], &[1000, 2000]),
    ];
    for i in 0..sizes.ringback {
        let (f, pat) = ring[i % ring.len()];
        let mut x = Vec::new();
        silence(&mut x, rng.range(0, 1000));
        let lvl = -(rng.range(10, 24) as f32);
        let cycle: u32 = pat.iter().sum();
        cadence(&mut x, f, lvl, pat, 2 * cycle);
        let pcm = finish(x, &post(i, &mut rng), &mut rng);
        emit("ringback", i, &pcm, None, "", &mut labels)?;
    }
    for i in 0..sizes.silence {
        let mut x = Vec::new();
        silence(&mut x, 6000);
        let p = Post {
            snr_db: None,
            law: if i % 2 == 0 { Some(Law::Ulaw) } else { None },
            loss_pct: 0,
        };
        let mut pcm = finish(x, &p, &mut rng);
        if i % 3 != 0 {
            // low-level line noise, -60..-50 dBFS RMS
            let sigma = 10f32.powf(-(rng.range(50, 60) as f32) / 20.0) * 32768.0;
            for s in &mut pcm {
                *s = s.saturating_add((sigma * rng.gauss()) as i16);
            }
        }
        emit("silence", i, &pcm, None, "", &mut labels)?;
    }
    std::fs::write(dir.join("labels.csv"), labels).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(count)
}
