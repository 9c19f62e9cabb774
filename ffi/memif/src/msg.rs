//! The memif control messages: fixed 128-byte frames on a unix SOCK_SEQPACKET socket, the
//! region memfd or a ring's eventfd riding along as SCM_RIGHTS.
//!
//! Layout (memif protocol version 2.0, as DPDK's `drivers/net/memif/memif.h` and libmemif
//! define it; packed, host byte order, which is little-endian on every platform memif runs
//! on): a 16-bit message type at byte 0, the type's fields from byte 2, zeros up to 128.
//!
//! | type | fields (byte offset in the frame) |
//! |---|---|
//! | ACK (1) | none |
//! | HELLO (2, server to client) | name\[32\] @2, min_version u16 @34, max_version u16 @36, max_region u16 @38, max_s2c_ring u16 @40, max_c2s_ring u16 @42, max_log2_ring_size u8 @44 |
//! | INIT (3, client to server) | version u16 @2, id u32 @4, mode u8 @8, secret\[24\] @9, name\[32\] @33 |
//! | ADD_REGION (4, client, fd: memfd) | index u16 @2, size u64 @4 |
//! | ADD_RING (5, client, fd: eventfd) | flags u16 @2 (bit 0: client-to-server), index u16 @4, region u16 @6, offset u32 @8, log2_ring_size u8 @12, private_hdr_size u16 @13 |
//! | CONNECT (6, client) / CONNECTED (7, server) | if_name\[32\] @2 |
//! | DISCONNECT (8, either) | code u32 @2, reason\[96\] @6 |
//!
//! [`Frame`] is the checked view (smoltcp style: after [`Frame::new_checked`] no accessor
//! panics); [`Msg`] the parsed form, [`Msg::parse`] / [`Msg::emit`].

use std::fmt;

/// Bytes in every message.
pub const MSG_LEN: usize = 128;
/// memif protocol version 2.0 as carried in HELLO and INIT (major << 8 | minor).
pub const VERSION: u16 = 2 << 8;
/// Bytes of a name field (application or interface name), NUL-padded.
pub const NAME_LEN: usize = 32;
/// Bytes of INIT's secret field, NUL-padded.
pub const SECRET_LEN: usize = 24;
/// Bytes of DISCONNECT's reason field, NUL-padded.
pub const REASON_LEN: usize = 96;
/// ADD_RING flag: the ring carries frames from the client to the server.
pub const ADD_RING_FLAG_C2S: u16 = 1;
/// INIT's interface mode: Ethernet (the only one this crate speaks).
pub const MODE_ETHERNET: u8 = 0;

/// Message types (the 16-bit field at byte 0).
pub mod kind {
    pub const ACK: u16 = 1;
    pub const HELLO: u16 = 2;
    pub const INIT: u16 = 3;
    pub const ADD_REGION: u16 = 4;
    pub const ADD_RING: u16 = 5;
    pub const CONNECT: u16 = 6;
    pub const CONNECTED: u16 = 7;
    pub const DISCONNECT: u16 = 8;
}

/// Byte ranges of the fields, by message.
mod field {
    use std::ops::Range;
    pub const TYPE: Range<usize> = 0..2;

    pub const HELLO_NAME: Range<usize> = 2..34;
    pub const HELLO_MIN_VERSION: Range<usize> = 34..36;
    pub const HELLO_MAX_VERSION: Range<usize> = 36..38;
    pub const HELLO_MAX_REGION: Range<usize> = 38..40;
    pub const HELLO_MAX_S2C: Range<usize> = 40..42;
    pub const HELLO_MAX_C2S: Range<usize> = 42..44;
    pub const HELLO_MAX_LOG2: usize = 44;

    pub const INIT_VERSION: Range<usize> = 2..4;
    pub const INIT_ID: Range<usize> = 4..8;
    pub const INIT_MODE: usize = 8;
    pub const INIT_SECRET: Range<usize> = 9..33;
    pub const INIT_NAME: Range<usize> = 33..65;

