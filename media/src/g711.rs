//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA), table-driven.
//!
//! Decoding is a lookup in a 256-entry table built at compile time. Encoding takes a 16-bit
//! linear sample, reduces it to the 14-bit (µ-law) or 13-bit (A-law) range of G.711 by an
//! arithmetic shift, finds the segment in a 128-entry table and takes the four quantisation bits;
//! the result is bit-for-bit the classic reference encoder (Sun Microsystems' `g711.c`), which
//! the tests check on all 65,536 inputs.
//!
//! Decoded values are on the 16-bit scale: µ-law spans ±32,124, A-law ±32,256.

/// A G.711 companding law.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, RTP static payload type 0 (PCMU).
    Ulaw,
    /// A-law, RTP static payload type 8 (PCMA).
    Alaw,
}

impl Law {
    /// The static RTP payload type of this law (RFC 3551): 0 for PCMU, 8 for PCMA.
    pub const fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The law of a static RTP payload type, if it is PCMU (0) or PCMA (8).
    pub const fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        }
    }

    /// The SDP encoding name (`PCMU` or `PCMA`).
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }

    /// The code of digital silence (the encoding of sample 0): 0xFF for µ-law, 0xD5 for A-law.
    pub const fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }

    /// Encode one 16-bit linear sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode(sample),
            Law::Alaw => alaw_encode(sample),
        }
    }

    /// Decode one code to a 16-bit linear sample.
    #[inline]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_decode(code),
            Law::Alaw => alaw_decode(code),
        }
    }

    /// Encode `pcm` into `out`, as many samples as the shorter of the two holds.
    /// Returns the number of samples encoded.
    pub fn encode_slice(self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        for (o, &s) in out.iter_mut().zip(pcm.iter()) {
            *o = self.encode(s);
        }
        n
    }

    /// Decode `codes` into `out`, as many samples as the shorter of the two holds.
    /// Returns the number of samples decoded.
    pub fn decode_slice(self, codes: &[u8], out: &mut [i16]) -> usize {
        let table = match self {
            Law::Ulaw => &ULAW_DECODE,
            Law::Alaw => &ALAW_DECODE,
        };
        let n = codes.len().min(out.len());
        for (o, &c) in out.iter_mut().zip(codes.iter()) {
            *o = table[c as usize];
        }
        n
    }

    /// Re-encode `codes` of this law into `other` in place (for bridging a PCMU leg to a PCMA
    /// leg), through a 256-entry table.
    pub fn transcode_in_place(self, other: Law, codes: &mut [u8]) {
        let table = match (self, other) {
            (Law::Ulaw, Law::Alaw) => &ULAW_TO_ALAW,
            (Law::Alaw, Law::Ulaw) => &ALAW_TO_ULAW,
            _ => return,
        };
        for c in codes.iter_mut() {
            *c = table[*c as usize];
        }
    }
}

/// Bit length of `i` (0 for 0, 1 for 1, 2 for 2..=3, ..., 7 for 64..=127): the G.711 segment.
const SEGMENT: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 1;
    while i < 128 {
        t[i] = (8 - (i as u8).leading_zeros()) as u8;
        i += 1;
    }
    t
};

const fn ulaw_decode_const(code: u8) -> i16 {
    let u = !code;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_const(code: u8) -> i16 {
    let a = code ^ 0x55;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn ulaw_encode_const(sample: i16) -> u8 {
    // 16-bit to 14-bit, rounding towards minus infinity, as the reference does.
    let v = (sample as i32) >> 2;
    let (magnitude, mask): (i32, i32) = if v < 0 { (-v, 0x7F) } else { (v, 0xFF) };
    let magnitude = if magnitude > 8159 { 8159 } else { magnitude };
    let biased = magnitude + 33; // 33..=8192
    if biased >= 0x2000 {
        return (0x7F ^ mask) as u8;
    }
    let segment = SEGMENT[(biased >> 6) as usize] as i32;
    let code = (segment << 4) | ((biased >> (segment + 1)) & 0x0F);
    (code ^ mask) as u8
}

const fn alaw_encode_const(sample: i16) -> u8 {
    // 16-bit to 13-bit; negative values are one's-complemented, as the reference does.
    let v = (sample as i32) >> 3;
    let (magnitude, mask): (i32, i32) = if v >= 0 { (v, 0xD5) } else { (-v - 1, 0x55) };
    // magnitude is at most 4095 here, so the segment is at most 7.
    let segment = SEGMENT[(magnitude >> 5) as usize] as i32;
    let quant = if segment < 2 {
        (magnitude >> 1) & 0x0F
    } else {
        (magnitude >> segment) & 0x0F
    };
    (((segment << 4) | quant) ^ mask) as u8
}

/// µ-law decode table, indexed by code.
pub static ULAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_decode_const(i as u8);
        i += 1;
    }
    t
};

