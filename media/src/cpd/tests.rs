//! Unit tests of the engine on synthesised signals.

use super::*;

const SR: f32 = 8000.0;

struct Sig(Vec<i16>);

impl Sig {
    fn new() -> Sig {
        Sig(Vec::new())
    }
    fn silence(mut self, ms: u32) -> Sig {
        self.0.extend(std::iter::repeat_n(0, (ms * 8) as usize));
        self
    }
    fn tone(mut self, freqs: &[f32], dbfs: f32, ms: u32) -> Sig {
        let amp = 10f32.powf(dbfs / 20.0) * 32767.0;
        let n0 = self.0.len();
        for i in 0..(ms * 8) as usize {
            let t = (n0 + i) as f32 / SR;
            let v: f32 = freqs
                .iter()
                .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                .sum();
            self.0.push((v * amp).clamp(-32768.0, 32767.0) as i16);
        }
        self
    }
    fn cadence(mut self, freqs: &[f32], pattern: &[u32], cycles: usize) -> Sig {
        for _ in 0..cycles {
            for (i, &ms) in pattern.iter().enumerate() {
                self = if i % 2 == 0 {
                    self.tone(freqs, -16.0, ms)
                } else {
                    self.silence(ms)
                };
            }
        }
        self
    }
    /// Speech-like: a buzz with a moving formant (a harmonic-rich, non-stationary signal),
    /// `ms` long, as syllables of 180 ms with 40 ms dips.
    fn speech(mut self, ms: u32, seed: u32) -> Sig {
        let mut rng = seed.wrapping_mul(2_654_435_761).max(1);
        let n0 = self.0.len();
        for i in 0..(ms * 8) as usize {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let t = i as f32 / SR;
            let f0 = 110.0 + 30.0 * (2.0 * std::f32::consts::PI * 3.0 * t).sin();
            let syl = (i / 8) % 220;
            let env = if syl < 180 { 1.0 } else { 0.1 };
            let mut v = 0.0;
            for h in 1..=20 {
                let fh = f0 * h as f32;
                let formant = 500.0 + 400.0 * (2.0 * std::f32::consts::PI * 2.0 * t).sin();
                let g = 1.0 / (1.0 + ((fh - formant) / 200.0).powi(2));
                v += g * (2.0 * std::f32::consts::PI * fh * (n0 + i) as f32 / SR).sin();
            }
            let noise = (rng as f32 / u32::MAX as f32 - 0.5) * 0.3;
            self.0.push(((v * 0.25 + noise * 0.2) * env * 8000.0) as i16);
        }
        self
    }
}

fn run(sig: &Sig) -> (Cpd, Vec<CpdEvent>) {
    let mut cpd = Cpd::new(CpdParams::default());
    let mut evs = Vec::new();
    for f in sig.0.chunks(160) {
        cpd.push(f);
        while let Some(e) = cpd.poll_event() {
            evs.push(e);
        }
    }
    cpd.finish();
    while let Some(e) = cpd.poll_event() {
        evs.push(e);
    }
    (cpd, evs)
}

fn decided(c: &Cpd) -> Decision {
    *c.decision().expect("decided")
}

#[test]
fn short_hello_then_silence_is_human_quickly() {
    let (c, evs) = run(&Sig::new().silence(400).speech(500, 1).silence(3000));
    let d = decided(&c);
    assert_eq!(d.class, Class::Human, "{d:?}");
    assert!(d.at_ms <= 400 + 500 + 700, "{d:?}");
    assert!(matches!(evs.first(), Some(CpdEvent::Decided(_))));
    assert_eq!(Class::Human.call_state(), Some(0));
}

#[test]
fn long_greeting_is_machine_then_beep_with_onset() {
    let sig = Sig::new()
        .silence(300)
        .speech(4000, 2)
        .silence(300)
        .tone(&[1000.0], -12.0, 500)
        .silence(1000);
    let (c, evs) = run(&sig);
    let d = decided(&c);
    assert_eq!(d.class, Class::Machine);
    assert!(d.at_ms <= 300 + 1800 + 300, "{d:?}");
    let b = c.beep().expect("beep");
    let onset = 300 + 4000 + 300;
    assert!(b.onset_ms.abs_diff(onset) <= 10, "{b:?}");
    assert!(b.at_ms - onset <= 120, "{b:?}");
    assert!(evs.iter().any(|e| matches!(e, CpdEvent::Beep(_))));
    assert_eq!(c.decision().and_then(|d| d.class.call_state()), Some(9));
}

