//! Telephony configuration: trunks, agent accounts and media settings, parsed from the server's
//! TOML (`[telephony]`, `[[trunks]]`, `[[sip_accounts]]`). Errors are values naming the field.
//!
//! ```toml
//! [telephony]
//! rtp_ports = "20000-29999"   # even ports are used
//! no_rtp_timeout_s = 60
//! relay_threads = 2           # threads relaying bridged calls' RTP (0: in each leg's task)
//! relay_tick_us = 500         # how often they look at their sockets (0: wake per packet)
//! realm = "boomerang"         # registrar realm for agents
//! listen = "127.0.0.1:5060"   # SIP UDP address of `boomerang serve` (default 127.0.0.1:5060)
//! route_points = ["3000", "3001"]   # numbers answered as inbound calls (others get 404)
//! treatments_dir = "treatments"      # where treatment names (test calls' `play`) are found
//!
//! [[trunks]]
//! name = "main"
//! address = "127.0.0.1:5062"  # where INVITEs go (or the outbound proxy)
//! outbound_proxy = "127.0.0.1:5070"   # optional
//! domain = "trunk.example"    # Request-URI host; default: address
//! transport = "udp"           # udp or tcp (tls: not yet)
//! offer_100rel = true         # Supported: 100rel in INVITEs (a Require: 100rel is PRACKed anyway)
//! session_expires_s = 1800    # RFC 4028 session timer offered (0 or absent: off)
//! min_se_s = 90
//! register = true             # REGISTER to the trunk (needs username/password), refreshed
//! register_expires_s = 3600
//! options_failures = 3        # OPTIONS keepalive failures before the trunk is down
//! caller_id = "8999"          # From user part
//! p_asserted_identity = "<sip:+33123456789@trunk.example>"
//! prefix = "0"                # _prefix_dial_out
//! username = "acct"           # digest credentials (401/407)
//! password = "secret"
//! options_interval_s = 30     # OPTIONS keepalive, 0 = off
//! failover = "backup"         # trunk tried next on 503 or timeout
//! ring_timeout_s = 30         # _ixn_createcall_timeout
//!
//! [[sip_accounts]]
//! user = "agent1"             # registers with digest
//! password = "secret"
//! [[sip_accounts]]
//! user = "agent2"
//! uri = "sip:agent2@127.0.0.1:5080"   # static agent, no registration
//! ```

use std::net::SocketAddr;
use std::time::Duration;

/// A configuration error: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// One SIP trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    pub name: String,
    pub address: SocketAddr,
    pub outbound_proxy: Option<SocketAddr>,
    pub domain: String,
    pub caller_id: String,
    pub p_asserted_identity: Option<String>,
    pub prefix: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub options_interval: Option<Duration>,
    pub failover: Option<String>,
    pub ring_timeout: Duration,
    pub transport: crate::sip::transport::Transport,
    pub offer_100rel: bool,
    pub session_timer: Option<crate::sip::session_timer::SessionTimerConfig>,
    /// REGISTER to the trunk with this expiry (refreshed before it runs out).
    pub register: Option<Duration>,
    /// Consecutive OPTIONS failures that mark the trunk down.
    pub options_failures: u32,
}

impl Trunk {
    /// Where requests are sent: the outbound proxy if any, else the trunk address.
    pub fn next_hop(&self) -> SocketAddr {
        self.outbound_proxy.unwrap_or(self.address)
    }

    /// The dialled user part: prefix + number with visual separators removed.
    pub fn dial_string(&self, number: &str) -> String {
        let digits: String = number
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect();
        format!("{}{}", self.prefix, digits)
    }
}

/// An agent: a registering account or a static URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub user: String,
    pub password: Option<String>,
    pub uri: Option<String>,
}

/// Everything the telephony layer reads from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelephonyConfig {
    pub rtp_ports: Option<(u16, u16)>,
    pub no_rtp_timeout: Duration,
    /// The RTP relay engine: threads, and how often they look at their sockets.
    pub relay_threads: usize,
    pub relay_tick: Duration,
    pub realm: String,
    pub trunks: Vec<Trunk>,
    pub agents: Vec<Agent>,
    /// SIP listen address; `Some` exactly when a `[telephony]` section is configured.
    pub listen: Option<SocketAddr>,
    /// Numbers (Request-URI user parts) answered as inbound calls.
    pub route_points: Vec<String>,
    /// The treatments folder: treatment names are resolved in it and cannot leave it.
    pub treatments_dir: std::path::PathBuf,
}

