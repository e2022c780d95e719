//! SIP messages: parsing with `rsip` plus a thin wrapper of our own.
//!
//! `rsip` tokenises the start line, the headers and the body. It does not check the framing
//! (Content-Length), does not split comma-separated header lists and gives no quick access to the
//! fields transactions and dialogs need, so [`Msg`] extracts them once: top Via (branch, sent-by,
//! `rport`), From/To with their tags, Call-ID, CSeq, Max-Forwards, Contact, Record-Route. Every
//! mandatory header is checked here; a datagram that fails is an error value, never a panic.
//!
//! Messages we send are written by [`RequestBuilder`] and [`response_to`]: plain text with a
//! computed Content-Length, round-tripped through the parser in the tests.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// Largest datagram we accept (RFC 3261 §18.1.1 allows up to 65,535 over UDP).
pub const MAX_MESSAGE: usize = 65_535;
/// Most headers we accept in one message.
pub const MAX_HEADERS: usize = 128;

/// SIP methods. Unknown methods are kept by name so a 501 can be answered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Update,
    Prack,
    Refer,
    Notify,
    Subscribe,
    Message,
    Publish,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a datagram was not accepted as a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message too large ({0} bytes)")]
    TooLarge(usize),
    #[error("not a SIP message: {0}")]
    Syntax(String),
    #[error("too many headers")]
    TooManyHeaders,
    #[error("missing or bad mandatory header {0}")]
    Missing(&'static str),
    #[error("bad Content-Length")]
    ContentLength,
}

/// The start line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: String },
    Response { code: u16, reason: String },
}

/// The fields of the top Via that transactions and the transport use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopVia {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub branch: String,
    /// `rport` present (with or without a value).
    pub rport: bool,
}

/// A From or To header: its URI and tag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameAddr {
    /// The whole header value as received.
    pub raw: String,
    /// The URI without angle brackets or parameters outside them.
    pub uri: String,
    pub tag: Option<String>,
}

/// A parsed SIP message with its mandatory fields extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub start: StartLine,
    /// Every header as (lower-case long name, value), Via lists split into one entry each.
    pub headers: Vec<(String, String)>,
    pub top_via: TopVia,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: Method,
    pub max_forwards: Option<u32>,
    pub body: Vec<u8>,
}

impl Msg {
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn reason(&self) -> &str {
        match &self.start {
            StartLine::Response { reason, .. } => reason,
            StartLine::Request { .. } => "",
        }
    }

    pub fn request_uri(&self) -> &str {
        match &self.start {
            StartLine::Request { uri, .. } => uri,
            StartLine::Response { .. } => "",
        }
    }

    /// First value of a header (lower-case long name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-separated lists split.
    pub fn header_list(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| split_list(v))
            .collect()
    }

    /// The Via values, top first.
    pub fn vias(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "via")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// URI of the first Contact.
    pub fn contact_uri(&self) -> Option<String> {
        let first = self.header_list("contact").into_iter().next()?;
        let uri = addr_uri(&first);
        if uri.is_empty() || uri == "*" {
            None
        } else {
            Some(uri)
        }
    }

    /// Record-Route entries in message order.
    pub fn record_route(&self) -> Vec<String> {
        self.header_list("record-route")
    }

    /// RFC 3581: note the source address in the top Via (`received`, and `rport` if asked).
    pub fn stamp_received(&mut self, src: SocketAddr) {
        let Some(pos) = self.headers.iter().position(|(n, _)| n == "via") else {
            return;
        };
        let Some((_, v)) = self.headers.get_mut(pos) else {
            return;
        };
        let mut out = String::with_capacity(v.len() + 32);
        let mut first = true;
        for part in v.split(';') {
            if !first {
                out.push(';');
            }
            let key = part.split('=').next().unwrap_or("").trim();
            if !first && key.eq_ignore_ascii_case("rport") {
                let _ = write!(out, "rport={}", src.port());
            } else if !first && key.eq_ignore_ascii_case("received") {
                continue_strip_semicolon(&mut out);
            } else {
                out.push_str(part);
            }
            first = false;
        }
        let _ = write!(out, ";received={}", src.ip());
        *v = out;
    }
}

