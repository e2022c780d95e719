//! Trunk upkeep: REGISTER to trunks that want it (digest on 401/407, refreshed before the
//! binding runs out) and the OPTIONS keepalive that marks a trunk down after N failures and up
//! again after one success. Both cores are sans-IO ([`Registration`], [`Keepalive`]); one tokio
//! task ([`spawn`]) drives them for every trunk through [`Telephony::request`] and publishes
//! each trunk's [`TrunkStatus`], which [`Telephony::trunk_states`] reads and trunk failover
//! uses to skip a trunk that is down.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use super::driver::Telephony;
use crate::sip::config::{TelephonyConfig, Trunk};
use crate::sip::msg::{self, Method, Msg, RequestBuilder};
use crate::sip::transport::Transport;

/// Registration state of a trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RegState {
    /// Not configured to register.
    Off,
    Registering,
    /// Bound for `expires_s` seconds (as granted by the trunk).
    Registered {
        expires_s: u64,
    },
    /// The last attempt failed (`code`: the final response, `None`: no response); retried.
    Failed {
        code: Option<u16>,
    },
}

/// What a trunk looks like from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrunkStatus {
    /// False after `options_failures` consecutive keepalive failures; true again after one
    /// success. Trunks without keepalive are always up.
    pub up: bool,
    pub consecutive_failures: u32,
    /// Final response code of the last keepalive, `None` for none yet or a timeout.
    pub last_code: Option<u16>,
    pub registration: RegState,
}

impl Default for TrunkStatus {
    fn default() -> Self {
        TrunkStatus {
            up: true,
            consecutive_failures: 0,
            last_code: None,
            registration: RegState::Off,
        }
    }
}

/// Trunk name -> status, as published by the upkeep task.
pub type TrunkStates = BTreeMap<String, TrunkStatus>;

/// Whether `name` may be dialled (unknown trunks count as up).
pub fn is_up(states: &TrunkStates, name: &str) -> bool {
    states.get(name).is_none_or(|s| s.up)
}

/// The trunk to dial: `from` if it is up, else the first trunk up along its failover chain not
/// in `tried`; `None` when there is none.
pub fn first_up(
    cfg: &TelephonyConfig,
    from: &Trunk,
    tried: &[String],
    states: &TrunkStates,
) -> Option<Trunk> {
    let mut t = Some(from);
    for _ in 0..=cfg.trunks.len() {
        let cur = t?;
        if !tried.contains(&cur.name) && is_up(states, &cur.name) {
            return Some(cur.clone());
        }
        t = cur.failover.as_ref().and_then(|n| cfg.trunk(n));
    }
    None
}

/// The OPTIONS keepalive of one trunk, sans-IO.
#[derive(Debug, Clone)]
pub struct Keepalive {
    interval: Duration,
    threshold: u32,
    failures: u32,
    up: bool,
    last_code: Option<u16>,
    next_at: Instant,
    in_flight: bool,
}

impl Keepalive {
    pub fn new(now: Instant, interval: Duration, threshold: u32) -> Self {
        Keepalive {
            interval,
            threshold: threshold.max(1),
            failures: 0,
            up: true,
            last_code: None,
            next_at: now,
            in_flight: false,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.in_flight).then_some(self.next_at)
    }

    /// True when an OPTIONS is to be sent now.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.in_flight || now < self.next_at {
            return false;
        }
        self.in_flight = true;
        true
    }

    /// The final response code of the OPTIONS (`None`: no response). Any final response but
    /// 408 and 503 shows the trunk alive (a 404 or 405 to OPTIONS still comes from a live peer).
    pub fn on_result(&mut self, now: Instant, code: Option<u16>) {
        self.in_flight = false;
        self.last_code = code;
        self.next_at = now + self.interval;
        match code {
            Some(c) if c != 408 && c != 503 => {
                self.failures = 0;
                self.up = true;
            }
            _ => {
                self.failures = self.failures.saturating_add(1);
                if self.failures >= self.threshold {
                    self.up = false;
                }
            }
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }
}

