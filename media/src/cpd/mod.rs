//! Call-progress detection (CPD): who or what answered the call.
//!
//! Sans-IO: 8 kHz mono 16-bit samples are pushed in ([`Cpd::push`], any frame length;
//! [`Cpd::push_concealment`] for a jitter-buffer gap), events are polled out
//! ([`Cpd::poll_event`]). Time is the sample count: every event carries its time in ms from
//! the first sample pushed. The state is fixed-size (no allocation after [`Cpd::new`], none per
//! frame): see [`Cpd::STATE_BYTES`].
//!
//! Pipeline, per 20 ms block ([`tones::Bank::analyse`]): DC removal, energy and 5 ms envelope,
//! a Goertzel bank (call-progress 350..620 Hz, SIT Telcordia and ITU, fax 1100/2100 Hz and
//! V.21 1650/1850 Hz) with purity (share of the block's power), a noise-robust single-tone
//! estimator for beeps, then:
//! - fax: CNG, CED/ANS or V.21 held for [`CpdParams::fax_min_ms`] (gaps of up to 40 ms, a lost
//!   packet or a noise burst, bridged);
//! - SIT: three segments in the 914-985, 1371-1429 and 1777-1800 Hz groups, the code read from
//!   the first two frequencies (IC, NC, VC, RO, or ITU for 950/1400/1800);
//! - busy/reorder/ringback: debounced on/off cadence of the call-progress band matched against
//!   the national plans of [`cadence::PLANS`] (a tone already on at the answer counts as a
//!   tail, so busy and reorder are decided 1.5 cycles after the first tone onset);
//! - voice: energy above an adaptive noise floor in blocks that are not tonal;
//! - human vs machine: `app_amd`-style timing of the first utterance (speech span, words,
//!   silence after it), a beep after speech meaning machine;
//! - beep: a stable, flat-envelope pure tone (which rejects 440+480 Hz ringback and every
//!   dual tone: their envelope beats inside 5 ms sub-blocks), onset refined to 5 ms.
//!
//! Every decision comes with its [`Evidence`]: the per-100 ms energy/voice/tone timeline, the
//! tones heard with their times, and the rule and score that decided.

pub mod cadence;
pub mod eval;
pub mod report;
pub mod tones;

use cadence::{Cadence, CadenceKind, Plan};
use tones::{BLOCK, Bank, Features, SUBS};

/// Milliseconds per block.
const BLOCK_MS: u32 = 20;
/// Blocks per noise-floor bucket (0.8 s).
const FLOOR_BUCKET: u32 = 40;
/// Timeline slots kept (100 ms each): 60 s.
pub const TIMELINE_SLOTS: usize = 600;
/// Tone segments kept in the evidence.
pub const MAX_TONES: usize = 16;

/// What answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// A live person.
    Human,
    /// An answering machine or voicemail greeting.
    Machine,
    /// A fax (CNG, CED/ANS or V.21).
    Fax,
    /// Busy or reorder/congestion tone.
    Busy,
    /// Special information tone.
    Sit,
    /// Ringback (early media).
    Ringback,
    /// Dead air.
    Silence,
    /// Nothing could be decided.
    Unknown,
}

impl Class {
    /// Name used by the CLI and `labels.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Human => "human",
            Class::Machine => "machine",
            Class::Fax => "fax",
            Class::Busy => "busy",
            Class::Sit => "sit",
            Class::Ringback => "ringback",
            Class::Silence => "silence",
            Class::Unknown => "unknown",
        }
    }

    /// The seed's `_call_state` (spec 20 §2): human 0, busy 6, no answer 7 (ringback heard and
    /// never answered), silence 8, machine 9, fax 17. SIT (an error tone, spec 10 §7) and
    /// unknown have no code in the seed.
    pub fn call_state(self) -> Option<u8> {
        match self {
            Class::Human => Some(0),
            Class::Busy => Some(6),
            Class::Ringback => Some(7),
            Class::Silence => Some(8),
            Class::Machine => Some(9),
            Class::Fax => Some(17),
            Class::Sit | Class::Unknown => None,
        }
    }
}

/// The SIT code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SitCode {
    /// Intercept (913.8 / 1370.6 / 1776.7 Hz).
    Ic,
    /// No circuit (985.2 / 1428.5 / 1776.7 Hz).
    Nc,
    /// Vacant code (985.2 / 1370.6 / 1776.7 Hz).
    Vc,
    /// Reorder (913.8 / 1428.5 / 1776.7 Hz).
    Ro,
    /// ITU-T E.180 (950 / 1400 / 1800 Hz).
    Itu,
}