fn continue_strip_semicolon(out: &mut String) {
    if out.ends_with(';') {
        out.pop();
    }
}

/// Long lower-case header name for a compact or mixed-case name.
fn long_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "v" => "via".into(),
        "f" => "from".into(),
        "t" => "to".into(),
        "i" => "call-id".into(),
        "m" => "contact".into(),
        "l" => "content-length".into(),
        "c" => "content-type".into(),
        "k" => "supported".into(),
        "s" => "subject".into(),
        "e" => "content-encoding".into(),
        _ => lower,
    }
}

/// Split a header value on commas that are outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut angle = false;
    for ch in value.chars() {
        match ch {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                let t = cur.trim();
                if !t.is_empty() {
                    out.push(t.to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    let t = cur.trim();
    if !t.is_empty() {
        out.push(t.to_string());
    }
    out
}

/// The URI of a name-addr or addr-spec (`"Bob" <sip:bob@h>;tag=1` -> `sip:bob@h`).
pub fn addr_uri(value: &str) -> String {
    if let Some(start) = value.find('<') {
        let rest = value.get(start + 1..).unwrap_or("");
        let end = rest.find('>').unwrap_or(rest.len());
        return rest.get(..end).unwrap_or("").trim().to_string();
    }
    value.split(';').next().unwrap_or("").trim().to_string()
}

/// A parameter of a header value outside the angle brackets (`tag`, `branch`, `expires` ...).
pub fn header_param(value: &str, name: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(i) => value.get(i + 1..).unwrap_or(""),
        None => value.split_once(';').map(|(_, p)| p).unwrap_or(""),
    };
    for p in params.split(';') {
        let mut kv = p.splitn(2, '=');
        let k = kv.next().unwrap_or("").trim();
        if k.eq_ignore_ascii_case(name) {
            return Some(kv.next().unwrap_or("").trim().to_string());
        }
    }
    None
}

fn parse_name_addr(value: &str) -> NameAddr {
    NameAddr {
        raw: value.trim().to_string(),
        uri: addr_uri(value),
        tag: header_param(value, "tag"),
    }
}

fn parse_via(value: &str) -> Option<TopVia> {
    let mut parts = value.split(';');
    let head = parts.next()?.trim();
    let (proto, sent_by) = head.split_once(char::is_whitespace)?;
    let transport = proto.trim().rsplit('/').next()?.to_ascii_uppercase();
    let sent_by = sent_by.trim();
    let (host, port) = if let Some(rest) = sent_by.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .map(|p| p.trim().parse::<u16>())
            .transpose()
            .ok()?;
        (h.to_string(), port)
    } else if let Some((h, p)) = sent_by.split_once(':') {
        (h.to_string(), Some(p.trim().parse::<u16>().ok()?))
    } else {
        (sent_by.to_string(), None)
    };
    if host.is_empty() {
        return None;
    }
    let mut via = TopVia {
        transport,
        host,
        port,
        ..TopVia::default()
    };
    for p in parts {
        let mut kv = p.splitn(2, '=');
        let k = kv.next().unwrap_or("").trim();
        if k.eq_ignore_ascii_case("branch") {
            via.branch = kv.next().unwrap_or("").trim().to_string();
        } else if k.eq_ignore_ascii_case("rport") {
            via.rport = true;
        }
    }
    Some(via)
}

/// Parse one datagram. Never panics; every failure is a [`ParseError`].
pub fn parse(data: &[u8]) -> Result<Msg, ParseError> {
    if data.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge(data.len()));
    }
    // rsip is a nom parser over bytes; it is fuzzed through our fuzz target, and the unwind guard
    // keeps a parser bug in a dependency from taking the transport task down with it.
    let parsed = std::panic::catch_unwind(|| rsip::SipMessage::try_from(data));
    // rsip knows a fixed set of methods; a request with another (extension) method is parsed
    // with a stand-in method and gets its own name back, so it can be answered 501.
    let mut unknown_method: Option<String> = None;
    let parsed = match parsed {
        Ok(Err(_)) => match extension_method(data) {
            Some((name, stand_in)) => {
                unknown_method = Some(name);
                std::panic::catch_unwind(|| rsip::SipMessage::try_from(stand_in.as_slice()))
            }
            None => parsed,
        },
        other => other,
    };
    let sip = match parsed {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err(ParseError::Syntax(truncate(&e.to_string(), 120))),
        Err(_) => return Err(ParseError::Syntax("parser failure".into())),
    };
    let (start, rheaders, body) = match sip {
        rsip::SipMessage::Request(r) => {
            let method = match unknown_method.take() {
                Some(name) => Method::Other(name),
                None => Method::parse(&r.method.to_string()),
            };
            (
                StartLine::Request {
                    method,
                    uri: r.uri.to_string(),
                },
                r.headers,
                r.body,
            )
        }
        rsip::SipMessage::Response(r) => {
            let code = r.status_code.code();
            if !(100..=699).contains(&code) {
                return Err(ParseError::Syntax("status code out of range".into()));
            }
            let reason = reason_phrase(data);
            (StartLine::Response { code, reason }, r.headers, r.body)
        }
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for h in rheaders.iter() {
        let text = h.to_string();
        let Some((name, value)) = text.split_once(':') else {
            continue;
        };
        let name = long_name(name);
        let value = value.trim();
        if name == "via" {
            for v in split_list(value) {
                headers.push((name.clone(), v));
            }
        } else {
            headers.push((name, value.to_string()));
        }
        if headers.len() > MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
    }
    let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let top_via = find("via")
        .and_then(parse_via)
        .ok_or(ParseError::Missing("Via"))?;
    let from = find("from")
        .map(parse_name_addr)
        .ok_or(ParseError::Missing("From"))?;
    let to = find("to").map(parse_name_addr).ok_or(ParseError::Missing("To"))?;
    if from.uri.is_empty() || to.uri.is_empty() {
        return Err(ParseError::Missing("From/To"));
    }
    let call_id = find("call-id")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(ParseError::Missing("Call-ID"))?;
    let call_id = call_id.to_string();
    let cseq_v = find("cseq").ok_or(ParseError::Missing("CSeq"))?;
    let mut cs = cseq_v.split_whitespace();
    let cseq = cs
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or(ParseError::Missing("CSeq"))?;
    let cseq_method = cs.next().map(Method::parse).ok_or(ParseError::Missing("CSeq"))?;
    if cseq >= 1 << 31 {
        return Err(ParseError::Missing("CSeq"));
    }
    if let StartLine::Request { method, .. } = &start
        && *method != cseq_method
    {
        return Err(ParseError::Missing("CSeq"));
    }
    let max_forwards = match find("max-forwards") {
        Some(v) => Some(
            v.trim()
                .parse::<u32>()
                .map_err(|_| ParseError::Missing("Max-Forwards"))?,
        ),
        None => None,
    };
    let mut body = body;
    if let Some(cl) = find("content-length") {
        let n = cl
            .trim()
            .parse::<usize>()
            .map_err(|_| ParseError::ContentLength)?;
        if n > body.len() {
            return Err(ParseError::ContentLength);
        }
        body.truncate(n);
    }
    Ok(Msg {
        start,
        headers,
        top_via,
        from,
        to,
        call_id,
        cseq,
        cseq_method,
        max_forwards,
        body,
    })
}

