//! Registrar for agents' phones (RFC 3261 §10): REGISTER with digest authentication (RFC 7616:
//! MD5 and SHA-256, qop=auth) against configured accounts, several contacts per account, expiry,
//! unregister (`Expires: 0`, `Contact: *`). Sans-IO: `handle` returns the response bytes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::headers::auth::{Algorithm, AuthQop};

use crate::sip::msg::{self, Method, Msg};

/// Longest registration we grant, and the default when the phone asks for none.
const MAX_EXPIRES: u64 = 3600;
/// Nonces we remember (oldest are forgotten first).
const MAX_NONCES: usize = 4096;
const NONCE_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
struct Binding {
    uri: String,
    expires_at: Instant,
}

/// The registrar state.
#[derive(Debug)]
pub struct Registrar {
    realm: String,
    accounts: HashMap<String, String>,
    bindings: HashMap<String, Vec<Binding>>,
    nonces: HashMap<String, Instant>,
    /// Also challenge with SHA-256 (RFC 7616). Off by default: some phones (libre/baresip 1.0)
    /// refuse a challenge set that contains an algorithm they do not know.
    sha256: bool,
}

impl Registrar {
    pub fn new(realm: String, accounts: Vec<(String, String)>) -> Self {
        Registrar {
            realm,
            accounts: accounts.into_iter().collect(),
            bindings: HashMap::new(),
            nonces: HashMap::new(),
            sha256: false,
        }
    }

    /// Offer a SHA-256 challenge before the MD5 one.
    pub fn with_sha256(mut self, on: bool) -> Self {
        self.sha256 = on;
        self
    }

