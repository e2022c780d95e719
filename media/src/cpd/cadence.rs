//! Cadence matching of call-progress tones (busy, reorder/congestion, ringback) against the
//! national plans of `indications.conf`-style tables. The tracker sees one boolean per 20 ms
//! block ("a call-progress tone is on"), debounces it, and keeps the last completed on/off
//! segments in a fixed ring; a plan matches when its last `min_match` segments agree with a
//! cyclic stretch of the plan's pattern within tolerance. A tone already on when the analysis
//! starts is kept as a partial segment (its tail), which matches any element at least as long,
//! never on its own: busy and reorder are decided after tail, off, on (1.5 cycles).

/// What a matched plan means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CadenceKind {
    /// Busy, reorder or congestion.
    Busy,
    /// Ringback (audible ringing, early media).
    Ringback,
}

/// One national cadence: durations in ms, starting with an "on" element.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Short name, e.g. "us-busy".
    pub name: &'static str,
    /// Busy or ringback.
    pub kind: CadenceKind,
    /// on, off, on, off, ... in ms.
    pub pattern: &'static [u16],
    /// Completed segments that must match before deciding.
    pub min_match: usize,
}

const fn p(name: &'static str, kind: CadenceKind, pattern: &'static [u16], min_match: usize) -> Plan {
    Plan {
        name,
        kind,
        pattern,
        min_match,
    }
}

use CadenceKind::{Busy, Ringback};

/// The built-in national plans (ITU-T E.180 supplement and the usual PBX tables).
pub const PLANS: &[Plan] = &[
    p("us-busy", Busy, &[500, 500], 3),
    p("us-reorder", Busy, &[250, 250], 3),
    p("us-reorder-alt", Busy, &[300, 200], 3),
    p("uk-busy", Busy, &[375, 375], 3),
    p("uk-congestion", Busy, &[400, 350, 225, 525], 3),
    p("eu-busy", Busy, &[500, 500], 3),
    p("de-busy", Busy, &[480, 480], 3),
    p("eu-congestion", Busy, &[250, 250], 3),
    p("es-busy", Busy, &[200, 200], 3),
    p("ru-busy", Busy, &[400, 400], 3),
    p("cn-busy", Busy, &[350, 350], 3),
    p("in-busy", Busy, &[750, 750], 3),
    p("us-ringback", Ringback, &[2000, 4000], 1),
    p("uk-ringback", Ringback, &[400, 200, 400, 2000], 3),
    p("eu-ringback", Ringback, &[1000, 4000], 1),
    p("fr-ringback", Ringback, &[1500, 3500], 1),
    p("es-ringback", Ringback, &[1500, 3000], 1),
    p("jp-ringback", Ringback, &[1000, 2000], 1),
    p("ru-ringback", Ringback, &[800, 3200], 2),
];

const RING: usize = 8;
const DEBOUNCE: u32 = 2;

/// Debounced on/off tracker with the last completed segments.
#[derive(Clone, Debug)]
pub struct Cadence {
    on: bool,
    run: u32,
    pending: u32,
    started_at_zero: bool,
    partial_next_on: bool,
    db_sum: f32,
    db_sq: f32,
    db_n: u32,
    hits: u32,
    run_before: u32,
    /// (is_on, ms, partial) of completed segments, oldest first in ring order. A partial
    /// segment is the tone that was already on when the analysis started: only its tail was
    /// heard, so it matches any element at least as long.
    segs: [(bool, u32, bool); RING],
    nsegs: usize,
    head: usize,
    block_ms: u32,
}

impl Cadence {
    /// A tracker for blocks of `block_ms`.
    pub fn new(block_ms: u32) -> Cadence {
        Cadence {
            on: false,
            run: 0,
            pending: 0,
            started_at_zero: true,
            partial_next_on: false,
            db_sum: 0.0,
            db_sq: 0.0,
            db_n: 0,
            hits: 0,
            run_before: 0,
            segs: [(false, 0, false); RING],
            nsegs: 0,
            head: 0,
            block_ms,
        }
    }

    /// Forget the segments heard so far (speech came between them).
    pub fn interrupt(&mut self) {
        self.nsegs = 0;
    }

