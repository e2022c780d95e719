//! Paced playback of a cached treatment as RTP frames.

use std::sync::Arc;
use std::time::Duration;

use super::{TREATMENT_RATE, Treatment};
use crate::Time;
use crate::g711::Law;
use crate::rtp::{RtpSession, SendError};

/// Largest frame a player produces: 120 ms at 8 kHz.
pub const MAX_FRAME_SAMPLES: usize = 960;
/// If the caller falls this many frames behind, the player skips ahead instead of bursting.
const MAX_CATCH_UP_FRAMES: u32 = 3;

/// Loop or play once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlayMode {
    /// Play to the end, then finish (the last frame is padded with silence).
    Once,
    /// Start again at the end, until stopped (music on hold).
    Loop,
}

/// Where a player is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlayerState {
    /// Created, not started.
    Idle,
    /// Producing frames.
    Playing,
    /// Played to the end (`Once`).
    Finished,
    /// Stopped by the caller (barge-in, hang-up, agent found).
    Stopped,
}

/// Plays one treatment to one call: frames are slices of the shared pre-encoded audio, so
/// producing one is a copy of `ptime` bytes and no allocation.
#[derive(Debug)]
pub struct Player {
    treatment: Arc<Treatment>,
    law: Law,
    mode: PlayMode,
    frame_samples: usize,
    frame_duration: Duration,
    pos: usize,
    state: PlayerState,
    next_due: Time,
    scratch: [u8; MAX_FRAME_SAMPLES],
}

impl Player {
    /// A player for `treatment` in `law`, with `ptime` frames (clamped to 10..=120 ms).
    pub fn new(treatment: Arc<Treatment>, law: Law, mode: PlayMode, ptime: Duration) -> Self {
        let ms = ptime.as_millis().clamp(10, 120) as usize;
        let frame_samples = ms * TREATMENT_RATE as usize / 1000;
        Player {
            treatment,
            law,
            mode,
            frame_samples,
            frame_duration: Duration::from_millis(ms as u64),
            pos: 0,
            state: PlayerState::Idle,
            next_due: Time::ZERO,
            scratch: [0; MAX_FRAME_SAMPLES],
        }
    }

    /// Start (or restart from the beginning) at `now`; the first frame is due at once.
    pub fn start(&mut self, now: Time) {
        self.pos = 0;
        self.next_due = now;
        self.state = if self.treatment.len_samples() == 0 {
            PlayerState::Finished
        } else {
            PlayerState::Playing
        };
    }

    /// Stop at once (barge-in): no further frame is produced, even in the middle of the
    /// treatment or of the current frame's period.
    pub fn stop(&mut self) {
        if self.state == PlayerState::Playing || self.state == PlayerState::Idle {
            self.state = PlayerState::Stopped;
        }
    }

    /// Current state.
    pub fn state(&self) -> PlayerState {
        self.state
    }

    /// True while frames are being produced.
    pub fn is_playing(&self) -> bool {
        self.state == PlayerState::Playing
    }

    /// Samples per frame.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Position in the treatment.
    pub fn position(&self) -> Duration {
        Duration::from_micros(self.pos as u64 * 1_000_000 / u64::from(TREATMENT_RATE))
    }

    /// The treatment being played.
    pub fn treatment(&self) -> &Arc<Treatment> {
        &self.treatment
    }