    /// Current contacts of `user`.
    pub fn contacts(&self, user: &str, now: Instant) -> Vec<String> {
        self.bindings
            .get(user)
            .map(|v| {
                v.iter()
                    .filter(|b| b.expires_at > now)
                    .map(|b| b.uri.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// When the last of `user`'s current bindings expires; `None`: not registered.
    pub fn expiry(&self, user: &str, now: Instant) -> Option<Instant> {
        self.bindings
            .get(user)?
            .iter()
            .map(|b| b.expires_at)
            .filter(|&t| t > now)
            .max()
    }

    fn challenge(&mut self, now: Instant, req: &Msg, stale: bool) -> Vec<u8> {
        self.nonces.retain(|_, t| *t > now);
        if self.nonces.len() >= MAX_NONCES {
            // Forget the oldest half; a phone holding one of them just gets a new challenge.
            let mut v: Vec<(String, Instant)> = self.nonces.drain().collect();
            v.sort_by_key(|(_, t)| *t);
            self.nonces = v.into_iter().skip(MAX_NONCES / 2).collect();
        }
        let nonce = msg::token(24);
        self.nonces.insert(nonce.clone(), now + NONCE_LIFETIME);
        let stale = if stale { ", stale=true" } else { "" };
        let www = |alg: &str| {
            format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={alg}, qop=\"auth\"{stale}",
                self.realm
            )
        };
        let mut challenges = Vec::with_capacity(2);
        if self.sha256 {
            challenges.push(("WWW-Authenticate", www("SHA-256")));
        }
        challenges.push(("WWW-Authenticate", www("MD5")));
        msg::response_to(req, 401, "Unauthorized", Some(&msg::token(8)), &challenges, None)
    }

    /// A REGISTER request: the response to send.
    pub fn handle(&mut self, now: Instant, req: &Msg, _src: SocketAddr) -> Vec<u8> {
        let tag = msg::token(8);
        let user = user_of(&req.to.uri);
        let Some(password) = self.accounts.get(&user).cloned() else {
            return msg::response_to(req, 403, "Forbidden", Some(&tag), &[], None);
        };
        let Some(auth) = req.header("authorization").map(parse_auth) else {
            return self.challenge(now, req, false);
        };
        let field = |k: &str| auth.get(k).map(String::as_str).unwrap_or("");
        if field("username") != user || field("realm") != self.realm {
            return msg::response_to(req, 403, "Forbidden", Some(&tag), &[], None);
        }
        let nonce = field("nonce").to_string();
        if self.nonces.get(&nonce).is_none_or(|t| *t <= now) {
            return self.challenge(now, req, true);
        }
        let algorithm = match field("algorithm").to_ascii_uppercase().as_str() {
            "" | "MD5" => Algorithm::Md5,
            "SHA-256" => Algorithm::Sha256,
            _ => return self.challenge(now, req, false),
        };
        let Ok(uri) = rsip::Uri::try_from(field("uri")) else {
            return msg::response_to(req, 400, "Bad Request", Some(&tag), &[], None);
        };
        let qop = match field("qop") {
            "" => None,
            "auth" => {
                let nc = u8::from_str_radix(field("nc"), 16).unwrap_or(0);
                Some(AuthQop::Auth {
                    cnonce: field("cnonce").to_string(),
                    nc,
                })
            }
            _ => return msg::response_to(req, 400, "Bad Request", Some(&tag), &[], None),
        };
        let digest = rsip::services::DigestGenerator {
            username: &user,
            password: &password,
            nonce: &nonce,
            uri: &uri,
            realm: &self.realm,
            method: &rsip::Method::Register,
            qop: qop.as_ref(),
            algorithm,
        };
        if !digest.verify(field("response")) {
            return self.challenge(now, req, false);
        }
        self.bind(now, req, &user);
        let contacts: Vec<(&str, String)> = self
            .bindings
            .get(&user)
            .map(|v| {
                v.iter()
                    .map(|b| {
                        let secs = b.expires_at.saturating_duration_since(now).as_secs();
                        ("Contact", format!("<{}>;expires={secs}", b.uri))
                    })
                    .collect()
            })
            .unwrap_or_default();
        msg::response_to(req, 200, "OK", Some(&tag), &contacts, None)
    }

    fn bind(&mut self, now: Instant, req: &Msg, user: &str) {
        let default_expires = req
            .header("expires")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(MAX_EXPIRES);
        let list = self.bindings.entry(user.to_string()).or_default();
        list.retain(|b| b.expires_at > now);
        for c in req.header_list("contact") {
            if c.trim() == "*" {
                if default_expires == 0 {
                    list.clear();
                }
                continue;
            }
            let uri = msg::addr_uri(&c);
            if uri.is_empty() {
                continue;
            }
            let expires = msg::header_param(&c, "expires")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default_expires)
                .min(MAX_EXPIRES);
            list.retain(|b| b.uri != uri);
            if expires > 0 && list.len() < 16 {
                list.push(Binding {
                    uri,
                    expires_at: now + Duration::from_secs(expires),
                });
            }
        }
        if list.is_empty() {
            self.bindings.remove(user);
        }
    }
}

/// The user part of a SIP URI.
pub fn user_of(uri: &str) -> String {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .unwrap_or(uri);
    match rest.split_once('@') {
        Some((u, _)) => u.split(':').next().unwrap_or("").to_string(),
        None => String::new(),
    }
}

/// Parameters of a `Digest k=v, k="v"` header value (keys lower-case).
pub fn parse_auth(value: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let rest = value.trim();
    let rest = rest
        .strip_prefix("Digest")
        .or_else(|| rest.strip_prefix("digest"))
        .unwrap_or(rest);
    for part in msg::split_list(rest) {
        if let Some((k, v)) = part.split_once('=') {
            out.insert(
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            );
        }
    }
    out
}

/// Computes an `Authorization`/`Proxy-Authorization` value answering a challenge (UAC side,
/// for trunks and tests).
pub fn answer_challenge(
    challenge: &str,
    method: &Method,
    uri: &str,
    user: &str,
    password: &str,
) -> Option<String> {
    let c = parse_auth(challenge);
    let realm = c.get("realm")?.clone();
    let nonce = c.get("nonce")?.clone();
    let (algorithm, alg_name) = match c.get("algorithm").map(|a| a.to_ascii_uppercase()).as_deref() {
        None | Some("MD5") => (Algorithm::Md5, "MD5"),
        Some("SHA-256") => (Algorithm::Sha256, "SHA-256"),
        _ => return None,
    };
    let ruri = rsip::Uri::try_from(uri).ok()?;
    let qop_auth = c
        .get("qop")
        .is_some_and(|q| q.split(',').any(|x| x.trim() == "auth"));
    let cnonce = msg::token(12);
    let qop = qop_auth.then(|| AuthQop::Auth {
        cnonce: cnonce.clone(),
        nc: 1,
    });
    let method: rsip::Method = method.as_str().parse().ok()?;
    let digest = rsip::services::DigestGenerator {
        username: user,
        password,
        nonce: &nonce,
        uri: &ruri,
        realm: &realm,
        method: &method,
        qop: qop.as_ref(),
        algorithm,
    };
    let response = digest.compute();
    let mut v = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={alg_name}"
    );
    if qop_auth {
        v.push_str(&format!(", qop=auth, nc=00000001, cnonce=\"{cnonce}\""));
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::msg::RequestBuilder;

    fn register(auth: Option<&str>, contact: &str, expires: u32) -> Msg {
        let mut b = RequestBuilder::new(&Method::Register, "sip:127.0.0.1")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg")
            .header("From", "<sip:agent1@127.0.0.1>;tag=r")
            .header("To", "<sip:agent1@127.0.0.1>")
            .header("Call-ID", "reg-1")
            .header("CSeq", "1 REGISTER")
            .header("Contact", contact)
            .header("Expires", expires);
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        msg::parse(&b.finish()).expect("parses")
    }

    fn src() -> SocketAddr {
        "127.0.0.1:5070".parse().expect("addr")
    }

    fn challenge_of(resp: &[u8], alg: &str) -> String {
        let m = msg::parse(resp).expect("parses");
        assert_eq!(m.code(), Some(401));
        m.headers
            .iter()
            .filter(|(n, _)| n == "www-authenticate")
            .map(|(_, v)| v.clone())
            .find(|v| v.contains(alg))
            .expect("challenge")
    }

    #[test]
    fn digest_md5_and_sha256_register_expire_and_unregister() {
        let now = Instant::now();
        let mut r =
            Registrar::new("boomerang".into(), vec![("agent1".into(), "secret".into())]).with_sha256(true);
        for alg in ["MD5", "SHA-256"] {
            let ch = challenge_of(
                &r.handle(now, &register(None, "<sip:agent1@127.0.0.1:5070>", 60), src()),
                alg,
            );
            let auth = answer_challenge(&ch, &Method::Register, "sip:127.0.0.1", "agent1", "secret")
                .expect("answer");
            let ok = msg::parse(&r.handle(
                now,
                &register(Some(&auth), "<sip:agent1@127.0.0.1:5070>", 60),
                src(),
            ))
            .expect("parses");
            assert_eq!(ok.code(), Some(200), "{alg}");
        }
        assert_eq!(r.contacts("agent1", now), vec!["sip:agent1@127.0.0.1:5070"]);
        assert!(
            r.contacts("agent1", now + Duration::from_secs(61)).is_empty(),
            "expired"
        );
        // Wrong password: challenged again, nothing bound.
        let ch = challenge_of(
            &r.handle(now, &register(None, "<sip:agent1@127.0.0.1:5071>", 60), src()),
            "MD5",
        );
        let bad =
            answer_challenge(&ch, &Method::Register, "sip:127.0.0.1", "agent1", "wrong").expect("answer");
        let resp = r.handle(
            now,
            &register(Some(&bad), "<sip:agent1@127.0.0.1:5071>", 60),
            src(),
        );
        assert_eq!(msg::parse(&resp).expect("parses").code(), Some(401));
        assert_eq!(r.contacts("agent1", now).len(), 1);
        // Unregister with Contact: * and Expires: 0.
        let ch = challenge_of(&r.handle(now, &register(None, "*", 0), src()), "MD5");
        let auth =
            answer_challenge(&ch, &Method::Register, "sip:127.0.0.1", "agent1", "secret").expect("answer");
        let resp = r.handle(now, &register(Some(&auth), "*", 0), src());
        assert_eq!(msg::parse(&resp).expect("parses").code(), Some(200));
        assert!(r.contacts("agent1", now).is_empty());
    }

    #[test]
    fn unknown_account_is_forbidden() {
        let mut r = Registrar::new("boomerang".into(), vec![]);
        let resp = r.handle(Instant::now(), &register(None, "<sip:x@127.0.0.1>", 60), src());
        assert_eq!(msg::parse(&resp).expect("parses").code(), Some(403));
    }
}