    pub const REGION_INDEX: Range<usize> = 2..4;
    pub const REGION_SIZE: Range<usize> = 4..12;

    pub const RING_FLAGS: Range<usize> = 2..4;
    pub const RING_INDEX: Range<usize> = 4..6;
    pub const RING_REGION: Range<usize> = 6..8;
    pub const RING_OFFSET: Range<usize> = 8..12;
    pub const RING_LOG2: usize = 12;
    pub const RING_PRIVATE_HDR: Range<usize> = 13..15;

    pub const IF_NAME: Range<usize> = 2..34;

    pub const DISC_CODE: Range<usize> = 2..6;
    pub const DISC_REASON: Range<usize> = 6..102;
}

/// Why bytes are not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    #[error("message of {0} bytes (a memif message is {MSG_LEN})")]
    Length(usize),
    #[error("unknown message type {0}")]
    Type(u16),
}

/// A checked view of a message's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// A view of `buf`, which must hold a whole message (at least [`MSG_LEN`] bytes; the
    /// rest is ignored). After this, no accessor panics.
    pub fn new_checked(buf: T) -> Result<Frame<T>, MsgError> {
        let len = buf.as_ref().len();
        if len < MSG_LEN {
            return Err(MsgError::Length(len));
        }
        Ok(Frame { buf })
    }

    fn b(&self) -> &[u8] {
        &self.buf.as_ref()[..MSG_LEN]
    }

    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        let mut a = [0u8; 2];
        a.copy_from_slice(&self.b()[r]);
        u16::from_le_bytes(a)
    }

    fn u32_at(&self, r: std::ops::Range<usize>) -> u32 {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.b()[r]);
        u32::from_le_bytes(a)
    }

    fn u64_at(&self, r: std::ops::Range<usize>) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.b()[r]);
        u64::from_le_bytes(a)
    }

    fn bytes<const N: usize>(&self, r: std::ops::Range<usize>) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.b()[r]);
        a
    }

    /// The message type.
    pub fn msg_type(&self) -> u16 {
        self.u16_at(field::TYPE)
    }
}

/// A NUL-padded fixed-size text field (names, secret, reason), kept as bytes; [`Text::as_str`]
/// reads it up to its first NUL.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text<const N: usize>(pub [u8; N]);

impl<const N: usize> Text<N> {
    /// `s` truncated to `N` bytes (and NUL-padded).
    pub fn new(s: &str) -> Text<N> {
        let mut a = [0u8; N];
        let n = s.len().min(N);
        a[..n].copy_from_slice(&s.as_bytes()[..n]);
        Text(a)
    }

    /// The text up to its first NUL (lossy UTF-8).
    pub fn as_str(&self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }

    /// Whether it holds no text.
    pub fn is_empty(&self) -> bool {
        self.0.first().is_none_or(|&b| b == 0)
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Text([0; N])
    }
}

impl<const N: usize> fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// HELLO: what the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hello {
    pub name: Text<NAME_LEN>,
    pub min_version: u16,
    pub max_version: u16,
    /// The highest region index (regions allowed minus one).
    pub max_region: u16,
    /// The highest server-to-client ring index.
    pub max_s2c_ring: u16,
    /// The highest client-to-server ring index.
    pub max_c2s_ring: u16,
    pub max_log2_ring_size: u8,
}

/// INIT: which interface the client wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Init {
    pub version: u16,
    pub id: u32,
    pub mode: u8,
    pub secret: Text<SECRET_LEN>,
    pub name: Text<NAME_LEN>,
}

/// ADD_RING: where one ring lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddRing {
    pub flags: u16,
    pub index: u16,
    pub region: u16,
    pub offset: u32,
    pub log2_ring_size: u8,
    pub private_hdr_size: u16,
}