/// A request line whose method is a SIP token rsip does not know: (the method, the message
/// with `OPTIONS` in its place, request line only).
fn extension_method(data: &[u8]) -> Option<(String, Vec<u8>)> {
    let sp = data.iter().take(33).position(|&b| b == b' ')?;
    let token = data.get(..sp)?;
    let is_token = |b: &u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(b);
    if token.is_empty() || !token.iter().all(is_token) {
        return None;
    }
    let name = std::str::from_utf8(token).ok()?.to_string();
    if !matches!(Method::parse(&name), Method::Other(_)) || name.starts_with("SIP/") {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(b"OPTIONS");
    out.extend_from_slice(data.get(sp..)?);
    Some((name, out))
}

fn reason_phrase(data: &[u8]) -> String {
    let line_end = data
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(data.len());
    let line = String::from_utf8_lossy(data.get(..line_end).unwrap_or(&[]));
    line.splitn(3, ' ')
        .nth(2)
        .map(|s| truncate(s.trim(), 128))
        .unwrap_or_default()
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Standard reason phrase for the codes we send.
pub fn default_reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        420 => "Bad Extension",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a request: start line, headers in order, Content-Length, body.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    text: String,
}

impl RequestBuilder {
    pub fn new(method: &Method, uri: &str) -> Self {
        let mut text = String::with_capacity(512);
        let _ = write!(text, "{method} {uri} SIP/2.0\r\n");
        RequestBuilder { text }
    }

    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.text, "{name}: {value}\r\n");
        self
    }

    pub fn body(self, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
        let mut text = self.text;
        if let Some(ct) = content_type
            && !body.is_empty()
        {
            let _ = write!(text, "Content-Type: {ct}\r\n");
        }
        let _ = write!(text, "Content-Length: {}\r\n\r\n", body.len());
        let mut out = text.into_bytes();
        out.extend_from_slice(body);
        out
    }

    pub fn finish(self) -> Vec<u8> {
        self.body(None, &[])
    }
}