/// REGISTER of one trunk (RFC 3261 §10.2), sans-IO: `handle_timeout` and `on_response` give
/// the bytes to send.
#[derive(Debug, Clone)]
pub struct Registration {
    local: SocketAddr,
    transport: Transport,
    registrar: String,
    aor: String,
    user: String,
    password: String,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: Duration,
    state: RegState,
    next_at: Option<Instant>,
    auth_tried: bool,
}

/// Retry delay after a failed registration.
const RETRY: Duration = Duration::from_secs(30);

impl Registration {
    /// `None` unless the trunk registers (and has credentials).
    pub fn new(now: Instant, trunk: &Trunk, local: SocketAddr) -> Option<Self> {
        let expires = trunk.register?;
        let user = trunk.username.clone()?;
        let password = trunk.password.clone()?;
        Some(Registration {
            local,
            transport: trunk.transport,
            registrar: format!("sip:{}", trunk.domain),
            aor: format!("sip:{user}@{}", trunk.domain),
            user,
            password,
            call_id: format!("{}@boomerang", msg::token(20)),
            from_tag: msg::token(10),
            cseq: 0,
            expires,
            state: RegState::Registering,
            next_at: Some(now),
            auth_tried: false,
        })
    }

    pub fn state(&self) -> &RegState {
        &self.state
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_at
    }

    /// The REGISTER to send now (a first registration, a refresh or a retry), if one is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Vec<u8>> {
        let due = self.next_at?;
        if now < due {
            return None;
        }
        self.next_at = None;
        self.auth_tried = false;
        if !matches!(self.state, RegState::Registered { .. }) {
            self.state = RegState::Registering;
        }
        Some(self.request(None))
    }

    fn request(&mut self, auth: Option<(&str, String)>) -> Vec<u8> {
        self.cseq += 1;
        let contact = match self.transport {
            Transport::Udp => format!("<sip:{}@{}>", self.user, self.local),
            t => format!("<sip:{}@{};transport={}>", self.user, self.local, t.uri_param()),
        };
        let mut b = RequestBuilder::new(&Method::Register, &self.registrar)
            .header(
                "Via",
                format!(
                    "SIP/2.0/{} {};branch={};rport",
                    self.transport.via_token(),
                    self.local,
                    msg::new_branch()
                ),
            )
            .header("Max-Forwards", 70)
            .header("From", format!("<{}>;tag={}", self.aor, self.from_tag))
            .header("To", format!("<{}>", self.aor))
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{} REGISTER", self.cseq))
            .header("Contact", contact)
            .header("Expires", self.expires.as_secs());
        if let Some((name, value)) = auth {
            b = b.header(name, value);
        }
        b.finish()
    }

    /// The final response to our REGISTER (`None`: it timed out). Returns the next REGISTER to
    /// send at once (the answer to a digest challenge).
    pub fn on_response(&mut self, now: Instant, m: Option<&Msg>) -> Option<Vec<u8>> {
        let Some(m) = m else {
            self.fail(now, None);
            return None;
        };
        let code = m.code()?;
        match code {
            200..=299 => {
                let granted = granted_expiry(m).unwrap_or(self.expires);
                if granted.is_zero() {
                    self.fail(now, Some(code));
                    return None;
                }
                self.state = RegState::Registered {
                    expires_s: granted.as_secs(),
                };
                // Refresh at half the granted time (at least 1 s from now).
                self.next_at = Some(now + (granted / 2).max(Duration::from_secs(1)));
                None
            }
            401 | 407 if !self.auth_tried => {
                let (challenge, answer) = if code == 401 {
                    ("www-authenticate", "Authorization")
                } else {
                    ("proxy-authenticate", "Proxy-Authorization")
                };
                let registrar = self.registrar.clone();
                let value = m
                    .headers
                    .iter()
                    .filter(|(n, _)| n == challenge)
                    .find_map(|(_, v)| {
                        super::registrar::answer_challenge(
                            v,
                            &Method::Register,
                            &registrar,
                            &self.user,
                            &self.password,
                        )
                    });
                match value {
                    Some(v) => {
                        self.auth_tried = true;
                        Some(self.request(Some((answer, v))))
                    }
                    None => {
                        self.fail(now, Some(code));
                        None
                    }
                }
            }
            423 => {
                // Interval Too Brief: ask again with the Min-Expires it names.
                match m
                    .header("min-expires")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|s| *s > self.expires.as_secs() && *s <= 86_400)
                {
                    Some(min) => {
                        self.expires = Duration::from_secs(min);
                        Some(self.request(None))
                    }
                    None => {
                        self.fail(now, Some(code));
                        None
                    }
                }
            }
            _ => {
                self.fail(now, Some(code));
                None
            }
        }
    }

    fn fail(&mut self, now: Instant, code: Option<u16>) {
        self.state = RegState::Failed { code };
        self.next_at = Some(now + RETRY.min(self.expires));
    }
}