    /// When the next frame is due, while playing.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.is_playing().then_some(self.next_due)
    }

    /// The next frame regardless of time (for tests, or a caller that paces itself).
    /// `None` once finished or stopped.
    pub fn next_frame(&mut self) -> Option<&[u8]> {
        if self.state != PlayerState::Playing {
            return None;
        }
        let audio = self.treatment.encoded(self.law);
        let total = audio.len();
        let n = self.frame_samples;
        let start = self.pos;
        if start + n <= total {
            self.pos += n;
            if self.pos == total {
                match self.mode {
                    PlayMode::Loop => self.pos = 0,
                    PlayMode::Once => self.state = PlayerState::Finished,
                }
            }
            return audio.get(start..start + n);
        }
        // The frame crosses the end: wrap (loop) or pad with silence (once).
        let head = audio.get(start..).unwrap_or_default();
        let scratch = self.scratch.get_mut(..n)?;
        let (a, rest) = scratch.split_at_mut(head.len());
        a.copy_from_slice(head);
        match self.mode {
            PlayMode::Loop => {
                let mut filled = 0;
                while filled < rest.len() {
                    let take = (rest.len() - filled).min(total);
                    if let (Some(dst), Some(src)) = (rest.get_mut(filled..filled + take), audio.get(..take)) {
                        dst.copy_from_slice(src);
                    }
                    filled += take;
                }
                self.pos = rest.len() % total.max(1);
            }
            PlayMode::Once => {
                rest.fill(self.law.silence());
                self.pos = total;
                self.state = PlayerState::Finished;
            }
        }
        Some(&self.scratch[..n])
    }

    /// If a frame is due at `now`, write it as an RTP packet through `session` into `out` and
    /// return its length. A caller that fell more than a few frames behind is not sent a
    /// burst: the player skips ahead (the RTP timestamp jumps with it, marked).
    pub fn poll_packet(
        &mut self,
        now: Time,
        session: &mut RtpSession,
        out: &mut [u8],
    ) -> Option<Result<usize, SendError>> {
        if !self.is_playing() || now < self.next_due {
            return None;
        }
        let behind = now.saturating_since(self.next_due).as_micros() / self.frame_duration.as_micros().max(1);
        if behind > u128::from(MAX_CATCH_UP_FRAMES) {
            let skip = behind as usize;
            let samples = skip.saturating_mul(self.frame_samples);
            let total = self.treatment.len_samples().max(1);
            match self.mode {
                PlayMode::Loop => self.pos = (self.pos + samples % total) % total,
                PlayMode::Once => self.pos = (self.pos + samples).min(total),
            }
            session.skip_samples(samples as u32);
            self.next_due = self.next_due + self.frame_duration * skip as u32;
            if self.mode == PlayMode::Once && self.pos >= total {
                self.state = PlayerState::Finished;
                return None;
            }
        }
        self.next_due = self.next_due + self.frame_duration;
        let samples = self.frame_samples as u32;
        let frame = self.next_frame()?;
        Some(session.write_audio(now, frame, samples, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{self, SessionConfig};

    fn ramp(n: usize) -> Arc<Treatment> {
        // Distinct codes per sample so frame contents identify their position.
        let pcm: Vec<i16> = (0..n).map(|i| ((i % 200) as i16 - 100) * 300).collect();
        Arc::new(Treatment::from_pcm("ramp", pcm))
    }

    #[test]
    fn once_plays_every_sample_then_pads_and_finishes() {
        let t = ramp(400);
        let mut p = Player::new(
            Arc::clone(&t),
            Law::Ulaw,
            PlayMode::Once,
            Duration::from_millis(20),
        );
        p.start(Time::ZERO);
        let mut all = Vec::new();
        while let Some(f) = p.next_frame() {
            assert_eq!(f.len(), 160);
            all.extend_from_slice(f);
        }
        assert_eq!(all.len(), 480);
        assert_eq!(&all[..400], t.encoded(Law::Ulaw));
        assert!(all[400..].iter().all(|&c| c == 0xFF));
        assert_eq!(p.state(), PlayerState::Finished);
    }

    #[test]
    fn loop_wraps_seamlessly() {
        let t = ramp(250);
        let mut p = Player::new(
            Arc::clone(&t),
            Law::Alaw,
            PlayMode::Loop,
            Duration::from_millis(20),
        );
        p.start(Time::ZERO);
        let mut all = Vec::new();
        for _ in 0..10 {
            all.extend_from_slice(p.next_frame().unwrap());
        }
        let src = t.encoded(Law::Alaw);
        for (i, &c) in all.iter().enumerate() {
            assert_eq!(c, src[i % 250], "byte {i}");
        }
        assert!(p.is_playing());
        // A treatment shorter than one frame loops within the frame.
        let tiny = ramp(50);
        let mut p = Player::new(
            Arc::clone(&tiny),
            Law::Alaw,
            PlayMode::Loop,
            Duration::from_millis(20),
        );
        p.start(Time::ZERO);
        let f = p.next_frame().unwrap().to_vec();
        for (i, &c) in f.iter().enumerate() {
            assert_eq!(c, tiny.encoded(Law::Alaw)[i % 50]);
        }
    }

    #[test]
    fn paced_packets_and_barge_in() {
        let t = ramp(8000);
        let mut session = RtpSession::new(SessionConfig::g711(Law::Ulaw, 1, 0, 0), Time::ZERO);
        let mut p = Player::new(t, Law::Ulaw, PlayMode::Loop, Duration::from_millis(20));
        let mut out = [0u8; 200];
        let start = Time::from_millis(1000);
        p.start(start);
        let mut sent = Vec::new();
        let mut now = start;
        for _ in 0..100 {
            while let Some(r) = p.poll_packet(now, &mut session, &mut out) {
                let n = r.unwrap();
                sent.push((now, rtp::parse(&out[..n]).unwrap().header));
            }
            now = now + Duration::from_millis(5);
        }
        // 500 ms at 20 ms per frame: 25 frames, one per 20 ms.
        assert_eq!(sent.len(), 25);
        for (i, (at, h)) in sent.iter().enumerate() {
            assert_eq!(*at, start + Duration::from_millis(20 * i as u64));
            assert_eq!(h.timestamp, 160 * i as u32);
            assert_eq!(h.marker, i == 0);
        }
        assert_eq!(p.poll_timeout(), Some(start + Duration::from_millis(500)));
        // Barge-in in the middle of a frame period: nothing more.
        p.stop();
        assert_eq!(p.state(), PlayerState::Stopped);
        assert!(
            p.poll_packet(now + Duration::from_secs(1), &mut session, &mut out)
                .is_none()
        );
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn a_stalled_caller_gets_no_burst() {
        let mut session = RtpSession::new(SessionConfig::g711(Law::Ulaw, 1, 0, 0), Time::ZERO);
        let mut p = Player::new(ramp(80_000), Law::Ulaw, PlayMode::Loop, Duration::from_millis(20));
        let mut out = [0u8; 200];
        p.start(Time::ZERO);
        assert!(p.poll_packet(Time::ZERO, &mut session, &mut out).is_some());
        // One second passes without polling.
        let later = Time::from_millis(1000);
        let mut n = 0;
        while p.poll_packet(later, &mut session, &mut out).is_some() {
            n += 1;
            assert!(n < 10);
        }
        assert_eq!(n, 1);
        let h = rtp::parse(&out[..172]).unwrap().header;
        assert!(h.marker);
        assert_eq!(h.timestamp, 8000);
        assert_eq!(p.position(), Duration::from_millis(1020));
    }

    #[test]
    fn ptime_is_respected() {
        let mut p = Player::new(ramp(8000), Law::Ulaw, PlayMode::Once, Duration::from_millis(30));
        p.start(Time::ZERO);
        assert_eq!(p.next_frame().unwrap().len(), 240);
        let mut p = Player::new(ramp(0), Law::Ulaw, PlayMode::Loop, Duration::from_millis(20));
        p.start(Time::ZERO);
        assert_eq!(p.state(), PlayerState::Finished);
        assert!(p.next_frame().is_none());
    }
}
