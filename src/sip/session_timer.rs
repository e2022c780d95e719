//! Session timers (RFC 4028), sans-IO: what the UAC offers in its INVITE, the interval and
//! refresher a 2xx decides, and when to refresh (half the interval, when we refresh) or to
//! give up with a BYE (when the peer refreshes and stays silent: the expiry minus
//! min(32 s, interval/3), §10). The leg owns one [`SessionTimer`] per confirmed dialog and asks
//! it what to do through `poll_timeout` / `handle_timeout`.

use std::time::{Duration, Instant};

use super::msg::{Msg, header_param};

/// Per-trunk session timer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimerConfig {
    /// The Session-Expires we ask for.
    pub session_expires: Duration,
    /// Our Min-SE (RFC 4028: at least 90 s; smaller values are kept for tests).
    pub min_se: Duration,
}

impl Default for SessionTimerConfig {
    fn default() -> Self {
        SessionTimerConfig {
            session_expires: Duration::from_secs(1800),
            min_se: Duration::from_secs(90),
        }
    }
}

/// Which side refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Us,
    Peer,
}

/// What the timer asks the leg to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    /// Send a refresh (UPDATE or re-INVITE) now.
    Refresh,
    /// The session expired without a refresh: send BYE.
    Expire,
}

/// `Session-Expires: 1800;refresher=uac` -> (interval, refresher param).
pub fn parse_session_expires(value: &str) -> Option<(Duration, Option<String>)> {
    let secs = value.split(';').next()?.trim().parse::<u64>().ok()?;
    if secs == 0 || secs > 86_400 {
        return None;
    }
    let refresher = header_param(value, "refresher").map(|r| r.to_ascii_lowercase());
    Some((Duration::from_secs(secs), refresher))
}

/// The Min-SE of a 422 response.
pub fn parse_min_se(m: &Msg) -> Option<Duration> {
    let v = m.header("min-se")?;
    let secs = v.split(';').next()?.trim().parse::<u64>().ok()?;
    (secs > 0 && secs <= 86_400).then(|| Duration::from_secs(secs))
}

/// The timer of one confirmed dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTimer {
    interval: Duration,
    refresher: Refresher,
    /// Last refresh (or the 2xx that started the session).
    since: Instant,
    /// A refresh we sent is waiting for its answer.
    refreshing: bool,
}

impl SessionTimer {
    /// The timer a 2xx to our INVITE (we are the UAC) starts, or `None` when it carries no
    /// Session-Expires (no session expiration, §7.2). The refresher is the peer only when the
    /// 2xx says `refresher=uas` and requires the extension (a proxy may insert Session-Expires
    /// for a UAS that knows nothing of it; then the UAC refreshes).
    pub fn from_2xx(now: Instant, m: &Msg) -> Option<SessionTimer> {
        let (interval, who) = parse_session_expires(m.header("session-expires")?)?;
        let required = m
            .header_list("require")
            .iter()
            .any(|o| o.eq_ignore_ascii_case("timer"));
        let refresher = if who.as_deref() == Some("uas") && required {
            Refresher::Peer
        } else {
            Refresher::Us
        };
        Some(SessionTimer {
            interval,
            refresher,
            since: now,
            refreshing: false,
        })
    }

