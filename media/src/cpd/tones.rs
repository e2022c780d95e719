//! Per-block spectral features: a Goertzel bank over the call-progress, SIT and fax
//! frequencies (updated for all bins at once, sample by sample, so the compiler vectorises it),
//! a single-tone estimator for beeps (frequency from the lag-1/lag-2 autocorrelation ratio,
//! which white noise does not bias, then purity measured by a Goertzel at that frequency), and
//! the energy envelope in 5 ms sub-blocks.

/// Samples per analysis block (20 ms at 8 kHz).
pub const BLOCK: usize = 160;
/// Sub-blocks per block (5 ms each) for the envelope.
pub const SUBS: usize = 4;
/// Sample rate.
pub const RATE: f32 = 8000.0;

/// Frequencies of the bank, in Hz. Indices are the `BIN_*` constants.
pub const BANK_HZ: [f32; NBINS] = [
    350.0, 400.0, 425.0, 440.0, 450.0, 480.0, 620.0, // call progress
    913.8, 950.0, 985.2, 1370.6, 1400.0, 1428.5, 1776.7, 1800.0, // SIT (Telcordia + ITU)
    1100.0, 2100.0, 1650.0, 1850.0, // fax CNG, CED/ANS, V.21 ch2 mark/space
    0.0,
];
/// Bins in the bank (the last one is padding).
pub const NBINS: usize = 20;
/// Call-progress bins: `0..CP_END`.
pub const CP_END: usize = 7;
/// SIT bins: `CP_END..SIT_END`.
pub const SIT_END: usize = 15;
/// Fax calling tone.
pub const BIN_CNG: usize = 15;
/// Fax answer tone.
pub const BIN_CED: usize = 16;
/// V.21 channel 2 mark.
pub const BIN_V21_MARK: usize = 17;
/// V.21 channel 2 space.
pub const BIN_V21_SPACE: usize = 18;
/// Bins used (without padding).
pub const USED: usize = 19;

/// What one 20 ms block looks like.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    /// Mean power (DC removed), in dBFS (full-scale square wave = 0 dB); -100 for silence.
    pub db: f32,
    /// Sub-block powers (linear, DC removed).
    pub sub: [f32; SUBS],
    /// Share of the block's power in each bank bin (1.0 = a pure tone exactly on the bin).
    pub rel: [f32; NBINS],
    /// Single-tone estimate: frequency in Hz.
    pub tone_hz: f32,
    /// Share of the block's power at `tone_hz` (1.0 = pure sinusoid).
    pub tone_purity: f32,
    /// Largest sub-block power over the smallest (envelope flatness; 1.0 = flat).
    pub flatness: f32,
}

/// Goertzel coefficients, computed once.
#[derive(Clone, Debug)]
pub struct Bank {
    coef: [f32; NBINS],
}

impl Default for Bank {
    fn default() -> Self {
        Self::new()
    }
}

impl Bank {
    /// The fixed bank.
    pub fn new() -> Bank {
        let mut coef = [0.0; NBINS];
        for (c, f) in coef.iter_mut().zip(BANK_HZ) {
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / RATE).cos();
        }
        Bank { coef }
    }

    /// Analyse one block (exactly [`BLOCK`] samples).
    pub fn analyse(&self, block: &[i16; BLOCK]) -> Features {
        let mut x = [0f32; BLOCK];
        let mut mean = 0f32;
        for (d, &s) in x.iter_mut().zip(block.iter()) {
            *d = f32::from(s) * (1.0 / 32768.0);
            mean += *d;
        }
        mean /= BLOCK as f32;
        let mut r0 = 0f32;
        let mut sub = [0f32; SUBS];
        for (i, d) in x.iter_mut().enumerate() {
            *d -= mean;
            let p = *d * *d;
            r0 += p;
            sub[i / (BLOCK / SUBS)] += p;
        }
        let mut f = Features {
            sub,
            db: -100.0,
            ..Features::default()
        };
        let power = r0 / BLOCK as f32;
        if power <= 1e-10 {
            return f;
        }
        f.db = 10.0 * power.log10();
        // Goertzel bank, all bins per sample.
        let mut s1 = [0f32; NBINS];
        let mut s2 = [0f32; NBINS];
        for &v in &x {
            for k in 0..NBINS {
                let s0 = v + self.coef[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s0;
            }
        }
        let norm = 2.0 / (BLOCK as f32 * r0);
        for k in 0..NBINS {
            let p = s1[k] * s1[k] + s2[k] * s2[k] - self.coef[k] * s1[k] * s2[k];
            f.rel[k] = (p * norm).clamp(0.0, 1.5);
        }
        // Single-tone estimate from r1, r2 (white noise only adds to r0).
        let mut r1 = 0f32;
        let mut r2 = 0f32;
        for i in 2..BLOCK {
            r1 += x[i] * x[i - 1];
            r2 += x[i] * x[i - 2];
        }
        r1 += x[1] * x[0];
        let c = if r1.abs() <= r0 * 1e-4 {
            0.0
        } else {
            let q = r2 / r1;
            let d = (q * q + 8.0).sqrt();
            let (a, b) = ((q + d) / 4.0, (q - d) / 4.0);
            if r1 > 0.0 { a } else { b }
        }
        .clamp(-1.0, 1.0);
        let w = c.acos();
        f.tone_hz = w * RATE / (2.0 * std::f32::consts::PI);
        let coef = 2.0 * c;
        let (mut a1, mut a2) = (0f32, 0f32);
        for &v in &x {
            let s0 = v + coef * a1 - a2;
            a2 = a1;
            a1 = s0;
        }
        f.tone_purity = ((a1 * a1 + a2 * a2 - coef * a1 * a2) * norm).clamp(0.0, 1.5);
        let (mut lo, mut hi) = (f32::MAX, 0f32);
        for &s in &f.sub {
            lo = lo.min(s);
            hi = hi.max(s);
        }
        f.flatness = if lo > 1e-12 { hi / lo } else { f32::MAX };
        f
    }
}