impl SitCode {
    /// "IC", "NC", "VC", "RO" or "ITU".
    pub fn as_str(self) -> &'static str {
        match self {
            SitCode::Ic => "IC",
            SitCode::Nc => "NC",
            SitCode::Vc => "VC",
            SitCode::Ro => "RO",
            SitCode::Itu => "ITU",
        }
    }
}

/// Parameters, from the service configuration; [`Default`] gives tuned values.
#[derive(Clone, Copy, Debug)]
pub struct CpdParams {
    /// Speech span (from the first voice, pauses shorter than `after_greeting_silence_ms`
    /// included) that means a machine greeting.
    pub greeting_ms: u32,
    /// Silence after a short utterance that means a person waiting for an answer.
    pub after_greeting_silence_ms: u32,
    /// Words in the first utterance that mean a machine.
    pub max_words: u8,
    /// Shortest voiced run that counts as a word.
    pub min_word_ms: u32,
    /// Silence that separates two words.
    pub between_words_silence_ms: u32,
    /// Dead air from the start that is reported as `silence`.
    pub silence_ms: u32,
    /// `_call_timeguard_timeout`: no decision by then means human. `None`: no bound.
    pub timeguard_ms: Option<u32>,
    /// Longest analysis; speech still going on then means machine, else unknown.
    pub max_analysis_ms: u32,
    /// Beep frequency range (Hz).
    pub beep_min_hz: f32,
    /// Beep frequency range (Hz).
    pub beep_max_hz: f32,
    /// Shortest beep.
    pub beep_min_ms: u32,
    /// How long after a machine decision a beep is still looked for.
    pub beep_wait_ms: u32,
    /// Silence after a machine greeting that is reported as `greeting_end`.
    pub greeting_end_silence_ms: u32,
    /// Voice threshold above the noise floor (dB); lower is more sensitive.
    pub voice_margin_db: f32,
    /// Quietest voice (dBFS).
    pub min_voice_db: f32,
    /// Quietest tone (dBFS).
    pub min_tone_db: f32,
    /// Fax tone duration before deciding.
    pub fax_min_ms: u32,
    /// Cadence tolerance, percent of each element (at least 60 ms).
    pub cadence_tolerance_pct: u32,
    /// National tone plans to match (default: all of [`cadence::PLANS`]).
    pub plans: &'static [Plan],
}

impl Default for CpdParams {
    fn default() -> Self {
        CpdParams {
            greeting_ms: 1800,
            after_greeting_silence_ms: 700,
            max_words: 5,
            min_word_ms: 100,
            between_words_silence_ms: 150,
            silence_ms: 4000,
            timeguard_ms: None,
            max_analysis_ms: 8000,
            beep_min_hz: 300.0,
            beep_max_hz: 3000.0,
            beep_min_ms: 80,
            beep_wait_ms: 30_000,
            greeting_end_silence_ms: 1500,
            voice_margin_db: 6.0,
            min_voice_db: -50.0,
            min_tone_db: -45.0,
            fax_min_ms: 300,
            cadence_tolerance_pct: 15,
            plans: cadence::PLANS,
        }
    }
}

impl CpdParams {
    /// Set one parameter by name (`greeting_ms=1800`, `timeguard_ms=none`, ...), as a service
    /// configuration or `cpd --set` gives it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
            v.trim().parse::<T>().map_err(|_| format!("bad number {v:?}"))
        }
        let ms = || num::<u32>(value);
        match key.trim() {
            "greeting_ms" => self.greeting_ms = ms()?,
            "after_greeting_silence_ms" => self.after_greeting_silence_ms = ms()?,
            "max_words" => self.max_words = num(value)?,
            "min_word_ms" => self.min_word_ms = ms()?,
            "between_words_silence_ms" => self.between_words_silence_ms = ms()?,
            "silence_ms" => self.silence_ms = ms()?,
            "timeguard_ms" | "_call_timeguard_timeout" => {
                self.timeguard_ms = if value.trim() == "none" { None } else { Some(ms()?) }
            }
            "max_analysis_ms" => self.max_analysis_ms = ms()?,
            "beep_min_hz" => self.beep_min_hz = num(value)?,
            "beep_max_hz" => self.beep_max_hz = num(value)?,
            "beep_min_ms" => self.beep_min_ms = ms()?,
            "beep_wait_ms" => self.beep_wait_ms = ms()?,
            "greeting_end_silence_ms" => self.greeting_end_silence_ms = ms()?,
            "voice_margin_db" => self.voice_margin_db = num(value)?,
            "min_voice_db" => self.min_voice_db = num(value)?,
            "min_tone_db" => self.min_tone_db = num(value)?,
            "fax_min_ms" => self.fax_min_ms = ms()?,
            "cadence_tolerance_pct" => self.cadence_tolerance_pct = ms()?,
            other => return Err(format!("unknown CPD parameter {other:?}")),
        }
        let finite = [
            self.beep_min_hz,
            self.beep_max_hz,
            self.voice_margin_db,
            self.min_voice_db,
            self.min_tone_db,
        ];
        if finite.iter().any(|v| !v.is_finite()) {
            return Err(format!("{key}: not a finite number"));
        }
        Ok(())
    }
}