impl Default for TelephonyConfig {
    fn default() -> Self {
        TelephonyConfig {
            rtp_ports: None,
            no_rtp_timeout: Duration::from_secs(60),
            relay_threads: 2,
            relay_tick: Duration::from_micros(500),
            realm: "boomerang".into(),
            trunks: Vec::new(),
            agents: Vec::new(),
            listen: None,
            route_points: Vec::new(),
            treatments_dir: "treatments".into(),
        }
    }
}

impl TelephonyConfig {
    pub fn trunk(&self, name: &str) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.name == name)
    }

    /// Accounts for the registrar.
    pub fn accounts(&self) -> Vec<(String, String)> {
        self.agents
            .iter()
            .filter_map(|a| Some((a.user.clone(), a.password.clone()?)))
            .collect()
    }
}

fn str_field(t: &toml::Table, field: &str, path: &str) -> Result<Option<String>, ConfigError> {
    match t.get(field) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(format!("{path}.{field}"), "must be a string")),
    }
}

fn int_field(t: &toml::Table, field: &str, path: &str) -> Result<Option<u64>, ConfigError> {
    match t.get(field) {
        None => Ok(None),
        Some(toml::Value::Integer(i)) if *i >= 0 => Ok(Some(*i as u64)),
        Some(_) => Err(err(format!("{path}.{field}"), "must be a non-negative integer")),
    }
}

fn addr_field(t: &toml::Table, field: &str, path: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match str_field(t, field, path)? {
        None => Ok(None),
        Some(s) => s.parse::<SocketAddr>().map(Some).map_err(|_| {
            err(
                format!("{path}.{field}"),
                format!("'{s}' is not an IP:port address"),
            )
        }),
    }
}

fn tables<'a>(root: &'a toml::Table, key: &str) -> Result<Vec<&'a toml::Table>, ConfigError> {
    match root.get(key) {
        None => Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_table()
                    .ok_or_else(|| err(format!("{key}[{i}]"), "must be a table"))
            })
            .collect(),
        Some(_) => Err(err(key, "must be an array of tables ([[{key}]])")),
    }
}

/// `[telephony] route_points = ["3000", ...]`: dialable numbers, no duplicates.
fn route_points(t: &toml::Table) -> Result<Vec<String>, ConfigError> {
    let Some(v) = t.get("route_points") else {
        return Ok(Vec::new());
    };
    let list = v
        .as_array()
        .ok_or_else(|| err("telephony.route_points", "must be a list of numbers (strings)"))?;
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, n) in list.iter().enumerate() {
        let field = format!("telephony.route_points[{i}]");
        let n = n.as_str().ok_or_else(|| err(&field, "must be a string"))?.trim();
        if n.is_empty() || n.len() > 64 {
            return Err(err(&field, "must be 1 to 64 characters"));
        }
        if !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#' | '.' | '-' | '_'))
        {
            return Err(err(
                &field,
                format!("'{n}' is not a SIP user part (digits, letters, + * # . - _)"),
            ));
        }
        if out.iter().any(|o| o == n) {
            return Err(err(&field, format!("'{n}' is listed twice")));
        }
        out.push(n.to_string());
    }
    Ok(out)
}