/// The strongest bin in `range` and its share.
pub fn top(rel: &[f32; NBINS], range: std::ops::Range<usize>) -> (usize, f32) {
    let mut best = (range.start, 0.0);
    for k in range {
        if let Some(&r) = rel.get(k)
            && r > best.1
        {
            best = (k, r);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freqs: &[f32], amp: f32, phase0: usize) -> [i16; BLOCK] {
        let mut b = [0i16; BLOCK];
        for (i, s) in b.iter_mut().enumerate() {
            let t = (i + phase0) as f32 / RATE;
            let v: f32 = freqs
                .iter()
                .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                .sum();
            *s = (v * amp * 32767.0) as i16;
        }
        b
    }

    #[test]
    fn pure_tone_lands_on_its_bin_and_the_estimator_finds_it() {
        let bank = Bank::new();
        let f = bank.analyse(&tone(&[1100.0], 0.3, 17));
        assert!(f.rel[BIN_CNG] > 0.9, "{:?}", f.rel);
        assert!(f.rel[BIN_CED] < 0.05);
        assert!((f.tone_hz - 1100.0).abs() < 5.0, "{}", f.tone_hz);
        assert!(f.tone_purity > 0.9);
        assert!(f.flatness < 1.3);
        assert!((f.db - (-13.4)).abs() < 0.5, "{}", f.db);
    }

    #[test]
    fn sit_neighbours_are_told_apart() {
        let bank = Bank::new();
        for (k, hz) in BANK_HZ.iter().enumerate().take(SIT_END).skip(CP_END) {
            let f = bank.analyse(&tone(&[*hz], 0.2, 3));
            assert_eq!(top(&f.rel, CP_END..SIT_END).0, k, "{hz}");
        }
    }

    #[test]
    fn dual_tone_is_not_a_pure_tone_and_its_envelope_beats() {
        let bank = Bank::new();
        let f = bank.analyse(&tone(&[440.0, 480.0], 0.2, 0));
        assert!(
            f.tone_purity < 0.8 || f.flatness > 3.0,
            "{} {}",
            f.tone_purity,
            f.flatness
        );
        let f = bank.analyse(&tone(&[480.0, 620.0], 0.2, 0));
        assert!(f.rel[5] > 0.3 && f.rel[6] > 0.3);
        assert!(f.tone_purity < 0.7);
    }

    #[test]
    fn silence_dc_and_extremes_are_defined() {
        let bank = Bank::new();
        let f = bank.analyse(&[0; BLOCK]);
        assert_eq!(f.db, -100.0);
        let f = bank.analyse(&[12345; BLOCK]);
        assert_eq!(f.db, -100.0, "DC only is silence");
        let mut alt = [i16::MIN; BLOCK];
        for (i, s) in alt.iter_mut().enumerate() {
            if i % 2 == 0 {
                *s = i16::MAX;
            }
        }
        let f = bank.analyse(&alt);
        assert!(f.db.is_finite() && f.tone_hz.is_finite() && f.tone_purity.is_finite());
        assert!(f.tone_hz > 3800.0, "{}", f.tone_hz);
    }
}