/// A decision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// What answered.
    pub class: Class,
    /// When it was decided (ms from the start of analysis).
    pub at_ms: u32,
    /// The SIT code, for `Class::Sit`.
    pub sit_code: Option<SitCode>,
    /// The rule that fired.
    pub rule: &'static str,
    /// The measure the rule compared (ms of speech, ms of tone, ...).
    pub score: f32,
}

/// A beep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Beep {
    /// Onset (ms from the start of analysis).
    pub onset_ms: u32,
    /// When it was reported.
    pub at_ms: u32,
    /// Frequency (Hz).
    pub hz: f32,
}

/// Output of the engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CpdEvent {
    /// The class was decided (once).
    Decided(Decision),
    /// The greeting's beep (after a machine decision, or deciding machine).
    Beep(Beep),
    /// Silence after a machine greeting and no beep (yet).
    GreetingEnd {
        /// When (ms).
        at_ms: u32,
    },
}

/// Kinds of tones in the evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToneKind {
    /// 350..620 Hz call-progress band (busy, reorder, ringback).
    CallProgress,
    /// A SIT segment.
    Sit,
    /// 1100 Hz.
    FaxCng,
    /// 2100 Hz.
    FaxCed,
    /// 1650/1850 Hz.
    V21,
    /// A pure single tone (beep candidate).
    Pure,
}

impl ToneKind {
    /// Name in the evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            ToneKind::CallProgress => "call_progress",
            ToneKind::Sit => "sit",
            ToneKind::FaxCng => "fax_cng",
            ToneKind::FaxCed => "fax_ced",
            ToneKind::V21 => "v21",
            ToneKind::Pure => "pure",
        }
    }
}

/// A tone segment heard.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToneSeen {
    /// Kind.
    pub kind: ToneKind,
    /// Frequency (Hz; the strongest bank bin, or the estimate for pure tones).
    pub hz: f32,
    /// Start (ms).
    pub start_ms: u32,
    /// End (ms).
    pub end_ms: u32,
}

/// One 100 ms slot of the timeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// Loudest block (dBFS, -100 = digital silence).
    pub max_db: i8,
    /// Blocks with voice (0..=5).
    pub voice: u8,
    /// Blocks with a tone (0..=5).
    pub tone: u8,
    /// Blocks concealed (lost packets).
    pub lost: u8,
}

/// Why the engine decided what it did.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// Per-100 ms slots, `slots_used` of them.
    pub slots: [Slot; TIMELINE_SLOTS],
    /// Slots filled.
    pub slots_used: usize,
    /// Tone segments heard, `tones_used` of them (first [`MAX_TONES`]).
    pub tones: [Option<ToneSeen>; MAX_TONES],
    /// Tone segments beyond the first [`MAX_TONES`].
    pub tones_dropped: u32,
    /// Words counted in the first utterance.
    pub words: u8,
    /// Voiced ms.
    pub voiced_ms: u32,
    /// First voice (ms).
    pub first_voice_ms: Option<u32>,
    /// Noise floor (dBFS) at the decision.
    pub noise_floor_db: f32,
    /// Concealed (lost) ms.
    pub lost_ms: u32,
    /// Frames pushed whose length was not 160 samples (they are accepted).
    pub odd_frames: u32,
}

impl Evidence {
    fn new() -> Evidence {
        Evidence {
            slots: [Slot::default(); TIMELINE_SLOTS],
            slots_used: 0,
            tones: [None; MAX_TONES],
            tones_dropped: 0,
            words: 0,
            voiced_ms: 0,
            first_voice_ms: None,
            noise_floor_db: -100.0,
            lost_ms: 0,
            odd_frames: 0,
        }
    }

    /// The filled slots.
    pub fn timeline(&self) -> &[Slot] {
        self.slots.get(..self.slots_used).unwrap_or(&[])
    }

    /// The tones heard, in order.
    pub fn tones(&self) -> impl Iterator<Item = &ToneSeen> {
        self.tones.iter().flatten()
    }