impl AddRing {
    /// Whether the ring carries client-to-server frames.
    pub fn is_c2s(&self) -> bool {
        self.flags & ADD_RING_FLAG_C2S != 0
    }
}

/// A parsed control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    Ack,
    Hello(Hello),
    Init(Init),
    AddRegion { index: u16, size: u64 },
    AddRing(AddRing),
    Connect { if_name: Text<NAME_LEN> },
    Connected { if_name: Text<NAME_LEN> },
    Disconnect { code: u32, reason: Text<REASON_LEN> },
}

impl Msg {
    /// Parses a message from `bytes` (at least [`MSG_LEN`] of them; only the first
    /// [`MSG_LEN`] are read). Unknown types are refused; values are not judged here (the
    /// handshake does that, knowing what it offered).
    pub fn parse(bytes: &[u8]) -> Result<Msg, MsgError> {
        let f = Frame::new_checked(bytes)?;
        Ok(match f.msg_type() {
            kind::ACK => Msg::Ack,
            kind::HELLO => Msg::Hello(Hello {
                name: Text(f.bytes(field::HELLO_NAME)),
                min_version: f.u16_at(field::HELLO_MIN_VERSION),
                max_version: f.u16_at(field::HELLO_MAX_VERSION),
                max_region: f.u16_at(field::HELLO_MAX_REGION),
                max_s2c_ring: f.u16_at(field::HELLO_MAX_S2C),
                max_c2s_ring: f.u16_at(field::HELLO_MAX_C2S),
                max_log2_ring_size: f.b()[field::HELLO_MAX_LOG2],
            }),
            kind::INIT => Msg::Init(Init {
                version: f.u16_at(field::INIT_VERSION),
                id: f.u32_at(field::INIT_ID),
                mode: f.b()[field::INIT_MODE],
                secret: Text(f.bytes(field::INIT_SECRET)),
                name: Text(f.bytes(field::INIT_NAME)),
            }),
            kind::ADD_REGION => Msg::AddRegion {
                index: f.u16_at(field::REGION_INDEX),
                size: f.u64_at(field::REGION_SIZE),
            },
            kind::ADD_RING => Msg::AddRing(AddRing {
                flags: f.u16_at(field::RING_FLAGS),
                index: f.u16_at(field::RING_INDEX),
                region: f.u16_at(field::RING_REGION),
                offset: f.u32_at(field::RING_OFFSET),
                log2_ring_size: f.b()[field::RING_LOG2],
                private_hdr_size: f.u16_at(field::RING_PRIVATE_HDR),
            }),
            kind::CONNECT => Msg::Connect {
                if_name: Text(f.bytes(field::IF_NAME)),
            },
            kind::CONNECTED => Msg::Connected {
                if_name: Text(f.bytes(field::IF_NAME)),
            },
            kind::DISCONNECT => Msg::Disconnect {
                code: f.u32_at(field::DISC_CODE),
                reason: Text(f.bytes(field::DISC_REASON)),
            },
            t => return Err(MsgError::Type(t)),
        })
    }

    /// The message's type field.
    pub fn kind(&self) -> u16 {
        match self {
            Msg::Ack => kind::ACK,
            Msg::Hello(_) => kind::HELLO,
            Msg::Init(_) => kind::INIT,
            Msg::AddRegion { .. } => kind::ADD_REGION,
            Msg::AddRing(_) => kind::ADD_RING,
            Msg::Connect { .. } => kind::CONNECT,
            Msg::Connected { .. } => kind::CONNECTED,
            Msg::Disconnect { .. } => kind::DISCONNECT,
        }
    }