#[test]
fn machine_without_beep_reports_greeting_end() {
    let (c, evs) = run(&Sig::new().silence(200).speech(3000, 3).silence(2500));
    assert_eq!(decided(&c).class, Class::Machine);
    assert!(c.beep().is_none());
    let at = evs.iter().find_map(|e| match e {
        CpdEvent::GreetingEnd { at_ms } => Some(*at_ms),
        _ => None,
    });
    assert!(
        at.is_some_and(|t| (3200 + 1500..=3200 + 1600).contains(&t)),
        "{at:?}"
    );
}

#[test]
fn fax_cng_and_ced_within_600_ms() {
    let (c, _) = run(&Sig::new().silence(500).cadence(&[1100.0], &[500, 3000], 2));
    let d = decided(&c);
    assert_eq!(d.class, Class::Fax);
    assert!(d.at_ms <= 500 + 600, "{d:?}");
    let (c, _) = run(&Sig::new().silence(200).tone(&[2100.0], -15.0, 3000));
    assert_eq!(decided(&c).class, Class::Fax);
    assert_eq!(decided(&c).rule, "fax_ced_2100hz");
    assert_eq!(Class::Fax.call_state(), Some(17));
}

#[test]
fn fax_cng_with_lost_packets_is_still_fax() {
    // a 500 ms CNG burst with two packets lost (played out as zeros) and one 40 ms gap
    let sig = Sig::new()
        .silence(400)
        .tone(&[1100.0], -18.0, 120)
        .silence(20)
        .tone(&[1100.0], -18.0, 100)
        .silence(40)
        .tone(&[1100.0], -18.0, 100)
        .silence(20)
        .tone(&[1100.0], -18.0, 100)
        .silence(3000);
    let (c, _) = run(&sig);
    let d = decided(&c);
    assert_eq!(d.class, Class::Fax, "{d:?}");
    assert!(d.at_ms <= 400 + 600, "{d:?}");
}

#[test]
fn v21_preamble_is_fax() {
    let mut sig = Sig::new().silence(200);
    for i in 0..300 {
        // HDLC flags at 300 bd: mostly mark (1650) with space (1850) bits
        let f = if i % 8 == 0 || i % 8 == 7 { 1850.0 } else { 1650.0 };
        sig = sig.tone(&[f], -15.0, 3);
    }
    let (c, _) = run(&sig);
    assert_eq!(decided(&c).class, Class::Fax, "{:?}", c.decision());
}

#[test]
fn busy_plans_and_no_false_beep() {
    for (freqs, pat) in [
        (&[480.0, 620.0][..], &[500, 500][..]),
        (&[480.0, 620.0], &[250, 250]),
        (&[400.0], &[375, 375]),
        (&[425.0], &[500, 500]),
        (&[425.0], &[200, 200]),
    ] {
        let (c, _) = run(&Sig::new().silence(300).cadence(freqs, pat, 4));
        let d = decided(&c);
        assert_eq!(d.class, Class::Busy, "{freqs:?} {pat:?} {d:?}");
        let cycle: u32 = pat.iter().sum();
        assert!(d.at_ms <= 300 + 2 * cycle, "{d:?}");
        assert!(c.beep().is_none());
        assert_eq!(d.class.call_state(), Some(6));
    }
}

#[test]
fn ringback_plans_without_false_beeps() {
    for (freqs, pat) in [
        (&[440.0, 480.0][..], &[2000, 4000][..]),
        (&[400.0, 450.0], &[400, 200, 400, 2000]),
        (&[425.0], &[1000, 4000]),
    ] {
        let (c, _) = run(&Sig::new().silence(300).cadence(freqs, pat, 2));
        let d = decided(&c);
        assert_eq!(d.class, Class::Ringback, "{freqs:?} {d:?}");
        assert!(c.beep().is_none());
    }
}

#[test]
fn ringback_tone_after_speech_is_not_a_beep() {
    // The DESA-style false beep: 440+480 Hz after a voice.
    let sig = Sig::new()
        .silence(200)
        .speech(3000, 4)
        .silence(300)
        .tone(&[440.0, 480.0], -14.0, 2000);
    let (c, _) = run(&sig);
    assert_eq!(decided(&c).class, Class::Machine);
    assert!(c.beep().is_none(), "{:?}", c.beep());
}