/// A-law decode table, indexed by code.
pub static ALAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_decode_const(i as u8);
        i += 1;
    }
    t
};

static ULAW_TO_ALAW: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_encode_const(ulaw_decode_const(i as u8));
        i += 1;
    }
    t
};

static ALAW_TO_ULAW: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_encode_const(alaw_decode_const(i as u8));
        i += 1;
    }
    t
};

/// Encode a 16-bit linear sample to µ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    ulaw_encode_const(sample)
}

/// Decode a µ-law code to a 16-bit linear sample.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Encode a 16-bit linear sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    alaw_encode_const(sample)
}

/// Decode an A-law code to a 16-bit linear sample.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic reference implementation (Sun Microsystems `g711.c`, public domain), written
    /// out plainly and independently of the table-driven code above.
    mod reference {
        const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
        const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
        const BIAS: i32 = 0x84;
        const CLIP: i32 = 8159;

        fn search(val: i32, table: &[i32; 8]) -> i32 {
            for (i, &end) in table.iter().enumerate() {
                if val <= end {
                    return i as i32;
                }
            }
            8
        }

        pub fn linear2alaw(pcm: i16) -> u8 {
            let mut pcm_val = (pcm as i32) >> 3;
            let mask;
            if pcm_val >= 0 {
                mask = 0xD5;
            } else {
                mask = 0x55;
                pcm_val = -pcm_val - 1;
            }
            let seg = search(pcm_val, &SEG_AEND);
            if seg >= 8 {
                return (0x7F ^ mask) as u8;
            }
            let mut aval = seg << 4;
            if seg < 2 {
                aval |= (pcm_val >> 1) & 0xF;
            } else {
                aval |= (pcm_val >> seg) & 0xF;
            }
            (aval ^ mask) as u8
        }

        pub fn alaw2linear(a_val: u8) -> i16 {
            let a_val = (a_val ^ 0x55) as i32;
            let mut t = (a_val & 0xF) << 4;
            let seg = (a_val & 0x70) >> 4;
            match seg {
                0 => t += 8,
                1 => t += 0x108,
                _ => {
                    t += 0x108;
                    t <<= seg - 1;
                }
            }
            (if a_val & 0x80 != 0 { t } else { -t }) as i16
        }

        pub fn linear2ulaw(pcm: i16) -> u8 {
            let mut pcm_val = (pcm as i32) >> 2;
            let mask;
            if pcm_val < 0 {
                pcm_val = -pcm_val;
                mask = 0x7F;
            } else {
                mask = 0xFF;
            }
            if pcm_val > CLIP {
                pcm_val = CLIP;
            }
            pcm_val += BIAS >> 2;
            let seg = search(pcm_val, &SEG_UEND);
            if seg >= 8 {
                return (0x7F ^ mask) as u8;
            }
            let uval = (seg << 4) | ((pcm_val >> (seg + 1)) & 0xF);
            (uval ^ mask) as u8
        }

        pub fn ulaw2linear(u_val: u8) -> i16 {
            let u_val = (!u_val) as i32;
            let mut t = ((u_val & 0xF) << 3) + BIAS;
            t <<= (u_val & 0x70) >> 4;
            (if u_val & 0x80 != 0 { BIAS - t } else { t - BIAS }) as i16
        }
    }

    #[test]
    fn all_256_ulaw_codes_decode_to_the_reference_value() {
        for code in 0..=255u8 {
            assert_eq!(
                ulaw_decode(code),
                reference::ulaw2linear(code),
                "code {code:#04x}"
            );
        }
    }

    #[test]
    fn all_256_alaw_codes_decode_to_the_reference_value() {
        for code in 0..=255u8 {
            assert_eq!(
                alaw_decode(code),
                reference::alaw2linear(code),
                "code {code:#04x}"
            );
        }
    }

    #[test]
    fn all_65536_samples_ulaw_encode_like_the_reference() {
        let mut mismatches = 0;
        for s in i16::MIN..=i16::MAX {
            if ulaw_encode(s) != reference::linear2ulaw(s) {
                mismatches += 1;
            }
        }
        assert_eq!(mismatches, 0);
    }

    #[test]
    fn all_65536_samples_alaw_encode_like_the_reference() {
        let mut mismatches = 0;
        for s in i16::MIN..=i16::MAX {
            if alaw_encode(s) != reference::linear2alaw(s) {
                mismatches += 1;
            }
        }
        assert_eq!(mismatches, 0);
    }

    #[test]
    fn well_known_code_points() {
        // µ-law: 0xFF and 0x7F are +0 and -0, 0x80 / 0x00 are the extremes.
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        // A-law: 0xD5 / 0x55 are the smallest steps, 0xAA / 0x2A the extremes.
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        assert_eq!(Law::Ulaw.silence(), ulaw_encode(0));
        assert_eq!(Law::Alaw.silence(), alaw_encode(0));
    }

    #[test]
    fn every_code_survives_a_round_trip() {
        for code in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
            // µ-law 0x7F is "negative zero"; zero encodes as the positive 0xFF.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(ulaw_encode(ulaw_decode(code)), expected, "µ-law {code:#04x}");
        }
    }

    #[test]
    fn decode_is_monotonic_in_the_reconstruction_levels() {
        for law in [Law::Ulaw, Law::Alaw] {
            let mut levels: Vec<i16> = (0..=255u8).map(|c| law.decode(c)).collect();
            levels.sort_unstable();
            levels.dedup();
            // µ-law has two zeros, A-law none.
            assert_eq!(levels.len(), if law == Law::Ulaw { 255 } else { 256 });
            // Encoding is monotonic: a larger sample never gets a smaller level.
            let mut last = i16::MIN;
            for s in i16::MIN..=i16::MAX {
                let d = law.decode(law.encode(s));
                assert!(d >= last, "{law:?} not monotonic at {s}");
                last = d;
            }
        }
    }

    #[test]
    fn quantisation_error_is_bounded_by_the_segment_step() {
        for law in [Law::Ulaw, Law::Alaw] {
            for s in i16::MIN..=i16::MAX {
                let d = law.decode(law.encode(s)) as i32;
                let err = (d - s as i32).abs();
                // The largest step is 1024 (µ-law) or 1024 (A-law) in the top segment; beyond
                // the largest level the error is the clipping distance.
                let top = if law == Law::Ulaw { 32124 } else { 32256 };
                let clip = (s as i32).abs().saturating_sub(top).max(0);
                assert!(err <= 1024 + clip, "{law:?} sample {s} decoded {d}");
                // Relative error past the first segments stays under ~6.5 %.
                if (s as i32).abs() > 1024 && clip == 0 {
                    assert!(err * 1000 / (s as i32).abs() <= 65, "{law:?} {s} -> {d}");
                }
            }
        }
    }

    #[test]
    fn slices_and_transcoding() {
        let pcm: Vec<i16> = (0..160).map(|i| ((i * 397) % 20000 - 10000) as i16).collect();
        let mut u = vec![0u8; 160];
        assert_eq!(Law::Ulaw.encode_slice(&pcm, &mut u), 160);
        let mut back = vec![0i16; 160];
        assert_eq!(Law::Ulaw.decode_slice(&u, &mut back), 160);
        for (a, b) in pcm.iter().zip(&back) {
            assert!((*a as i32 - *b as i32).abs() < 700);
        }
        let mut t = u.clone();
        Law::Ulaw.transcode_in_place(Law::Alaw, &mut t);
        for (uc, ac) in u.iter().zip(&t) {
            assert_eq!(*ac, alaw_encode(ulaw_decode(*uc)));
        }
        // Short output: only what fits.
        let mut small = [0u8; 4];
        assert_eq!(Law::Alaw.encode_slice(&pcm, &mut small), 4);
        assert_eq!(Law::from_payload_type(8), Some(Law::Alaw));
        assert_eq!(Law::from_payload_type(9), None);
        assert_eq!(Law::Ulaw.payload_type(), 0);
        assert_eq!(Law::Alaw.encoding_name(), "PCMA");
    }
}