    /// The message's 128 bytes.
    pub fn emit(&self) -> [u8; MSG_LEN] {
        let mut b = [0u8; MSG_LEN];
        fn put(b: &mut [u8; MSG_LEN], r: std::ops::Range<usize>, v: &[u8]) {
            b[r].copy_from_slice(v);
        }
        put(&mut b, field::TYPE, &self.kind().to_le_bytes());
        match self {
            Msg::Ack => {}
            Msg::Hello(h) => {
                put(&mut b, field::HELLO_NAME, &h.name.0);
                put(
                    &mut b,
                    field::HELLO_MIN_VERSION,
                    &h.min_version.to_le_bytes(),
                );
                put(
                    &mut b,
                    field::HELLO_MAX_VERSION,
                    &h.max_version.to_le_bytes(),
                );
                put(&mut b, field::HELLO_MAX_REGION, &h.max_region.to_le_bytes());
                put(&mut b, field::HELLO_MAX_S2C, &h.max_s2c_ring.to_le_bytes());
                put(&mut b, field::HELLO_MAX_C2S, &h.max_c2s_ring.to_le_bytes());
                b[field::HELLO_MAX_LOG2] = h.max_log2_ring_size;
            }
            Msg::Init(i) => {
                put(&mut b, field::INIT_VERSION, &i.version.to_le_bytes());
                put(&mut b, field::INIT_ID, &i.id.to_le_bytes());
                b[field::INIT_MODE] = i.mode;
                put(&mut b, field::INIT_SECRET, &i.secret.0);
                put(&mut b, field::INIT_NAME, &i.name.0);
            }
            Msg::AddRegion { index, size } => {
                put(&mut b, field::REGION_INDEX, &index.to_le_bytes());
                put(&mut b, field::REGION_SIZE, &size.to_le_bytes());
            }
            Msg::AddRing(r) => {
                put(&mut b, field::RING_FLAGS, &r.flags.to_le_bytes());
                put(&mut b, field::RING_INDEX, &r.index.to_le_bytes());
                put(&mut b, field::RING_REGION, &r.region.to_le_bytes());
                put(&mut b, field::RING_OFFSET, &r.offset.to_le_bytes());
                b[field::RING_LOG2] = r.log2_ring_size;
                put(
                    &mut b,
                    field::RING_PRIVATE_HDR,
                    &r.private_hdr_size.to_le_bytes(),
                );
            }
            Msg::Connect { if_name } | Msg::Connected { if_name } => {
                put(&mut b, field::IF_NAME, &if_name.0);
            }
            Msg::Disconnect { code, reason } => {
                put(&mut b, field::DISC_CODE, &code.to_le_bytes());
                put(&mut b, field::DISC_REASON, &reason.0);
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(t: u16, fields: &[(usize, &[u8])]) -> [u8; MSG_LEN] {
        let mut b = [0u8; MSG_LEN];
        b[0..2].copy_from_slice(&t.to_le_bytes());
        for (at, v) in fields {
            b[*at..*at + v.len()].copy_from_slice(v);
        }
        b
    }

    #[test]
    fn hello_golden() {
        let bytes = frame(
            2,
            &[
                (2, b"DPDK 22.11.11"),
                (34, &[0x00, 0x02]),
                (36, &[0x00, 0x02]),
                (38, &[0xff, 0x00]),
                (40, &[0xff, 0x00]),
                (42, &[0xfe, 0x00]),
                (44, &[14]),
            ],
        );
        let m = Msg::parse(&bytes).unwrap();
        let Msg::Hello(h) = m else { panic!("{m:?}") };
        assert_eq!(h.name.as_str(), "DPDK 22.11.11");
        assert_eq!((h.min_version, h.max_version), (VERSION, VERSION));
        assert_eq!(
            (h.max_region, h.max_s2c_ring, h.max_c2s_ring),
            (255, 255, 254)
        );
        assert_eq!(h.max_log2_ring_size, 14);
        assert_eq!(m.emit(), bytes);
    }

    #[test]
    fn init_golden() {
        let bytes = frame(
            3,
            &[
                (2, &[0x00, 0x02]),
                (4, &[7, 0, 0, 0]),
                (8, &[0]),
                (9, b"s3cret"),
                (33, b"vswitch"),
            ],
        );
        let m = Msg::parse(&bytes).unwrap();
        assert_eq!(
            m,
            Msg::Init(Init {
                version: VERSION,
                id: 7,
                mode: MODE_ETHERNET,
                secret: Text::new("s3cret"),
                name: Text::new("vswitch"),
            })
        );
        assert_eq!(m.emit(), bytes);
    }

    #[test]
    fn add_region_golden() {
        let bytes = frame(4, &[(2, &[1, 0]), (4, &[0, 0, 0x42, 0, 0, 0, 0, 0])]);
        let m = Msg::parse(&bytes).unwrap();
        assert_eq!(
            m,
            Msg::AddRegion {
                index: 1,
                size: 0x42_0000
            }
        );
        assert_eq!(m.emit(), bytes);
    }

    #[test]
    fn add_ring_golden() {
        let bytes = frame(
            5,
            &[
                (2, &[1, 0]),
                (4, &[3, 0]),
                (6, &[0, 0]),
                (8, &[0x80, 0x40, 0, 0]),
                (12, &[10]),
                (13, &[0, 0]),
            ],
        );
        let m = Msg::parse(&bytes).unwrap();
        let Msg::AddRing(r) = m else { panic!("{m:?}") };
        assert!(r.is_c2s());
        assert_eq!(
            (r.index, r.region, r.offset, r.log2_ring_size),
            (3, 0, 0x4080, 10)
        );
        assert_eq!(m.emit(), bytes);
    }

    #[test]
    fn connect_connected_disconnect_ack_golden() {
        let c = frame(6, &[(2, b"net_memif0")]);
        assert_eq!(
            Msg::parse(&c).unwrap(),
            Msg::Connect {
                if_name: Text::new("net_memif0")
            }
        );
        let d = frame(7, &[(2, b"m0")]);
        assert_eq!(Msg::parse(&d).unwrap().emit(), d);
        let x = frame(8, &[(2, &[5, 0, 0, 0]), (6, b"ID not found")]);
        let m = Msg::parse(&x).unwrap();
        let Msg::Disconnect { code, reason } = m else {
            panic!("{m:?}")
        };
        assert_eq!((code, reason.as_str().as_str()), (5, "ID not found"));
        assert_eq!(m.emit(), x);
        assert_eq!(Msg::parse(&frame(1, &[])).unwrap(), Msg::Ack);
        assert_eq!(Msg::Ack.emit(), frame(1, &[]));
    }

    #[test]
    fn refused() {
        assert_eq!(Msg::parse(&[0u8; 127]), Err(MsgError::Length(127)));
        assert_eq!(Msg::parse(&[]), Err(MsgError::Length(0)));
        assert_eq!(Msg::parse(&frame(0, &[])), Err(MsgError::Type(0)));
        assert_eq!(Msg::parse(&frame(9, &[])), Err(MsgError::Type(9)));
    }

    #[test]
    fn text_truncates_and_stops_at_nul() {
        let t: Text<4> = Text::new("abcdef");
        assert_eq!(t.as_str(), "abcd");
        assert!(Text::<4>::default().is_empty());
        assert_eq!(Text::<8>([b'a', 0, b'b', 0, 0, 0, 0, 0]).as_str(), "a");
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(m) = Msg::parse(&bytes) {
                // What parses re-emits to the same first 128 bytes, but for padding.
                let again = Msg::parse(&m.emit()).unwrap();
                prop_assert_eq!(again, m);
            }
        }

        #[test]
        fn truncated_valid_messages_are_refused(t in 1u16..=8, cut in 0usize..MSG_LEN, fill in any::<u8>()) {
            let mut b = [fill; MSG_LEN];
            b[0..2].copy_from_slice(&t.to_le_bytes());
            prop_assert!(Msg::parse(&b).is_ok());
            prop_assert_eq!(Msg::parse(&b[..cut]), Err(MsgError::Length(cut)));
        }
    }
}