/// A response to `req`: Via, From, To (with `to_tag` added when it has none), Call-ID and CSeq
/// copied (RFC 3261 §8.2.6), then `extra` headers and the body.
pub fn response_to(
    req: &Msg,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, String)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut text = String::with_capacity(512);
    let _ = write!(text, "SIP/2.0 {code} {reason}\r\n");
    for v in req.vias() {
        let _ = write!(text, "Via: {v}\r\n");
    }
    let _ = write!(text, "From: {}\r\n", req.from.raw);
    match (&req.to.tag, to_tag) {
        (None, Some(tag)) if code != 100 => {
            let _ = write!(text, "To: {};tag={tag}\r\n", req.to.raw);
        }
        _ => {
            let _ = write!(text, "To: {}\r\n", req.to.raw);
        }
    }
    let _ = write!(text, "Call-ID: {}\r\n", req.call_id);
    let _ = write!(text, "CSeq: {} {}\r\n", req.cseq, req.cseq_method);
    for (n, v) in extra {
        let _ = write!(text, "{n}: {v}\r\n");
    }
    let (ct, b) = body.unwrap_or(("", &[]));
    if !b.is_empty() {
        let _ = write!(text, "Content-Type: {ct}\r\n");
    }
    let _ = write!(text, "Content-Length: {}\r\n\r\n", b.len());
    let mut out = text.into_bytes();
    out.extend_from_slice(b);
    out
}

/// A random token for tags, branches and Call-IDs.
pub fn token(len: usize) -> String {
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHA.get(fastrand::usize(..ALPHA.len())).copied().unwrap_or(b'x') as char)
        .collect()
}