#[test]
fn sit_codes() {
    let s = 274;
    let l = 380;
    for (f1, d1, f2, d2, code) in [
        (913.8, s, 1370.6, s, SitCode::Ic),
        (985.2, l, 1428.5, l, SitCode::Nc),
        (985.2, l, 1370.6, s, SitCode::Vc),
        (913.8, s, 1428.5, l, SitCode::Ro),
        (950.0, 330, 1400.0, 330, SitCode::Itu),
    ] {
        let f3 = if code == SitCode::Itu { 1800.0 } else { 1776.7 };
        let sig = Sig::new()
            .silence(300)
            .tone(&[f1], -14.0, d1)
            .tone(&[f2], -14.0, d2)
            .tone(&[f3], -14.0, l);
        let (c, _) = run(&sig.silence(2000));
        let d = decided(&c);
        assert_eq!((d.class, d.sit_code), (Class::Sit, Some(code)), "{d:?}");
        let third = 300 + d1 + d2;
        assert!(d.at_ms <= third + 150, "{d:?} third at {third}");
        assert!(c.evidence().tones().any(|t| t.kind == ToneKind::Sit));
    }
}

#[test]
fn dead_air_is_silence_never_machine_and_timeguard_defaults_to_human() {
    let (c, _) = run(&Sig::new().silence(6000));
    assert_eq!(decided(&c).class, Class::Silence);
    assert_eq!(decided(&c).at_ms, 4000);
    let p = CpdParams {
        timeguard_ms: Some(1000),
        ..CpdParams::default()
    };
    let sig = Sig::new().silence(3000);
    let mut cpd = Cpd::new(p);
    for f in sig.0.chunks(160) {
        cpd.push(f);
    }
    let d = *cpd.decision().expect("decided");
    assert_eq!(
        (d.class, d.rule, d.at_ms),
        (Class::Human, "call_timeguard_timeout", 1000)
    );
}

#[test]
fn dtmf_after_speech_is_no_beep() {
    let mut sig = Sig::new().silence(200).speech(2500, 5).silence(200);
    for (lo, hi) in [(697.0, 1209.0), (770.0, 1336.0), (852.0, 1477.0), (941.0, 1633.0)] {
        sig = sig.tone(&[lo, hi], -12.0, 120).silence(80);
    }
    let (c, _) = run(&sig.silence(1000));
    assert!(c.beep().is_none(), "{:?}", c.beep());
}

#[test]
fn bad_input_never_panics_and_is_defined() {
    let mut cpd = Cpd::new(CpdParams::default());
    cpd.push(&[]);
    cpd.push(&[i16::MAX; 7]);
    cpd.push(&[i16::MIN; 1000]);
    cpd.push_concealment(160);
    cpd.push_concealment(usize::MAX);
    let mut clipped = Vec::new();
    for i in 0..16000 {
        clipped.push(if (i / 4) % 2 == 0 { i16::MAX } else { i16::MIN });
    }
    cpd.push(&clipped);
    cpd.push(&[3000; 8000]); // DC
    cpd.finish();
    assert!(cpd.decision().is_some());
    assert!(cpd.evidence().odd_frames >= 3);
    assert!(cpd.evidence().lost_ms >= 20);
}

#[test]
fn concealment_inside_a_greeting_does_not_end_it() {
    let mut cpd = Cpd::new(CpdParams::default());
    let a = Sig::new().silence(300).speech(800, 7);
    let b = Sig::new().speech(1500, 8).silence(1000);
    for f in a.0.chunks(160) {
        cpd.push(f);
    }
    for _ in 0..40 {
        cpd.push_concealment(160); // 800 ms of lost packets: longer than the human silence
    }
    for f in b.0.chunks(160) {
        cpd.push(f);
    }
    assert_eq!(
        cpd.decision().map(|d| d.class),
        Some(Class::Machine),
        "{:?}",
        cpd.decision()
    );
}

#[test]
fn evidence_has_timeline_and_runs() {
    let (c, _) = run(&Sig::new().silence(500).speech(600, 9).silence(1500));
    let ev = c.evidence();
    assert!(ev.timeline().len() >= 10);
    let runs = ev.runs();
    assert_eq!(runs.first().map(|r| r.0), Some('.'));
    assert!(runs.iter().any(|r| r.0 == 'v'));
    assert!(ev.words >= 1 && ev.first_voice_ms.is_some());
}

#[test]
fn a_lost_packet_inside_a_beep_keeps_its_onset() {
    let sig = Sig::new().silence(300).speech(3000, 6).silence(400);
    let onset = sig.0.len() as u32 / 8;
    let sig = sig
        .tone(&[450.0], -12.0, 40)
        .silence(20)
        .tone(&[450.0], -12.0, 300)
        .silence(1000);
    let (c, _) = run(&sig);
    let b = c.beep().expect("beep");
    assert!(b.onset_ms.abs_diff(onset) <= 10, "{b:?} onset {onset}");
    assert!(b.at_ms - onset <= 120, "{b:?}");
}