/// Parses the telephony sections of the whole configuration table.
pub fn parse(root: &toml::Table) -> Result<TelephonyConfig, ConfigError> {
    let mut cfg = TelephonyConfig::default();
    if let Some(v) = root.get("telephony") {
        let t = v.as_table().ok_or_else(|| err("telephony", "must be a table"))?;
        if let Some(r) = str_field(t, "rtp_ports", "telephony")? {
            let (lo, hi) = r
                .split_once('-')
                .ok_or_else(|| err("telephony.rtp_ports", "expected LOW-HIGH"))?;
            let lo: u16 = lo
                .trim()
                .parse()
                .map_err(|_| err("telephony.rtp_ports", "bad low port"))?;
            let hi: u16 = hi
                .trim()
                .parse()
                .map_err(|_| err("telephony.rtp_ports", "bad high port"))?;
            if lo < 1024 || hi <= lo {
                return Err(err("telephony.rtp_ports", "need 1024 <= LOW < HIGH"));
            }
            cfg.rtp_ports = Some((lo, hi));
        }
        if let Some(s) = int_field(t, "no_rtp_timeout_s", "telephony")? {
            cfg.no_rtp_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = int_field(t, "relay_threads", "telephony")? {
            if n > 64 {
                return Err(err("telephony.relay_threads", "at most 64"));
            }
            cfg.relay_threads = n as usize;
        }
        if let Some(us) = int_field(t, "relay_tick_us", "telephony")? {
            if us > 20_000 {
                return Err(err("telephony.relay_tick_us", "at most 20000 (one packet time)"));
            }
            cfg.relay_tick = Duration::from_micros(us);
        }
        if let Some(r) = str_field(t, "realm", "telephony")? {
            cfg.realm = r;
        }
        cfg.listen =
            Some(addr_field(t, "listen", "telephony")?.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 5060))));
        cfg.route_points = route_points(t)?;
        if let Some(dir) = str_field(t, "treatments_dir", "telephony")? {
            cfg.treatments_dir = dir.into();
        }
    }
    for (i, t) in tables(root, "trunks")?.into_iter().enumerate() {
        let path = format!("trunks[{i}]");
        let name = str_field(t, "name", &path)?.ok_or_else(|| err(format!("{path}.name"), "required"))?;
        let address =
            addr_field(t, "address", &path)?.ok_or_else(|| err(format!("{path}.address"), "required"))?;
        let transport = match str_field(t, "transport", &path)? {
            None => crate::sip::transport::Transport::Udp,
            Some(tr) => match crate::sip::transport::Transport::parse(&tr) {
                Some(crate::sip::transport::Transport::Tls) => {
                    return Err(err(format!("{path}.transport"), "tls is not supported yet"));
                }
                Some(x) => x,
                None => return Err(err(format!("{path}.transport"), "udp or tcp")),
            },
        };
        let offer_100rel = match t.get("offer_100rel") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => return Err(err(format!("{path}.offer_100rel"), "must be true or false")),
        };
        let register = match t.get("register") {
            None | Some(toml::Value::Boolean(false)) => false,
            Some(toml::Value::Boolean(true)) => true,
            Some(_) => return Err(err(format!("{path}.register"), "must be true or false")),
        };
        let session_timer = match int_field(t, "session_expires_s", &path)?.filter(|s| *s > 0) {
            None => None,
            Some(se) => {
                let min = int_field(t, "min_se_s", &path)?.unwrap_or(90).clamp(1, se);
                Some(crate::sip::session_timer::SessionTimerConfig {
                    session_expires: Duration::from_secs(se),
                    min_se: Duration::from_secs(min),
                })
            }
        };
        let username = str_field(t, "username", &path)?;
        let password = str_field(t, "password", &path)?;
        if username.is_some() != password.is_some() {
            return Err(err(
                format!("{path}.password"),
                "username and password go together",
            ));
        }
        if register && username.is_none() {
            return Err(err(format!("{path}.register"), "needs username and password"));
        }
        let register = register.then(|| {
            int_field(t, "register_expires_s", &path).map(|e| Duration::from_secs(e.unwrap_or(3600).max(10)))
        });
        let register = register.transpose()?;
        let options_failures = int_field(t, "options_failures", &path)?
            .unwrap_or(3)
            .clamp(1, 100) as u32;
        cfg.trunks.push(Trunk {
            transport,
            offer_100rel,
            session_timer,
            register,
            options_failures,
            domain: str_field(t, "domain", &path)?.unwrap_or_else(|| address.to_string()),
            name,
            address,
            outbound_proxy: addr_field(t, "outbound_proxy", &path)?,
            caller_id: str_field(t, "caller_id", &path)?.unwrap_or_else(|| "boomerang".into()),
            p_asserted_identity: str_field(t, "p_asserted_identity", &path)?,
            prefix: str_field(t, "prefix", &path)?.unwrap_or_default(),
            username,
            password,
            options_interval: int_field(t, "options_interval_s", &path)?
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
            failover: str_field(t, "failover", &path)?,
            ring_timeout: Duration::from_secs(int_field(t, "ring_timeout_s", &path)?.unwrap_or(30).max(1)),
        });
    }
    for t in &cfg.trunks {
        if let Some(f) = &t.failover
            && cfg.trunk(f).is_none()
        {
            return Err(err(
                format!("trunks.{}.failover", t.name),
                format!("no trunk named '{f}'"),
            ));
        }
    }
    for (i, t) in tables(root, "sip_accounts")?.into_iter().enumerate() {
        let path = format!("sip_accounts[{i}]");
        let user = str_field(t, "user", &path)?.ok_or_else(|| err(format!("{path}.user"), "required"))?;
        let password = str_field(t, "password", &path)?;
        let uri = str_field(t, "uri", &path)?;
        if password.is_none() && uri.is_none() {
            return Err(err(
                path.clone(),
                "an agent needs a password (registers) or a uri (static)",
            ));
        }
        cfg.agents.push(Agent { user, password, uri });
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trunks_agents_and_media() {
        let root: toml::Table = toml::from_str(
            r#"
[telephony]
rtp_ports = "20000-20999"
no_rtp_timeout_s = 30
relay_threads = 1
relay_tick_us = 0
[[trunks]]
name = "main"
address = "127.0.0.1:5062"
prefix = "0"
username = "u"
password = "p"
failover = "backup"
ring_timeout_s = 20
[[trunks]]
name = "backup"
address = "127.0.0.1:5064"
[[sip_accounts]]
user = "agent1"
password = "s"
[[sip_accounts]]
user = "agent2"
uri = "sip:agent2@127.0.0.1:5080"
"#,
        )
        .expect("toml");
        let c = parse(&root).expect("valid");
        assert_eq!(c.rtp_ports, Some((20000, 20999)));
        assert_eq!((c.relay_threads, c.relay_tick), (1, Duration::ZERO));
        assert_eq!(c.trunks.len(), 2);
        let main = c.trunk("main").expect("main");
        assert_eq!(main.dial_string("06 12-34"), "0061234");
        assert_eq!(main.ring_timeout, Duration::from_secs(20));
        assert_eq!(main.domain, "127.0.0.1:5062");
        assert_eq!(c.accounts(), vec![("agent1".to_string(), "s".to_string())]);
        assert_eq!(c.listen, "127.0.0.1:5060".parse().ok());
        let none = parse(&toml::Table::new()).expect("empty");
        assert_eq!(none.listen, None, "no [telephony]: no SIP transport");
    }

    #[test]
    fn route_points_are_validated() {
        let c = parse(
            &toml::from_str::<toml::Table>(
                "[telephony]\nlisten = \"127.0.0.1:0\"\nroute_points = [\"3000\", \"+33123\"]\n",
            )
            .expect("toml"),
        )
        .expect("valid");
        assert_eq!(c.route_points, vec!["3000".to_string(), "+33123".to_string()]);
        assert_eq!(c.listen, "127.0.0.1:0".parse().ok());
        let bad = |s: &str| {
            parse(&toml::from_str::<toml::Table>(s).expect("toml"))
                .expect_err("invalid")
                .field
        };
        assert_eq!(
            bad("[telephony]\nroute_points = \"3000\"\n"),
            "telephony.route_points"
        );
        assert_eq!(
            bad("[telephony]\nroute_points = [\"30 00\"]\n"),
            "telephony.route_points[0]"
        );
        assert_eq!(
            bad("[telephony]\nroute_points = [\"1\", \"1\"]\n"),
            "telephony.route_points[1]"
        );
        assert_eq!(
            bad("[telephony]\nroute_points = [3000]\n"),
            "telephony.route_points[0]"
        );
        assert_eq!(bad("[telephony]\nlisten = \"x\"\n"), "telephony.listen");
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |s: &str| {
            parse(&toml::from_str::<toml::Table>(s).expect("toml"))
                .expect_err("invalid")
                .field
        };
        assert_eq!(bad("[[trunks]]\nname = \"a\"\n"), "trunks[0].address");
        assert_eq!(
            bad("[[trunks]]\nname = \"a\"\naddress = \"x\"\n"),
            "trunks[0].address"
        );
        assert_eq!(
            bad("[[trunks]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\nfailover = \"b\"\n"),
            "trunks.a.failover"
        );
        assert_eq!(bad("[telephony]\nrtp_ports = \"9-5\"\n"), "telephony.rtp_ports");
        assert_eq!(bad("[[sip_accounts]]\nuser = \"a\"\n"), "sip_accounts[0]");
    }

    #[test]
    fn transport_100rel_session_timer_register_and_keepalive_options() {
        let root: toml::Table = toml::from_str(
            r#"
[[trunks]]
name = "t"
address = "127.0.0.1:5062"
transport = "TCP"
offer_100rel = true
session_expires_s = 600
min_se_s = 120
username = "u"
password = "p"
register = true
register_expires_s = 300
options_interval_s = 15
options_failures = 4
"#,
        )
        .expect("toml");
        let c = parse(&root).expect("valid");
        let t = c.trunk("t").expect("t");
        assert_eq!(t.transport, crate::sip::transport::Transport::Tcp);
        assert!(t.offer_100rel);
        assert_eq!(
            t.session_timer,
            Some(crate::sip::session_timer::SessionTimerConfig {
                session_expires: Duration::from_secs(600),
                min_se: Duration::from_secs(120),
            })
        );
        assert_eq!(t.register, Some(Duration::from_secs(300)));
        assert_eq!(t.options_failures, 4);
        let bad = |s: &str| {
            parse(&toml::from_str::<toml::Table>(s).expect("toml"))
                .expect_err("invalid")
                .field
        };
        let base = "[[trunks]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n";
        assert_eq!(
            bad(&format!("{base}transport = \"tls\"\n")),
            "trunks[0].transport"
        );
        assert_eq!(
            bad(&format!("{base}transport = \"sctp\"\n")),
            "trunks[0].transport"
        );
        assert_eq!(bad(&format!("{base}register = true\n")), "trunks[0].register");
        assert_eq!(
            bad(&format!("{base}offer_100rel = 1\n")),
            "trunks[0].offer_100rel"
        );
    }
}
