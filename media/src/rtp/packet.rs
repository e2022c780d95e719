//! RTP packet parsing and building on top of `rtp-rs`.

use rtp_rs::{RtpPacketBuilder, RtpReader, RtpReaderError, Seq};

/// The fixed fields of an RTP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit (start of a talkspurt for audio; start of an event for RFC 4733).
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// A parsed RTP packet borrowing its payload from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The header fields.
    pub header: RtpHeader,
    /// The payload, without header extension, CSRCs or padding.
    pub payload: &'a [u8],
}

/// Why a datagram is not a valid RTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedRtp {
    /// Fewer than the 12 bytes of a fixed header.
    #[error("RTP packet too short: {len} bytes, a header needs 12")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// Version field is not 2.
    #[error("RTP version {0}, only version 2 is supported")]
    BadVersion(u8),
    /// CSRC list or header extension runs past the end of the datagram.
    #[error("RTP header of {header_len} bytes (CSRCs/extension) runs past the {len}-byte packet")]
    HeaderTruncated {
        /// Bytes the header claims.
        header_len: usize,
        /// Datagram length.
        len: usize,
    },
    /// Padding length is zero or longer than what follows the header.
    #[error("RTP padding of {pad} bytes does not fit the packet")]
    BadPadding {
        /// The padding count from the last byte.
        pad: u8,
    },
}

impl From<RtpReaderError> for MalformedRtp {
    fn from(e: RtpReaderError) -> Self {
        match e {
            RtpReaderError::BufferTooShort(len) => MalformedRtp::TooShort { len },
            RtpReaderError::UnsupportedVersion(v) => MalformedRtp::BadVersion(v),
            RtpReaderError::HeadersTruncated {
                header_len,
                buffer_len,
            } => MalformedRtp::HeaderTruncated {
                header_len,
                len: buffer_len,
            },
            RtpReaderError::PaddingLengthInvalid(pad) => MalformedRtp::BadPadding { pad },
        }
    }
}

/// Why a packet could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtpBuildError {
    /// The output buffer cannot hold the packet.
    #[error("output buffer of {have} bytes is too small for a {need}-byte RTP packet")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// Payload type above 127.
    #[error("payload type {0} is not in 0..=127")]
    BadPayloadType(u8),
}

/// Parse and validate one RTP datagram (version, header length, CSRC count, extension,
/// padding). Never panics, whatever the bytes.
pub fn parse(datagram: &[u8]) -> Result<RtpPacket<'_>, MalformedRtp> {
    let reader = RtpReader::new(datagram)?;
    let header = RtpHeader {
        marker: reader.mark(),
        payload_type: reader.payload_type(),
        sequence: u16::from(reader.sequence_number()),
        timestamp: reader.timestamp(),
        ssrc: reader.ssrc(),
    };
    Ok(RtpPacket {
        header,
        payload: reader.payload(),
    })
}