    /// Run-length timeline: (state char, start ms, end ms, max dB) with '.' quiet, 'v' voice,
    /// 't' tone, 'x' lost. Allocates: for reports, not for the frame path.
    pub fn runs(&self) -> Vec<(char, u32, u32, i8)> {
        let mut out: Vec<(char, u32, u32, i8)> = Vec::new();
        for (i, s) in self.timeline().iter().enumerate() {
            let c = slot_char(s);
            let t = i as u32 * 100;
            match out.last_mut() {
                Some(last) if last.0 == c => {
                    last.2 = t + 100;
                    last.3 = last.3.max(s.max_db);
                }
                _ => out.push((c, t, t + 100, s.max_db)),
            }
        }
        out
    }
}

/// The state letter of a slot.
pub fn slot_char(s: &Slot) -> char {
    if s.lost >= 3 {
        'x'
    } else if s.tone >= 3 {
        't'
    } else if s.voice >= 2 {
        'v'
    } else {
        '.'
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct SitSeg {
    group: u8,
    votes: [u8; 3],
    blocks: u32,
    end_block: u32,
}

/// Blocks of a steady tone (fax), bridging up to [`ToneRun::MAX_GAP`] blocks without it (a
/// lost packet played out as zeros, a noise burst): the run holds, it does not grow.
#[derive(Clone, Copy, Debug, Default)]
struct ToneRun {
    run: u32,
    gap: u32,
}

impl ToneRun {
    const MAX_GAP: u32 = 2;

    fn step(&mut self, on: bool) {
        if on {
            self.run += 1;
            self.gap = 0;
        } else if self.run > 0 && self.gap < Self::MAX_GAP {
            self.gap += 1;
        } else {
            *self = ToneRun::default();
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct BeepTrack {
    run: u32,
    bridged: bool,
    hz_sum: f32,
    onset_sample: u64,
}

/// The CPD engine for one call leg.
#[derive(Clone, Debug)]
pub struct Cpd {
    p: CpdParams,
    bank: Bank,
    buf: [i16; BLOCK],
    fill: usize,
    blocks: u32,
    prev: Features,
    // voice
    floor_db: f32,
    floor_cur: f32,
    floor_prev: f32,
    floor_n: u32,
    voice_run: u32,
    silence_run: u32,
    quiet_run: u32,
    in_word: bool,
    word_len: u32,
    // tones
    cadence: Cadence,
    cng_run: ToneRun,
    ced_run: ToneRun,
    v21_run: ToneRun,
    sit: [SitSeg; 3],
    sit_cur: SitSeg,
    sit_gap: u32,
    beep: BeepTrack,
    tone_cur: Option<ToneSeen>,
    // results
    decision: Option<Decision>,
    beep_found: Option<Beep>,
    greeting_end: Option<u32>,
    finished: bool,
    events: [Option<CpdEvent>; 4],
    ev_head: usize,
    ev_len: usize,
    evidence: Evidence,
}

// The bound on per-channel state, checked at compile time.
const _: () = assert!(Cpd::STATE_BYTES <= 16 * 1024);

impl Cpd {
    /// Size of one engine (all of its state: it owns no heap memory).
    pub const STATE_BYTES: usize = std::mem::size_of::<Cpd>();

    /// A new engine; time 0 is the first sample pushed.
    pub fn new(params: CpdParams) -> Cpd {
        Cpd {
            p: params,
            bank: Bank::new(),
            buf: [0; BLOCK],
            fill: 0,
            blocks: 0,
            prev: Features {
                db: -100.0,
                ..Features::default()
            },
            floor_db: -100.0,
            floor_cur: f32::MAX,
            floor_prev: f32::MAX,
            floor_n: 0,
            voice_run: 0,
            silence_run: 0,
            quiet_run: 0,
            in_word: false,
            word_len: 0,
            cadence: Cadence::new(BLOCK_MS),
            cng_run: ToneRun::default(),
            ced_run: ToneRun::default(),
            v21_run: ToneRun::default(),
            sit: [SitSeg::default(); 3],
            sit_cur: SitSeg::default(),
            sit_gap: 0,
            beep: BeepTrack::default(),
            tone_cur: None,
            decision: None,
            beep_found: None,
            greeting_end: None,
            finished: false,
            events: [None; 4],
            ev_head: 0,
            ev_len: 0,
            evidence: Evidence::new(),
        }
    }

    /// Push decoded samples (any length; 160 per 20 ms frame is usual).
    pub fn push(&mut self, samples: &[i16]) {
        if samples.len() != BLOCK {
            self.evidence.odd_frames = self.evidence.odd_frames.saturating_add(1);
        }
        for &s in samples {
            if let Some(slot) = self.buf.get_mut(self.fill) {
                *slot = s;
            }
            self.fill += 1;
            if self.fill >= BLOCK {
                self.fill = 0;
                let block = self.buf;
                let f = self.bank.analyse(&block);
                self.block(f, false);
            }
        }
    }

    /// A concealment frame from the jitter buffer: `samples` of a network gap (not silence).
    /// The analysis holds its state across the gap.
    pub fn push_concealment(&mut self, samples: usize) {
        let mut left = samples.min(8000 * 60);
        while left > 0 {
            let take = (BLOCK - self.fill).min(left);
            left -= take;
            self.fill += take;
            if self.fill >= BLOCK {
                self.fill = 0;
                let f = self.prev;
                self.block(f, true);
            }
        }
    }

    /// End of input: decide with what was heard (rule `end_of_input`).
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.decision.is_none() {
            let span = self.speech_span_ms();
            let class = if self.evidence.first_voice_ms.is_some() {
                if span >= self.p.greeting_ms {
                    Class::Machine
                } else {
                    Class::Human
                }
            } else if self.now_ms() >= self.p.silence_ms / 2 {
                Class::Silence
            } else {
                Class::Unknown
            };
            self.decide(class, None, "end_of_input", span as f32);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<CpdEvent> {
        if self.ev_len == 0 {
            return None;
        }
        let ev = self.events.get_mut(self.ev_head).and_then(Option::take);
        self.ev_head = (self.ev_head + 1) % self.events.len();
        self.ev_len -= 1;
        ev
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    /// The beep, once heard.
    pub fn beep(&self) -> Option<&Beep> {
        self.beep_found.as_ref()
    }

    /// When the greeting ended without a beep (machine only).
    pub fn greeting_end_ms(&self) -> Option<u32> {
        self.greeting_end
    }

    /// The parameters.
    pub fn params(&self) -> &CpdParams {
        &self.p
    }

    /// The evidence so far.
    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    /// Nothing more will be reported: decided, and (for a machine) the beep heard or no
    /// longer waited for.
    pub fn is_done(&self) -> bool {
        match &self.decision {
            None => self.finished,
            Some(d) if d.class == Class::Machine => {
                self.finished
                    || self.beep_found.is_some()
                    || self.now_ms() >= d.at_ms.saturating_add(self.p.beep_wait_ms)
            }
            Some(_) => true,
        }
    }

    /// Whether the last block analysed was voice (for tools that chart or learn from the
    /// engine's voice activity decisions).
    pub fn voice_now(&self) -> bool {
        self.voice_run > 0
    }

    /// Analysed time (ms).
    pub fn now_ms(&self) -> u32 {
        self.blocks.saturating_mul(BLOCK_MS)
    }

    fn emit(&mut self, ev: CpdEvent) {
        let n = self.events.len();
        if self.ev_len == n {
            // full: the oldest is dropped (a caller that never polls)
            self.ev_head = (self.ev_head + 1) % n;
            self.ev_len -= 1;
        }
        let at = (self.ev_head + self.ev_len) % n;
        if let Some(slot) = self.events.get_mut(at) {
            *slot = Some(ev);
        }
        self.ev_len += 1;
    }

    fn decide(&mut self, class: Class, sit_code: Option<SitCode>, rule: &'static str, score: f32) {
        if self.decision.is_some() {
            return;
        }
        self.close_tone();
        self.evidence.noise_floor_db = self.floor_db;
        let d = Decision {
            class,
            at_ms: self.now_ms(),
            sit_code,
            rule,
            score,
        };
        self.decision = Some(d);
        self.emit(CpdEvent::Decided(d));
    }

    fn speech_span_ms(&self) -> u32 {
        match self.evidence.first_voice_ms {
            Some(first) => {
                let end = self.now_ms().saturating_sub(self.silence_run * BLOCK_MS);
                end.saturating_sub(first)
            }
            None => 0,
        }
    }

    fn block(&mut self, f: Features, lost: bool) {
        let t0 = self.now_ms();
        self.blocks = self.blocks.saturating_add(1);
        let p = self.p;
        let loud = f.db >= p.min_tone_db;
        // --- tone labels
        let (cp_k, cp_top) = tones::top(&f.rel, 0..tones::CP_END);
        let cp_sum: f32 = f.rel.iter().take(tones::CP_END).sum();
        // (steadiness is checked per segment by the cadence tracker: level variance, solidity)
        let cp_on = loud && cp_top >= 0.35 && cp_sum >= 0.6;
        let (sit_k, sit_top) = tones::top(&f.rel, tones::CP_END..tones::SIT_END);
        let sit_on = loud && sit_top >= 0.5;
        let cng = loud && f.rel[tones::BIN_CNG] >= 0.6;
        let ced = loud && f.rel[tones::BIN_CED] >= 0.6;
        let v21 = loud && f.rel[tones::BIN_V21_MARK] + f.rel[tones::BIN_V21_SPACE] >= 0.5;
        let pure = !(self.decision.is_none() && (sit_on || cng || ced || v21 || cp_on))
            && f.db >= p.min_tone_db + 3.0
            && f.tone_purity >= 0.7
            && f.flatness <= 4.0
            && f.tone_hz >= p.beep_min_hz
            && f.tone_hz <= p.beep_max_hz;
        let toneish = cp_top >= 0.25 && (self.cadence.is_on() || cp_on);
        let tonal = cp_on || sit_on || cng || ced || v21 || pure || toneish;
        // --- voice and noise floor
        let voice = !lost && !tonal && f.db >= p.min_voice_db && f.db >= self.floor_db + p.voice_margin_db;
        // Digital silence (a lost packet played out as zeros, a muted line) says nothing about
        // the line noise: it neither lowers the floor nor counts.
        // Minimum statistics over two buckets of FLOOR_BUCKET blocks (0.8..1.6 s of history).
        if !lost && f.db > -95.0 {
            self.floor_cur = self.floor_cur.min(f.db);
            self.floor_n += 1;
            if self.floor_n >= FLOOR_BUCKET {
                self.floor_prev = self.floor_cur;
                self.floor_cur = f32::MAX;
                self.floor_n = 0;
            }
            self.floor_db = self.floor_prev.min(self.floor_cur);
        }
        // --- evidence: timeline and tone segments
        let tone_now = if cng {
            Some((ToneKind::FaxCng, 1100.0))
        } else if ced {
            Some((ToneKind::FaxCed, 2100.0))
        } else if v21 {
            Some((ToneKind::V21, 1750.0))
        } else if sit_on {
            Some((ToneKind::Sit, tones::BANK_HZ[sit_k]))
        } else if cp_on {
            Some((ToneKind::CallProgress, tones::BANK_HZ[cp_k]))
        } else if pure {
            Some((ToneKind::Pure, f.tone_hz))
        } else {
            None
        };
        self.track_tone(tone_now, t0);
        let slot_i = (t0 / 100) as usize;
        if let Some(slot) = self.evidence.slots.get_mut(slot_i) {
            if self.evidence.slots_used <= slot_i {
                self.evidence.slots_used = slot_i + 1;
                *slot = Slot {
                    max_db: -100,
                    ..Slot::default()
                };
            }
            slot.max_db = slot.max_db.max(f.db.clamp(-100.0, 10.0) as i8);
            slot.voice += u8::from(voice);
            slot.tone += u8::from(tone_now.is_some());
            slot.lost += u8::from(lost);
        }
        if lost {
            self.evidence.lost_ms = self.evidence.lost_ms.saturating_add(BLOCK_MS);
        }
        // --- words and silences
        if voice {
            self.evidence.voiced_ms = self.evidence.voiced_ms.saturating_add(BLOCK_MS);
            self.voice_run += 1;
            self.silence_run = 0;
            self.quiet_run = 0;
            if !self.in_word {
                self.in_word = true;
                self.word_len = 0;
            }
            self.word_len += 1;
            if self.word_len * BLOCK_MS == p.min_word_ms.max(BLOCK_MS) && self.decision.is_none() {
                self.evidence.words = self.evidence.words.saturating_add(1);
                if self.evidence.first_voice_ms.is_none() {
                    self.evidence.first_voice_ms =
                        Some((t0 + BLOCK_MS).saturating_sub(self.word_len * BLOCK_MS));
                }
            }
        } else if !lost {
            self.voice_run = 0;
            self.silence_run += 1;
            if self.silence_run * BLOCK_MS >= p.between_words_silence_ms {
                self.in_word = false;
            }
            if tonal {
                self.quiet_run = 0;
            } else {
                self.quiet_run += 1;
            }
        }
        // --- detectors
        self.cng_run.step(cng);
        self.ced_run.step(ced);
        self.v21_run.step(v21);
        if voice && self.word_len * BLOCK_MS >= p.min_word_ms {
            // a word between tones: whatever cadence was building is not a call-progress tone
            self.cadence.interrupt();
        }
        let plan = self.cadence.push(cp_on, f.db, p.cadence_tolerance_pct, p.plans);
        let sit = self.sit_block(sit_on, sit_k);
        self.beep_block(&f, pure, t0);
        self.prev = f;

        if self.decision.is_none() {
            self.rules(plan, sit);
        } else if let Some(d) = self.decision
            && d.class == Class::Machine
            && self.greeting_end.is_none()
            && self.beep_found.is_none()
            && self.silence_run * BLOCK_MS >= self.p.greeting_end_silence_ms
        {
            let at_ms = self.now_ms();
            self.greeting_end = Some(at_ms);
            self.emit(CpdEvent::GreetingEnd { at_ms });
        }
    }

    fn rules(&mut self, plan: Option<&'static Plan>, sit: Option<SitCode>) {
        let p = self.p;
        let fax_blocks = p.fax_min_ms.div_ceil(BLOCK_MS).max(1);
        let now = self.now_ms();
        if self.cng_run.run >= fax_blocks {
            return self.decide(
                Class::Fax,
                None,
                "fax_cng_1100hz",
                (self.cng_run.run * BLOCK_MS) as f32,
            );
        }
        if self.ced_run.run >= fax_blocks {
            return self.decide(
                Class::Fax,
                None,
                "fax_ced_2100hz",
                (self.ced_run.run * BLOCK_MS) as f32,
            );
        }
        if self.v21_run.run >= fax_blocks {
            return self.decide(
                Class::Fax,
                None,
                "fax_v21_preamble",
                (self.v21_run.run * BLOCK_MS) as f32,
            );
        }
        if let Some(code) = sit {
            return self.decide(Class::Sit, Some(code), "sit_three_segments", 3.0);
        }
        if let Some(plan) = plan {
            let class = match plan.kind {
                CadenceKind::Busy => Class::Busy,
                CadenceKind::Ringback => Class::Ringback,
            };
            return self.decide(class, None, plan.name, plan.min_match as f32);
        }
        if let Some(b) = self.beep_found {
            return self.decide(Class::Machine, None, "beep_after_speech", b.hz);
        }
        if self.evidence.words >= 1 {
            let span = self.speech_span_ms();
            let silence = self.silence_run * BLOCK_MS;
            if silence >= p.after_greeting_silence_ms && span < p.greeting_ms {
                return self.decide(Class::Human, None, "short_greeting_then_silence", span as f32);
            }
            if span >= p.greeting_ms && silence < p.after_greeting_silence_ms {
                return self.decide(Class::Machine, None, "long_greeting", span as f32);
            }
            if self.evidence.words >= p.max_words {
                return self.decide(Class::Machine, None, "max_words", f32::from(self.evidence.words));
            }
        } else if self.quiet_run * BLOCK_MS >= p.silence_ms && self.evidence.words == 0 {
            return self.decide(
                Class::Silence,
                None,
                "dead_air",
                (self.quiet_run * BLOCK_MS) as f32,
            );
        }
        if let Some(tg) = p.timeguard_ms
            && now >= tg
        {
            return self.decide(Class::Human, None, "call_timeguard_timeout", now as f32);
        }
        if now >= p.max_analysis_ms {
            let class = if self.evidence.first_voice_ms.is_some() {
                Class::Machine
            } else {
                Class::Unknown
            };
            self.decide(class, None, "max_analysis_time", now as f32);
        }
    }

    fn track_tone(&mut self, now: Option<(ToneKind, f32)>, t0: u32) {
        let same = match (&self.tone_cur, now) {
            (Some(cur), Some((k, hz))) => cur.kind == k && (cur.hz - hz).abs() <= cur.hz * 0.05 + 10.0,
            _ => false,
        };
        if same {
            if let Some(cur) = self.tone_cur.as_mut() {
                cur.end_ms = t0 + BLOCK_MS;
            }
            return;
        }
        self.close_tone();
        self.tone_cur = now.map(|(kind, hz)| ToneSeen {
            kind,
            hz,
            start_ms: t0,
            end_ms: t0 + BLOCK_MS,
        });
    }

    fn close_tone(&mut self) {
        let Some(cur) = self.tone_cur.take() else { return };
        if cur.end_ms.saturating_sub(cur.start_ms) < 3 * BLOCK_MS {
            return;
        }
        match self.evidence.tones.iter_mut().find(|t| t.is_none()) {
            Some(slot) => *slot = Some(cur),
            None => self.evidence.tones_dropped = self.evidence.tones_dropped.saturating_add(1),
        }
    }

    /// SIT: three segments (group 0: 913.8/950/985.2, 1: 1370.6/1400/1428.5, 2: 1776.7/1800).
    fn sit_block(&mut self, on: bool, k: usize) -> Option<SitCode> {
        let (group, idx) = match k {
            7..=9 => (0u8, k - 7),
            10..=12 => (1, k - 10),
            _ => (2, k.saturating_sub(13)),
        };
        let b = self.blocks;
        if on {
            if self.sit_cur.blocks > 0 && self.sit_cur.group != group {
                self.sit_push();
            }
            self.sit_gap = 0;
            self.sit_cur.group = group;
            self.sit_cur.blocks += 1;
            self.sit_cur.end_block = b;
            if let Some(v) = self.sit_cur.votes.get_mut(idx) {
                *v = v.saturating_add(1);
            }
        } else {
            self.sit_gap += 1;
            if self.sit_gap == 3 && self.sit_cur.blocks > 0 {
                self.sit_push();
            }
        }
        let c = self.sit_cur;
        let [_, s1, s2] = self.sit;
        let seg_ok = |s: &SitSeg| (8..=25).contains(&s.blocks); // 160..500 ms
        if c.group == 2
            && c.blocks >= 3
            && s1.group == 0
            && s2.group == 1
            && seg_ok(&s1)
            && seg_ok(&s2)
            && s2.end_block + 4 >= b.saturating_sub(c.blocks)
            && s1.end_block + 4 + s2.blocks >= s2.end_block
        {
            let f1 = argmax(&s1.votes);
            let f2 = argmax(&s2.votes);
            let code = match (f1, f2) {
                (1, _) | (_, 1) => SitCode::Itu,
                (0, 0) => SitCode::Ic,
                (2, 2) => SitCode::Nc,
                (2, 0) => SitCode::Vc,
                _ => SitCode::Ro,
            };
            return Some(code);
        }
        None
    }

    fn sit_push(&mut self) {
        self.sit[0] = self.sit[1];
        self.sit[1] = self.sit[2];
        self.sit[2] = self.sit_cur;
        self.sit_cur = SitSeg::default();
    }

    fn beep_block(&mut self, f: &Features, pure: bool, t0: u32) {
        if !pure {
            // One block of digital silence inside a beep is a lost packet played out as zeros
            // (a recording of a lossy call): bridge it, keeping the onset.
            if self.beep.run > 0 && f.db <= -99.0 && !self.beep.bridged {
                self.beep.bridged = true;
                return;
            }
            self.beep.run = 0;
            self.beep.bridged = false;
            return;
        }
        self.beep.bridged = false;
        let avg = if self.beep.run > 0 {
            self.beep.hz_sum / self.beep.run as f32
        } else {
            0.0
        };
        if self.beep.run > 0 && (f.tone_hz - avg).abs() <= (avg * 0.03).max(20.0) {
            self.beep.run += 1;
            self.beep.hz_sum += f.tone_hz;
        } else {
            // A new run: onset refined on the 5 ms envelope of this and the previous block.
            let steady = f.sub.iter().fold(0f32, |a, &b| a.max(b));
            let sub_samples = (BLOCK / SUBS) as u64;
            let start = u64::from(t0) * 8;
            let mut onset = start;
            let mut first_loud = 0;
            while first_loud < SUBS && f.sub.get(first_loud).is_some_and(|&s| s < 0.3 * steady) {
                first_loud += 1;
            }
            onset += first_loud as u64 * sub_samples;
            if first_loud == 0 {
                for &s in self.prev.sub.iter().rev() {
                    if s >= 0.3 * steady && s <= 3.0 * steady {
                        onset = onset.saturating_sub(sub_samples);
                    } else {
                        break;
                    }
                }
            }
            self.beep = BeepTrack {
                run: 1,
                bridged: false,
                hz_sum: f.tone_hz,
                onset_sample: onset,
            };
        }
        let need = self.p.beep_min_ms.div_ceil(BLOCK_MS).max(2);
        let allowed = self.evidence.words >= 1
            && self.beep_found.is_none()
            && match self.decision {
                None => true,
                Some(d) => {
                    d.class == Class::Machine && self.now_ms() <= d.at_ms.saturating_add(self.p.beep_wait_ms)
                }
            };
        if allowed && self.beep.run >= need {
            let b = Beep {
                onset_ms: (self.beep.onset_sample / 8) as u32,
                at_ms: self.now_ms(),
                hz: self.beep.hz_sum / self.beep.run as f32,
            };
            self.beep_found = Some(b);
            if self.decision.is_none() {
                self.decide(Class::Machine, None, "beep_after_speech", b.hz);
            }
            self.emit(CpdEvent::Beep(b));
        }
    }
}

fn argmax(v: &[u8; 3]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Run a whole recording through a fresh engine (the CLI and the corpus tests use this):
/// pushes 20 ms frames until the engine is done or the input ends, then `finish`.
pub fn analyse_pcm(samples: &[i16], params: &CpdParams) -> Cpd {
    let mut cpd = Cpd::new(*params);
    for frame in samples.chunks(BLOCK) {
        cpd.push(frame);
        if cpd.is_done() {
            break;
        }
    }
    cpd.finish();
    cpd
}

#[cfg(test)]
mod tests;