/// A new RFC 3261 branch (magic cookie prefix).
pub fn new_branch() -> String {
    format!("z9hG4bK{}", token(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport, SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKold\r\n\
Max-Forwards: 70\r\n\
f: \"Alice\" <sip:alice@127.0.0.1:5070>;tag=1928\r\n\
To: <sip:bob@127.0.0.1>\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5070;transport=udp>\r\n\
Record-Route: <sip:p1@127.0.0.1;lr>, <sip:p2@127.0.0.1;lr>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\nEXTRA";

    #[test]
    fn parses_a_request_with_lists_compact_forms_and_framing() {
        let m = parse(INVITE.as_bytes()).expect("parses");
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.request_uri(), "sip:bob@127.0.0.1:5060");
        assert_eq!(m.top_via.branch, "z9hG4bKabc");
        assert_eq!(m.top_via.port, Some(5070));
        assert!(m.top_via.rport);
        assert_eq!(m.vias().len(), 2);
        assert_eq!(m.from.tag.as_deref(), Some("1928"));
        assert_eq!(m.from.uri, "sip:alice@127.0.0.1:5070");
        assert_eq!(m.to.tag, None);
        assert_eq!(m.cseq, 314159);
        assert_eq!(m.cseq_method, Method::Invite);
        assert_eq!(m.max_forwards, Some(70));
        assert_eq!(
            m.contact_uri().as_deref(),
            Some("sip:alice@127.0.0.1:5070;transport=udp")
        );
        assert_eq!(
            m.record_route(),
            vec!["<sip:p1@127.0.0.1;lr>", "<sip:p2@127.0.0.1;lr>"]
        );
        assert_eq!(m.body, b"v=0\n");
    }

    #[test]
    fn rejects_missing_headers_and_bad_framing() {
        let no_callid = INVITE.replace("Call-ID: a84b4c76e66710\r\n", "");
        assert_eq!(parse(no_callid.as_bytes()), Err(ParseError::Missing("Call-ID")));
        let no_via = INVITE.replace(
            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport, SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKold\r\n",
            "",
        );
        assert_eq!(parse(no_via.as_bytes()), Err(ParseError::Missing("Via")));
        let long_body = INVITE.replace("Content-Length: 4", "Content-Length: 400");
        assert_eq!(parse(long_body.as_bytes()), Err(ParseError::ContentLength));
        let bad_cseq = INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE");
        assert_eq!(parse(bad_cseq.as_bytes()), Err(ParseError::Missing("CSeq")));
        let huge_cseq = INVITE.replace("CSeq: 314159 INVITE", "CSeq: 99999999999 INVITE");
        assert!(parse(huge_cseq.as_bytes()).is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"\xff\xfe garbage").is_err());
        assert!(matches!(
            parse(&vec![b'a'; MAX_MESSAGE + 1]),
            Err(ParseError::TooLarge(_))
        ));
    }

    #[test]
    fn every_prefix_of_a_message_is_handled_without_panic() {
        for n in 0..INVITE.len() {
            let _ = parse(&INVITE.as_bytes()[..n]);
        }
    }

    #[test]
    fn response_copies_mandatory_headers_and_adds_to_tag() {
        let mut m = parse(INVITE.as_bytes()).expect("parses");
        m.stamp_received("127.0.0.1:40000".parse().expect("addr"));
        let bytes = response_to(&m, 486, "Busy Here", Some("xyz"), &[], None);
        let r = parse(&bytes).expect("own response parses");
        assert_eq!(r.code(), Some(486));
        assert_eq!(r.reason(), "Busy Here");
        assert_eq!(r.to.tag.as_deref(), Some("xyz"));
        assert_eq!(r.top_via.branch, "z9hG4bKabc");
        assert!(r.vias()[0].contains("rport=40000"), "{}", r.vias()[0]);
        assert!(r.vias()[0].contains("received=127.0.0.1"));
        assert_eq!(r.vias().len(), 2);
        assert_eq!(r.cseq, 314159);
    }

    #[test]
    fn builder_output_parses() {
        let req = RequestBuilder::new(&Method::Options, "sip:127.0.0.1:5060")
            .header(
                "Via",
                format!("SIP/2.0/UDP 127.0.0.1:5070;branch={};rport", new_branch()),
            )
            .header("From", "<sip:boomerang@127.0.0.1>;tag=abc")
            .header("To", "<sip:127.0.0.1:5060>")
            .header("Call-ID", token(20))
            .header("CSeq", "1 OPTIONS")
            .header("Max-Forwards", 70)
            .finish();
        let m = parse(&req).expect("parses");
        assert_eq!(m.method(), Some(&Method::Options));
        assert!(m.top_via.branch.starts_with("z9hG4bK"));
    }

    #[test]
    fn extension_methods_parse_with_their_own_name() {
        let b = b"FROB sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKfr\r\n\
From: <sip:x@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: f1\r\nCSeq: 3 FROB\r\nContent-Length: 0\r\n\r\n";
        let m = parse(b).expect("parses");
        assert_eq!(m.method(), Some(&Method::Other("FROB".into())));
        assert_eq!(m.request_uri(), "sip:a@127.0.0.1");
        // Not a token, or a CSeq naming another method: still refused.
        assert!(parse(b"FR{B sip:a SIP/2.0\r\n\r\n").is_err());
        let wrong = String::from_utf8_lossy(b).replace("CSeq: 3 FROB", "CSeq: 3 INVITE");
        assert!(parse(wrong.as_bytes()).is_err());
    }
}