    /// Whether the tone is (debounced) on now.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Push one block (its level in dB feeds the steadiness check of "on" segments); returns
    /// the plan matched by this block's transition, if any.
    pub fn push(
        &mut self,
        tone_on: bool,
        db: f32,
        tolerance_pct: u32,
        plans: &'static [Plan],
    ) -> Option<&'static Plan> {
        if tone_on && self.on {
            self.db_sum += db;
            self.hits += 1;
            self.db_sq += db * db;
            self.db_n += 1;
        }
        if tone_on == self.on {
            self.run += 1 + self.pending;
            self.pending = 0;
            return None;
        }
        self.pending += 1;
        if self.pending < DEBOUNCE {
            return None;
        }
        // Transition: the segment that just ended is complete.
        let ended = (self.on, self.run * self.block_ms);
        self.run_before = self.run;
        if self.started_at_zero && ended.1 == 0 && tone_on {
            // a tone already on when the analysis started: only its tail is heard
            self.partial_next_on = true;
        }
        self.started_at_zero = false;
        self.on = tone_on;
        self.run = self.pending;
        self.pending = 0;
        if tone_on {
            // the debounce blocks of a new "on" segment were on: they count toward solidity
            self.hits = self.run;
        }
        let partial = ended.0 && std::mem::take(&mut self.partial_next_on);
        if ended.1 == 0 {
            return None;
        }
        if ended.0 {
            // A tone's level is steady; speech that looked tonal is not.
            let n = self.db_n.max(1) as f32;
            let mean = self.db_sum / n;
            let var = (self.db_sq / n - mean * mean).max(0.0);
            self.db_sum = 0.0;
            self.db_sq = 0.0;
            self.db_n = 0;
            let run = self.run_before;
            let solid = self.hits * 10 >= run * 8;
            self.hits = 0;
            if var > 9.0 || !solid {
                self.nsegs = 0;
                return None;
            }
        }
        if !ended.0 && self.nsegs == 0 {
            // leading silence before the first tone is not part of any cadence
            return None;
        }
        self.segs[self.head] = (ended.0, ended.1, partial);
        self.head = (self.head + 1) % RING;
        self.nsegs = (self.nsegs + 1).min(RING);
        plans.iter().find(|plan| self.matches(plan, tolerance_pct))
    }

    fn last(&self, back: usize) -> Option<(bool, u32, bool)> {
        if back >= self.nsegs {
            return None;
        }
        self.segs.get((self.head + RING - 1 - back) % RING).copied()
    }

    fn matches(&self, plan: &Plan, tolerance_pct: u32) -> bool {
        let n = plan.min_match;
        let len = plan.pattern.len();
        if n == 0 || n > self.nsegs || len == 0 {
            return false;
        }
        // The newest segment is at phase `ph`; walk back.
        'phase: for ph in 0..len {
            for back in 0..n {
                let idx = (ph + len * n - back) % len;
                let (Some((on, ms, partial)), Some(&want)) = (self.last(back), plan.pattern.get(idx)) else {
                    continue 'phase;
                };
                let want = u32::from(want);
                let fits = if partial {
                    // a tail alone says nothing: it needs complete segments with it
                    if n < 2 {
                        continue 'phase;
                    }
                    ms <= want + tolerance(want, tolerance_pct)
                } else {
                    close(ms, want, tolerance_pct)
                };
                if on != (idx % 2 == 0) || !fits {
                    continue 'phase;
                }
            }
            return true;
        }
        false
    }
}

fn tolerance(want: u32, tolerance_pct: u32) -> u32 {
    (want.saturating_mul(tolerance_pct) / 100).max(60)
}

fn close(got: u32, want: u32, tolerance_pct: u32) -> bool {
    got.abs_diff(want) <= tolerance(want, tolerance_pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pattern: &[(bool, u32)]) -> Option<(&'static str, u32)> {
        let mut c = Cadence::new(20);
        let mut t = 0;
        for &(on, ms) in pattern {
            for _ in 0..ms / 20 {
                t += 20;
                if let Some(p) = c.push(on, -20.0, 15, PLANS) {
                    return Some((p.name, t));
                }
            }
        }
        None
    }

    #[test]
    fn us_busy_decided_in_the_second_cycle() {
        let r = run(&[(false, 300), (true, 500), (false, 500), (true, 500), (false, 500)]);
        let (name, t) = r.expect("busy");
        assert!(PLANS.iter().any(|p| p.name == name && p.kind == Busy));
        assert!(t <= 300 + 2000, "{t}");
    }

    #[test]
    fn uk_busy_and_uk_ringback_differ() {
        let busy = run(&[(false, 200), (true, 380), (false, 380), (true, 380), (false, 380)]).expect("b");
        assert_eq!(
            PLANS.iter().find(|p| p.name == busy.0).map(|p| p.kind),
            Some(Busy)
        );
        let ring = run(&[
            (false, 200),
            (true, 400),
            (false, 200),
            (true, 400),
            (false, 2000),
        ])
        .expect("r");
        assert_eq!(ring.0, "uk-ringback");
    }

    #[test]
    fn us_ringback_after_one_on_segment_and_a_tone_already_on_is_not_trusted() {
        let r = run(&[(false, 100), (true, 2000), (false, 4000)]).expect("ring");
        assert_eq!(r.0, "us-ringback");
        // Starting mid-tone: the first (partial) segment does not count.
        assert_eq!(run(&[(true, 1000), (false, 1000)]), None);
    }

    #[test]
    fn busy_already_on_at_the_start_is_decided_within_two_cycles() {
        // the answer lands 200 ms into a 500 ms tone: its 300 ms tail, a full off and a full on
        for (pattern, cycle) in [(500u32, 1000u32), (250, 500), (375, 750)] {
            let tail = pattern * 3 / 5 / 20 * 20;
            let r = run(&[
                (true, tail),
                (false, pattern),
                (true, pattern),
                (false, pattern),
                (true, pattern),
            ]);
            let (name, t) = r.expect("busy");
            assert!(PLANS.iter().any(|p| p.name == name && p.kind == Busy), "{name}");
            assert!(t <= 2 * cycle, "{pattern}: decided at {t} ms");
        }
    }

    #[test]
    fn continuous_tone_or_speech_like_flicker_never_matches() {
        assert_eq!(run(&[(false, 100), (true, 6000)]), None);
        let flicker: Vec<(bool, u32)> = (0..40).map(|i| (i % 2 == 0, 60 + (i % 3) * 40)).collect();
        assert_eq!(run(&flicker), None);
    }
}
