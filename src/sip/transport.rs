//! SIP transports (RFC 3261 §18), sans-IO parts: the [`Transport`] kinds and the stream
//! [`Framer`] that cuts a TCP byte stream into messages by Content-Length (§18.3).
//!
//! Over a stream the Content-Length header is mandatory and is the only way to find where a
//! message ends, so every framing fault (no Content-Length, two different ones, a value that is
//! not a number, headers or body beyond the limits) is fatal for the connection: the driver
//! closes it and counts the fault. Nothing here panics on peer input.

/// A SIP transport. TLS is named so configuration and Via handling have a place for it; it is
/// not implemented (a trunk configured with it is refused by the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Case-insensitive: `udp`, `tcp`, `tls`.
    pub fn parse(s: &str) -> Option<Transport> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tls" => Some(Transport::Tls),
            _ => None,
        }
    }

    /// The token of the Via header (`SIP/2.0/UDP`).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The `transport=` URI parameter value.
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// Reliable transports get no retransmissions (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The transport of a Via's protocol token (`UDP`, `TCP`, ...); unknown ones read as UDP.
    pub fn from_via(token: &str) -> Transport {
        Transport::parse(token).unwrap_or(Transport::Udp)
    }
}

/// The transport named by the top Via of a message we are about to send (a cheap scan of the
/// header lines, no full parse): decides which socket the bytes go out on.
pub fn top_via_transport(bytes: &[u8]) -> Transport {
    let head_end = find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let head = bytes.get(..head_end).unwrap_or(&[]);
    for line in head.split(|&b| b == b'\n') {
        let line = trim_ascii(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim_ascii(line.get(..colon).unwrap_or(&[]));
        if !(name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v")) {
            continue;
        }
        let value = trim_ascii(line.get(colon + 1..).unwrap_or(&[]));
        // SIP/2.0/TCP host...
        let proto = value.split(|&b| b == b' ' || b == b'\t').next().unwrap_or(&[]);
        let token = proto.rsplit(|&b| b == b'/').next().unwrap_or(&[]);
        return Transport::from_via(std::str::from_utf8(token).unwrap_or(""));
    }
    Transport::Udp
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    s.get(start..end.max(start)).unwrap_or(&[])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Why a stream was found broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("headers larger than the limit")]
    HeadersTooLarge,
    #[error("missing, duplicate or bad Content-Length")]
    BadContentLength,
    #[error("body larger than the limit")]
    BodyTooLarge,
}

/// Limits of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Most bytes from the start line to the blank line.
    pub max_headers: usize,
    /// Largest Content-Length accepted.
    pub max_body: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_headers: 16 * 1024,
            max_body: 64 * 1024,
        }
    }
}

/// Cuts a byte stream into SIP messages. Feed bytes with [`Framer::push`], take complete
/// messages with [`Framer::next_message`] until it returns `Ok(None)`. After an error the
/// stream is unusable (there is no way to find the next message) and stays in error.
#[derive(Debug)]
pub struct Framer {
    limits: FrameLimits,
    buf: Vec<u8>,
    /// Where the search for the blank line resumes (bytes before it were scanned).
    scanned: usize,
    /// Header length and Content-Length of the message being read, once its head is complete.
    pending: Option<(usize, usize)>,
    failed: Option<FrameError>,
}

impl Framer {
    pub fn new(limits: FrameLimits) -> Self {
        Framer {
            limits,
            buf: Vec::new(),
            scanned: 0,
            pending: None,
            failed: None,
        }
    }

