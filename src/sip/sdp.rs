//! SDP offer/answer (RFC 3264/4566) for one audio stream: PCMU, PCMA, telephone-event
//! (RFC 4733), ptime and direction attributes (hold is `sendonly`/`inactive`).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// G.711 law negotiated for a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// The direction an answer takes for this offered direction.
    pub fn answer_to(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
}

/// The audio stream a remote SDP describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where to send RTP (connection address + m-line port); port 0 means rejected.
    pub rtp: SocketAddr,
    /// Payload types in m-line order, known ones first mapped to a codec.
    pub codecs: Vec<Codec>,
    pub telephone_event: Option<u8>,
    pub ptime_ms: Option<u32>,
    pub direction: Direction,
}

/// Why an SDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is not text")]
    NotText,
    #[error("no connection address")]
    NoConnection,
    #[error("no audio stream")]
    NoAudio,
    #[error("no common codec")]
    NoCodec,
}

/// Parse the first audio m-line of `body`.
pub fn parse(body: &[u8]) -> Result<RemoteMedia, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut session_addr: Option<IpAddr> = None;
    let mut media_addr: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    let mut pts: Vec<u8> = Vec::new();
    let mut rtpmap: Vec<(u8, String)> = Vec::new();
    let mut ptime = None;
    let mut direction = Direction::SendRecv;
    let mut in_audio = false;
    let mut seen_audio = false;
    for line in text.lines().take(512) {
        let line = line.trim_end();
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "m" => {
                if seen_audio {
                    in_audio = false;
                    continue;
                }
                let mut f = value.split_whitespace();
                if f.next() == Some("audio") {
                    in_audio = true;
                    seen_audio = true;
                    port = f
                        .next()
                        .and_then(|p| p.split('/').next())
                        .and_then(|p| p.parse().ok());
                    let _proto = f.next();
                    pts = f.filter_map(|p| p.parse::<u8>().ok()).collect();
                } else {
                    in_audio = false;
                }
            }
            "c" => {
                let addr = value
                    .split_whitespace()
                    .nth(2)
                    .and_then(|a| a.split('/').next()?.parse().ok());
                if in_audio {
                    media_addr = addr;
                } else if !seen_audio {
                    session_addr = addr;
                }
            }
            "a" if in_audio || !seen_audio => {
                if let Some(v) = value.strip_prefix("rtpmap:") {
                    let mut f = v.split_whitespace();
                    if let (Some(pt), Some(enc)) = (f.next().and_then(|p| p.parse::<u8>().ok()), f.next()) {
                        rtpmap.push((pt, enc.to_ascii_lowercase()));
                    }
                } else if let Some(v) = value.strip_prefix("ptime:") {
                    ptime = v.trim().parse().ok();
                } else {
                    match value {
                        "sendrecv" => direction = Direction::SendRecv,
                        "sendonly" => direction = Direction::SendOnly,
                        "recvonly" => direction = Direction::RecvOnly,
                        "inactive" => direction = Direction::Inactive,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !seen_audio {
        return Err(SdpError::NoAudio);
    }
    let addr = media_addr.or(session_addr).ok_or(SdpError::NoConnection)?;
    let port = port.ok_or(SdpError::NoAudio)?;
    let mut codecs = Vec::new();
    let mut telephone_event = None;
    for pt in &pts {
        let enc = rtpmap.iter().find(|(p, _)| p == pt).map(|(_, e)| e.as_str());
        match (pt, enc) {
            (0, _) | (_, Some("pcmu/8000")) | (_, Some("pcmu/8000/1")) => codecs.push(Codec::Pcmu),
            (8, _) | (_, Some("pcma/8000")) | (_, Some("pcma/8000/1")) => codecs.push(Codec::Pcma),
            (p, Some(e)) if e.starts_with("telephone-event/8000") => telephone_event = Some(*p),
            _ => {}
        }
    }
    Ok(RemoteMedia {
        rtp: SocketAddr::new(addr, port),
        codecs,
        telephone_event,
        ptime_ms: ptime,
        direction,
    })
}

/// Our session description for one audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    pub addr: IpAddr,
    pub port: u16,
    /// Codecs in preference order (an answer lists just the chosen one).
    pub codecs: Vec<Codec>,
    pub telephone_event: Option<u8>,
    pub ptime_ms: u32,
    pub direction: Direction,
    pub session_id: u64,
    pub version: u64,
}

impl LocalMedia {
    pub fn offer(addr: IpAddr, port: u16) -> Self {
        LocalMedia {
            addr,
            port,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event: Some(101),
            ptime_ms: 20,
            direction: Direction::SendRecv,
            session_id: fastrand::u64(1..1 << 40),
            version: 1,
        }
    }

    /// The answer to `remote`: the first of our codecs the offer lists, its telephone-event
    /// payload type if it offered one, and the mirrored direction.
    pub fn answer(addr: IpAddr, port: u16, remote: &RemoteMedia) -> Result<Self, SdpError> {
        let codec = [Codec::Pcmu, Codec::Pcma]
            .into_iter()
            .find(|c| remote.codecs.contains(c))
            .ok_or(SdpError::NoCodec)?;
        let mut m = LocalMedia::offer(addr, port);
        m.codecs = vec![codec];
        m.telephone_event = remote.telephone_event;
        m.ptime_ms = remote.ptime_ms.unwrap_or(20).clamp(10, 60);
        m.direction = remote.direction.answer_to();
        Ok(m)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let ip = match self.addr {
            IpAddr::V4(_) => "IP4",
            IpAddr::V6(_) => "IP6",
        };
        let mut s = String::with_capacity(256);
        let _ = write!(
            s,
            "v=0\r\no=boomerang {} {} IN {ip} {}\r\ns=boomerang\r\n",
            self.session_id, self.version, self.addr
        );
        let _ = write!(
            s,
            "c=IN {ip} {}\r\nt=0 0\r\nm=audio {} RTP/AVP",
            self.addr, self.port
        );
        for c in &self.codecs {
            let _ = write!(s, " {}", c.payload_type());
        }
        if let Some(te) = self.telephone_event {
            let _ = write!(s, " {te}");
        }
        s.push_str("\r\n");
        for c in &self.codecs {
            let _ = write!(s, "a=rtpmap:{} {}/8000\r\n", c.payload_type(), c.name());
        }
        if let Some(te) = self.telephone_event {
            let _ = write!(s, "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n");
        }
        let _ = write!(s, "a=ptime:{}\r\na={}\r\n", self.ptime_ms, self.direction.attr());
        s.into_bytes()
    }
}

/// The codec an answer settled on (first codec both sides list, in the answer's order).
pub fn negotiated(answer: &RemoteMedia) -> Option<Codec> {
    answer.codecs.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_round_trips_and_answer_picks_a_common_codec() {
        let offer = LocalMedia::offer("127.0.0.1".parse().expect("ip"), 20000);
        let remote = parse(&offer.to_bytes()).expect("parses");
        assert_eq!(remote.rtp, "127.0.0.1:20000".parse().expect("addr"));
        assert_eq!(remote.codecs, vec![Codec::Pcmu, Codec::Pcma]);
        assert_eq!(remote.telephone_event, Some(101));
        assert_eq!(remote.ptime_ms, Some(20));
        let ans = LocalMedia::answer("127.0.0.1".parse().expect("ip"), 30000, &remote).expect("answer");
        assert_eq!(ans.codecs, vec![Codec::Pcmu]);
    }

    #[test]
    fn parses_sipp_style_sdp_with_pcma_only_and_hold() {
        let sdp = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
        let r = parse(sdp.as_bytes()).expect("parses");
        assert_eq!(r.codecs, vec![Codec::Pcma]);
        assert_eq!(r.direction, Direction::SendOnly);
        let ans = LocalMedia::answer("127.0.0.1".parse().expect("ip"), 1, &r).expect("answer");
        assert_eq!(ans.direction, Direction::RecvOnly);
        assert_eq!(ans.codecs, vec![Codec::Pcma]);
    }

    #[test]
    fn refuses_bad_sdp() {
        assert_eq!(parse(b"v=0\r\n"), Err(SdpError::NoAudio));
        assert_eq!(parse(b"m=audio 5 RTP/AVP 0\r\n"), Err(SdpError::NoConnection));
        assert_eq!(parse(&[0xff, 0xfe]), Err(SdpError::NotText));
        let r = parse(b"c=IN IP4 127.0.0.1\r\nm=audio 5 RTP/AVP 18\r\n").expect("parses");
        assert_eq!(
            LocalMedia::answer("127.0.0.1".parse().expect("ip"), 1, &r),
            Err(SdpError::NoCodec)
        );
    }
}