/// Write an RTP packet (no CSRCs, no extension, no padding) into `out`; returns its length.
/// Does not allocate.
pub fn write(header: &RtpHeader, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpBuildError> {
    if header.payload_type > 127 {
        return Err(RtpBuildError::BadPayloadType(header.payload_type));
    }
    let need = 12 + payload.len();
    if out.len() < need {
        return Err(RtpBuildError::BufferTooSmall {
            need,
            have: out.len(),
        });
    }
    RtpPacketBuilder::new()
        .payload_type(header.payload_type)
        .marked(header.marker)
        .sequence(Seq::from(header.sequence))
        .timestamp(header.timestamp)
        .ssrc(header.ssrc)
        .payload(payload)
        .build_into(out)
        .map_err(|_| RtpBuildError::BufferTooSmall {
            need,
            have: out.len(),
        })
}

/// True when a datagram on a multiplexed port is RTCP rather than RTP (RFC 5761 §4: the second
/// byte, read as an RTCP packet type, is 192..=223).
pub fn looks_like_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram.get(1), Some(&b) if (192..=223).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: 0,
            sequence: 65535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x1234_5678,
        }
    }

    #[test]
    fn build_then_parse_round_trips() {
        let payload = [0xFFu8; 160];
        let mut buf = [0u8; 200];
        let n = write(&header(), &payload, &mut buf).unwrap();
        assert_eq!(n, 172);
        assert_eq!(buf[0], 0x80);
        assert_eq!(buf[1], 0x80);
        let p = parse(&buf[..n]).unwrap();
        assert_eq!(p.header, header());
        assert_eq!(p.payload, &payload[..]);
    }

    #[test]
    fn build_rejects_small_buffer_and_bad_pt() {
        let mut small = [0u8; 20];
        assert_eq!(
            write(&header(), &[0u8; 160], &mut small),
            Err(RtpBuildError::BufferTooSmall { need: 172, have: 20 })
        );
        let mut h = header();
        h.payload_type = 200;
        assert_eq!(
            write(&h, &[], &mut [0u8; 64]),
            Err(RtpBuildError::BadPayloadType(200))
        );
    }

    #[test]
    fn malformed_packets_are_classified() {
        // Short header.
        assert_eq!(parse(&[0x80; 11]), Err(MalformedRtp::TooShort { len: 11 }));
        assert_eq!(parse(&[]), Err(MalformedRtp::TooShort { len: 0 }));
        // Wrong version.
        let mut p = [0u8; 20];
        p[0] = 0x40;
        assert_eq!(parse(&p), Err(MalformedRtp::BadVersion(1)));
        // CSRC count past the end: 15 CSRCs need 72 bytes.
        let mut p = [0u8; 20];
        p[0] = 0x8F;
        assert!(matches!(
            parse(&p),
            Err(MalformedRtp::HeaderTruncated {
                header_len: 72,
                len: 20
            })
        ));
        // Extension past the end.
        let mut p = [0u8; 20];
        p[0] = 0x90;
        p[14] = 0;
        p[15] = 10;
        assert!(matches!(parse(&p), Err(MalformedRtp::HeaderTruncated { .. })));
        // Padding longer than the packet.
        let mut p = [0u8; 20];
        p[0] = 0xA0;
        p[19] = 100;
        assert_eq!(parse(&p), Err(MalformedRtp::BadPadding { pad: 100 }));
        // Zero padding length.
        p[19] = 0;
        assert_eq!(parse(&p), Err(MalformedRtp::BadPadding { pad: 0 }));
        // Valid padding is removed from the payload.
        p[19] = 4;
        assert_eq!(parse(&p).unwrap().payload.len(), 4);
        // Padding flag with nothing after the header.
        let mut p = [0u8; 12];
        p[0] = 0xA0;
        assert!(parse(&p).is_err());
    }

    #[test]
    fn csrcs_and_extension_are_skipped() {
        let mut p = vec![0x91u8, 8, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
        p.extend_from_slice(&[1, 2, 3, 4]); // one CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]); // extension, one word
        p.extend_from_slice(&[0xD5; 10]);
        let parsed = parse(&p).unwrap();
        assert_eq!(parsed.header.payload_type, 8);
        assert_eq!(parsed.header.sequence, 1);
        assert_eq!(parsed.header.timestamp, 160);
        assert_eq!(parsed.header.ssrc, 7);
        assert_eq!(parsed.payload, &[0xD5; 10]);
    }

    #[test]
    fn rtcp_demultiplexing() {
        assert!(looks_like_rtcp(&[0x80, 200, 0, 6]));
        assert!(looks_like_rtcp(&[0x81, 201, 0, 7]));
        assert!(!looks_like_rtcp(&[0x80, 0x00]));
        assert!(!looks_like_rtcp(&[0x80, 0x80 | 8]));
        assert!(!looks_like_rtcp(&[0x80]));
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(p) = parse(&bytes) {
                prop_assert!(p.payload.len() + 12 <= bytes.len());
            }
        }

        #[test]
        fn valid_rtp_like_bytes_never_panic(first in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 0..128)) {
            // Force version 2 so the deeper checks (CSRC, extension, padding) are exercised.
            let mut bytes = vec![(first & 0x3F) | 0x80];
            bytes.extend_from_slice(&rest);
            let _ = parse(&bytes);
        }

        #[test]
        fn write_parse_round_trip(marker in any::<bool>(), pt in 0u8..128, seq in any::<u16>(), ts in any::<u32>(), ssrc in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..320)) {
            let h = RtpHeader { marker, payload_type: pt, sequence: seq, timestamp: ts, ssrc };
            let mut buf = vec![0u8; 400];
            let n = write(&h, &payload, &mut buf).unwrap();
            let p = parse(&buf[..n]).unwrap();
            prop_assert_eq!(p.header, h);
            prop_assert_eq!(p.payload, &payload[..]);
        }
    }
}