    /// Bytes buffered and not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.next_inner();
        if let Err(e) = r {
            self.failed = Some(e);
            self.buf = Vec::new();
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.pending.is_none() {
            // Keepalives (RFC 5626 CRLF pings) and stray line ends between messages.
            let lead = self
                .buf
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(self.buf.len());
            if lead > 0 {
                self.buf.drain(..lead);
                self.scanned = 0;
            }
            if self.buf.is_empty() {
                return Ok(None);
            }
            let from = self.scanned.saturating_sub(3);
            let Some(rel) = self.buf.get(from..).and_then(|s| find(s, b"\r\n\r\n")) else {
                if self.buf.len() > self.limits.max_headers {
                    return Err(FrameError::HeadersTooLarge);
                }
                self.scanned = self.buf.len();
                return Ok(None);
            };
            let head_len = from + rel + 4;
            if head_len > self.limits.max_headers {
                return Err(FrameError::HeadersTooLarge);
            }
            let body_len = content_length(self.buf.get(..head_len).unwrap_or(&[]))?;
            if body_len > self.limits.max_body {
                return Err(FrameError::BodyTooLarge);
            }
            self.pending = Some((head_len, body_len));
        }
        let Some((head_len, body_len)) = self.pending else {
            return Ok(None);
        };
        let total = head_len + body_len;
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        let msg = std::mem::replace(&mut self.buf, rest);
        self.pending = None;
        self.scanned = 0;
        Ok(Some(msg))
    }
}

/// The Content-Length of a message head (long or compact name `l`); exactly one value.
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    let mut found: Option<usize> = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim_ascii(line.get(..colon).unwrap_or(&[]));
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = trim_ascii(line.get(colon + 1..).unwrap_or(&[]));
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::BadContentLength);
        }
        let n = std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or(FrameError::BadContentLength)?;
        match found {
            Some(prev) if prev != n => return Err(FrameError::BadContentLength),
            _ => found = Some(n),
        }
    }
    found.ok_or(FrameError::BadContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Vec<u8> {
        format!(
            "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKx\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn messages_are_cut_by_content_length_whatever_the_chunking() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend(message("hello"));
        stream.extend(message(""));
        stream.extend(message("v=0\r\n\r\nxyz"));
        for chunk in [1, 2, 7, 64, stream.len()] {
            let mut f = Framer::new(FrameLimits::default());
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                f.push(c);
                while let Some(m) = f.next_message().expect("well framed") {
                    got.push(m);
                }
            }
            assert_eq!(
                got,
                vec![message("hello"), message(""), message("v=0\r\n\r\nxyz")],
                "chunk {chunk}"
            );
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn framing_faults_are_errors_and_stay_errors() {
        let cases: [(&[u8], FrameError); 5] = [
            (
                b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n",
                FrameError::BadContentLength,
            ),
            (
                b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n",
                FrameError::BadContentLength,
            ),
            (
                b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n",
                FrameError::BadContentLength,
            ),
            (
                b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 99999999\r\n\r\n",
                FrameError::BodyTooLarge,
            ),
            (
                b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1e3\r\n\r\n",
                FrameError::BadContentLength,
            ),
        ];
        for (bytes, want) in cases {
            let mut f = Framer::new(FrameLimits::default());
            f.push(bytes);
            assert_eq!(f.next_message(), Err(want));
            f.push(&message(""));
            assert_eq!(f.next_message(), Err(want), "a broken stream stays broken");
        }
        let mut f = Framer::new(FrameLimits {
            max_headers: 100,
            max_body: 10,
        });
        f.push(b"OPTIONS sip:a SIP/2.0\r\n");
        assert_eq!(f.next_message(), Ok(None));
        f.push(&[b'X'; 100]);
        assert_eq!(f.next_message(), Err(FrameError::HeadersTooLarge));
    }

    #[test]
    fn top_via_names_the_transport() {
        assert_eq!(top_via_transport(&message("")), Transport::Tcp);
        assert_eq!(
            top_via_transport(b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h;branch=z\r\nVia: SIP/2.0/TCP x\r\n\r\n"),
            Transport::Udp
        );
        assert_eq!(top_via_transport(b"garbage"), Transport::Udp);
        assert!(Transport::Tcp.is_reliable() && !Transport::Udp.is_reliable());
        assert_eq!(Transport::parse("TCP"), Some(Transport::Tcp));
    }
}