/// The expiry the registrar granted our contact: its `expires` parameter, else Expires.
fn granted_expiry(m: &Msg) -> Option<Duration> {
    let from_contact = m
        .header_list("contact")
        .iter()
        .find_map(|c| msg::header_param(c, "expires"))
        .and_then(|v| v.parse::<u64>().ok());
    let secs = from_contact.or_else(|| m.header("expires").and_then(|v| v.trim().parse::<u64>().ok()))?;
    Some(Duration::from_secs(secs.min(86_400)))
}

enum Probe {
    Options,
    Register,
}

/// Starts the upkeep task of every trunk with a keepalive or a registration. It ends when the
/// telephony task stops.
pub fn spawn(t: Telephony, cfg: &TelephonyConfig) -> tokio::task::JoinHandle<()> {
    let trunks = cfg.trunks.clone();
    t.update_trunk_states(|s| {
        for tr in trunks
            .iter()
            .filter(|tr| tr.options_interval.is_some() || tr.register.is_some())
        {
            let st = s.entry(tr.name.clone()).or_default();
            if tr.register.is_some() {
                st.registration = RegState::Registering;
            }
        }
    });
    tokio::spawn(async move {
        let now = Instant::now();
        let local = t.local_addr();
        let mut keep: Vec<Option<Keepalive>> = trunks
            .iter()
            .map(|tr| {
                tr.options_interval
                    .map(|i| Keepalive::new(now, i, tr.options_failures))
            })
            .collect();
        let mut regs: Vec<Option<Registration>> = trunks
            .iter()
            .map(|tr| Registration::new(now, tr, local))
            .collect();
        if keep.iter().all(Option::is_none) && regs.iter().all(Option::is_none) {
            return; // nothing to keep up
        }
        let (res_tx, mut res_rx) = mpsc::unbounded_channel::<(usize, Probe, Result<Option<Box<Msg>>, ()>)>();
        let send = |i: usize, kind: Probe, dest: SocketAddr, bytes: Vec<u8>| {
            let t = t.clone();
            let res_tx = res_tx.clone();
            tokio::spawn(async move {
                let r = t.request(dest, bytes).await.map_err(|_| ());
                let _ = res_tx.send((i, kind, r));
            });
        };
        loop {
            let now = Instant::now();
            for (i, tr) in trunks.iter().enumerate() {
                if let Some(Some(k)) = keep.get_mut(i)
                    && k.handle_timeout(now)
                {
                    send(i, Probe::Options, tr.next_hop(), options_request(local, tr));
                }
                if let Some(Some(r)) = regs.get_mut(i)
                    && let Some(bytes) = r.handle_timeout(now)
                {
                    send(i, Probe::Register, tr.next_hop(), bytes);
                }
            }
            let deadline = keep
                .iter()
                .flatten()
                .filter_map(Keepalive::poll_timeout)
                .chain(regs.iter().flatten().filter_map(Registration::poll_timeout))
                .min()
                .unwrap_or(now + Duration::from_secs(3600));
            tokio::select! {
                r = res_rx.recv() => {
                    let Some((i, kind, r)) = r else { return };
                    let Ok(resp) = r else { return }; // the telephony task stopped
                    let now = Instant::now();
                    let Some(tr) = trunks.get(i) else { continue };
                    match kind {
                        Probe::Options => {
                            if let Some(Some(k)) = keep.get_mut(i) {
                                k.on_result(now, resp.as_ref().and_then(|m| m.code()));
                                let (up, code) = (k.is_up(), k.last_code);
                                let failures = k.failures;
                                t.update_trunk_states(|s| {
                                    let st = s.entry(tr.name.clone()).or_default();
                                    st.up = up;
                                    st.last_code = code;
                                    st.consecutive_failures = failures;
                                });
                            }
                        }
                        Probe::Register => {
                            if let Some(Some(reg)) = regs.get_mut(i) {
                                if let Some(bytes) = reg.on_response(now, resp.as_deref()) {
                                    send(i, Probe::Register, tr.next_hop(), bytes);
                                }
                                let state = reg.state().clone();
                                t.update_trunk_states(|s| {
                                    s.entry(tr.name.clone()).or_default().registration = state;
                                });
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    })
}

fn options_request(local: SocketAddr, trunk: &Trunk) -> Vec<u8> {
    let tp = trunk.transport;
    RequestBuilder::new(&Method::Options, &format!("sip:{}", trunk.domain))
        .header(
            "Via",
            format!(
                "SIP/2.0/{} {local};branch={};rport",
                tp.via_token(),
                msg::new_branch()
            ),
        )
        .header("Max-Forwards", 70)
        .header("From", format!("<sip:boomerang@{local}>;tag={}", msg::token(10)))
        .header("To", format!("<sip:{}>", trunk.domain))
        .header("Call-ID", format!("{}@boomerang", msg::token(20)))
        .header("CSeq", "1 OPTIONS")
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::msg::{parse, response_to};

    fn trunk(register: bool) -> Trunk {
        let text = format!(
            "[[trunks]]\nname = \"a\"\naddress = \"127.0.0.1:5062\"\nusername = \"acct\"\npassword = \"pw\"\n\
             register = {register}\nregister_expires_s = 600\noptions_interval_s = 10\noptions_failures = 2\n\
             failover = \"b\"\n[[trunks]]\nname = \"b\"\naddress = \"127.0.0.1:5064\"\nfailover = \"c\"\n\
             [[trunks]]\nname = \"c\"\naddress = \"127.0.0.1:5066\"\n"
        );
        crate::sip::config::parse(&toml::from_str(&text).expect("toml"))
            .expect("valid")
            .trunks
            .remove(0)
    }

    #[test]
    fn keepalive_goes_down_after_n_failures_and_up_after_one_success() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(t0, Duration::from_secs(10), 2);
        assert!(k.handle_timeout(t0));
        assert!(!k.handle_timeout(t0), "one OPTIONS at a time");
        k.on_result(t0, Some(200));
        assert_eq!(k.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        let t1 = t0 + Duration::from_secs(10);
        assert!(k.handle_timeout(t1));
        k.on_result(t1, None);
        assert!(k.is_up(), "one failure is not enough");
        assert!(k.handle_timeout(t1 + Duration::from_secs(10)));
        k.on_result(t1 + Duration::from_secs(10), Some(503));
        assert!(!k.is_up());
        assert!(k.handle_timeout(t1 + Duration::from_secs(20)));
        k.on_result(t1 + Duration::from_secs(20), Some(405));
        assert!(k.is_up(), "any live answer brings it back");
    }

    #[test]
    fn failover_skips_down_trunks() {
        let cfg = crate::sip::config::parse(
            &toml::from_str(
                "[[trunks]]\nname = \"a\"\naddress = \"127.0.0.1:5062\"\nfailover = \"b\"\n\
                 [[trunks]]\nname = \"b\"\naddress = \"127.0.0.1:5064\"\nfailover = \"c\"\n\
                 [[trunks]]\nname = \"c\"\naddress = \"127.0.0.1:5066\"\n",
            )
            .expect("toml"),
        )
        .expect("valid");
        let a = cfg.trunk("a").expect("a").clone();
        let mut states = TrunkStates::new();
        assert_eq!(first_up(&cfg, &a, &[], &states).map(|t| t.name), Some("a".into()));
        states.insert(
            "a".into(),
            TrunkStatus {
                up: false,
                ..TrunkStatus::default()
            },
        );
        states.insert(
            "b".into(),
            TrunkStatus {
                up: false,
                ..TrunkStatus::default()
            },
        );
        assert_eq!(first_up(&cfg, &a, &[], &states).map(|t| t.name), Some("c".into()));
        assert_eq!(first_up(&cfg, &a, &["c".into()], &states), None);
    }

    #[test]
    fn register_answers_the_challenge_then_refreshes_at_half_the_granted_time() {
        let t0 = Instant::now();
        let tr = trunk(true);
        let mut r = Registration::new(t0, &tr, "127.0.0.1:5060".parse().expect("addr")).expect("registers");
        let first = r.handle_timeout(t0).expect("REGISTER now");
        let req = parse(&first).expect("parses");
        assert_eq!(req.method(), Some(&Method::Register));
        assert_eq!(req.header("expires"), Some("600"));
        let challenge = response_to(
            &req,
            401,
            "Unauthorized",
            Some("x"),
            &[(
                "WWW-Authenticate",
                "Digest realm=\"t\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"".into(),
            )],
            None,
        );
        let second = r
            .on_response(t0, Some(&parse(&challenge).expect("parses")))
            .expect("answered");
        let req2 = parse(&second).expect("parses");
        assert_eq!(req2.cseq, req.cseq + 1);
        assert_eq!(req2.call_id, req.call_id);
        assert!(
            req2.header("authorization")
                .is_some_and(|a| a.contains("username=\"acct\""))
        );
        // A second 401 in the same round is a failure (wrong credentials), retried later.
        let again = response_to(&req2, 401, "Unauthorized", Some("x"), &[], None);
        assert_eq!(r.on_response(t0, Some(&parse(&again).expect("parses"))), None);
        assert_eq!(r.state(), &RegState::Failed { code: Some(401) });
        assert_eq!(r.poll_timeout(), Some(t0 + RETRY));
        // Retry, accepted with a shorter expiry: refreshed at half of it.
        let t1 = t0 + RETRY;
        let third = parse(&r.handle_timeout(t1).expect("retry")).expect("parses");
        let ok = response_to(
            &third,
            200,
            "OK",
            Some("x"),
            &[("Contact", "<sip:acct@127.0.0.1:5060>;expires=120".into())],
            None,
        );
        assert_eq!(r.on_response(t1, Some(&parse(&ok).expect("parses"))), None);
        assert_eq!(r.state(), &RegState::Registered { expires_s: 120 });
        assert_eq!(r.poll_timeout(), Some(t1 + Duration::from_secs(60)));
        assert!(r.handle_timeout(t1 + Duration::from_secs(59)).is_none());
        assert!(r.handle_timeout(t1 + Duration::from_secs(60)).is_some());
        // No answer at all: failed, retried.
        assert_eq!(r.on_response(t1 + Duration::from_secs(92), None), None);
        assert_eq!(r.state(), &RegState::Failed { code: None });
        assert!(Registration::new(t0, &trunk(false), "127.0.0.1:5060".parse().expect("addr")).is_none());
    }
}