    /// The timer of a dialog we answered (we are the UAS) whose UAC refreshes: expires
    /// without a refresh within `interval` (minus the §10 margin).
    pub fn peer_refreshes(now: Instant, interval: Duration) -> SessionTimer {
        SessionTimer {
            interval,
            refresher: Refresher::Peer,
            since: now,
            refreshing: false,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn refresher(&self) -> Refresher {
        self.refresher
    }

    /// When the next action is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.refresher {
            Refresher::Us if !self.refreshing => Some(self.since + self.interval / 2),
            // Waiting for our refresh's answer: the transaction's own timeout ends it; the
            // session expiry is the backstop.
            Refresher::Us => Some(self.since + self.interval),
            Refresher::Peer => {
                let margin = Duration::from_secs(32).min(self.interval / 3);
                Some(self.since + self.interval - margin)
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<SessionAction> {
        let due = self.poll_timeout()?;
        if now < due {
            return None;
        }
        match self.refresher {
            Refresher::Us if !self.refreshing => {
                self.refreshing = true;
                Some(SessionAction::Refresh)
            }
            _ => Some(SessionAction::Expire),
        }
    }

    /// The 2xx to our refresh: the session runs on, with the interval and refresher it gives.
    pub fn refreshed(&mut self, now: Instant, m: &Msg) {
        if let Some(t) = SessionTimer::from_2xx(now, m) {
            *self = t;
        } else {
            self.since = now;
            self.refreshing = false;
        }
    }

    /// The peer refreshed the session (re-INVITE or UPDATE it sent); `value` is its
    /// Session-Expires. The peer is then the refresher (it sends the refreshes, §9).
    pub fn peer_refreshed(&mut self, now: Instant, value: Option<&str>) {
        if let Some((interval, _)) = value.and_then(parse_session_expires) {
            self.interval = interval;
            self.refresher = Refresher::Peer;
        }
        self.since = now;
        self.refreshing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::msg::parse;

    fn ok(extra: &str) -> Msg {
        let text = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa\r\nFrom: <sip:a@h>;tag=1\r\n\
             To: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes()).expect("parses")
    }

    #[test]
    fn we_refresh_at_half_interval_and_expire_without_an_answer() {
        let t0 = Instant::now();
        let mut t = SessionTimer::from_2xx(t0, &ok("Session-Expires: 90;refresher=uac\r\n")).expect("timer");
        assert_eq!(t.refresher(), Refresher::Us);
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(45)));
        assert_eq!(t.handle_timeout(t0 + Duration::from_secs(44)), None);
        assert_eq!(
            t.handle_timeout(t0 + Duration::from_secs(45)),
            Some(SessionAction::Refresh)
        );
        // The answer comes: the next refresh is half an interval later.
        let t1 = t0 + Duration::from_secs(46);
        t.refreshed(t1, &ok("Session-Expires: 120;refresher=uac\r\n"));
        assert_eq!(t.poll_timeout(), Some(t1 + Duration::from_secs(60)));
        assert_eq!(
            t.handle_timeout(t1 + Duration::from_secs(60)),
            Some(SessionAction::Refresh)
        );
        // No answer this time: the session expires.
        assert_eq!(t.poll_timeout(), Some(t1 + Duration::from_secs(120)));
        assert_eq!(
            t.handle_timeout(t1 + Duration::from_secs(120)),
            Some(SessionAction::Expire)
        );
    }

    #[test]
    fn peer_refresher_gets_a_bye_before_expiry_unless_it_refreshes() {
        let t0 = Instant::now();
        let m = ok("Require: timer\r\nSession-Expires: 1800;refresher=uas\r\n");
        let mut t = SessionTimer::from_2xx(t0, &m).expect("timer");
        assert_eq!(t.refresher(), Refresher::Peer);
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(1800 - 32)));
        let t1 = t0 + Duration::from_secs(900);
        t.peer_refreshed(t1, Some("1800;refresher=uac"));
        assert_eq!(t.handle_timeout(t0 + Duration::from_secs(1800)), None);
        assert_eq!(
            t.handle_timeout(t1 + Duration::from_secs(1768)),
            Some(SessionAction::Expire)
        );
        // Short interval: the margin is a third.
        let t = SessionTimer::from_2xx(t0, &ok("Require: timer\r\nSession-Expires: 90;refresher=uas\r\n"))
            .expect("timer");
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn no_session_expires_means_no_timer_and_uas_without_require_leaves_it_to_us() {
        let t0 = Instant::now();
        assert_eq!(SessionTimer::from_2xx(t0, &ok("")), None);
        let t = SessionTimer::from_2xx(t0, &ok("Session-Expires: 300;refresher=uas\r\n")).expect("timer");
        assert_eq!(t.refresher(), Refresher::Us);
        assert_eq!(parse_session_expires("abc"), None);
        assert_eq!(parse_session_expires("0"), None);
        let r = ok("Min-SE: 1800\r\n");
        assert_eq!(parse_min_se(&r), Some(Duration::from_secs(1800)));
    }
}
