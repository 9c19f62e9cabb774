//! Geneve headers (RFC 8926 §3), carried in UDP and followed by the inner packet.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Virtual Network Identifier (VNI)       |    Reserved   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Variable-Length Options                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! An option (RFC 8926 §3.5):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Option Class         |C|    Type     |R|R|R| Length  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Variable-Length Option Data                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! RFC 8926 §3.4: Ver is 0 and a packet with another version is dropped; Opt Len counts
//! the options in 4-byte words (0 to 63, so at most 252 bytes), the inner packet starting
//! 8 + Opt Len * 4 bytes in; O marks a control packet whose payload is not forwarded;
//! C says at least one option is critical; Protocol Type is the ethertype of the inner
//! packet (0x6558, Transparent Ethernet Bridging, for Ethernet); the VNI is 24 bits; the
//! reserved fields are ignored on receipt. §3.5: an option's Length counts its data in
//! 4-byte words (0 to 31), without the 4-byte option header; the high bit of Type is the
//! critical bit, and an endpoint that meets a critical option it does not recognise
//! drops the packet. With C clear there is none, and the options may be skipped whole.

use std::ops::Range;

use super::ethernet;

/// Length of the base header, without options.
pub const HEADER_LEN: usize = field::HEADER;

/// The IANA-assigned Geneve port (RFC 8926 §3.3).
pub const PORT: u16 = 6081;

/// Protocol Type of an Ethernet payload: Transparent Ethernet Bridging (RFC 8926 §3.4).
pub const PROTO_ETHERNET: u16 = ethernet::ETHERTYPE_TEB;

/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = 0x00ff_ffff;

/// The most option bytes a header carries (Opt Len 63).
pub const MAX_OPTIONS_LEN: usize = 63 * 4;

/// Length of an option's header (class, type, length).
pub const OPTION_HEADER_LEN: usize = 4;

/// The most data bytes one option carries (Length 31).
pub const MAX_OPTION_DATA_LEN: usize = 31 * 4;

/// The critical bit of an option's Type (RFC 8926 §3.5).
pub const OPTION_CRITICAL: u8 = 0x80;

/// The O bit: control packet.
const FLAG_O: u8 = 0x80;
/// The C bit: critical options present.
const FLAG_C: u8 = 0x40;
/// Opt Len in the first byte, under the 2-bit version.
const OPT_LEN_MASK: u8 = 0x3f;
/// An option's Length in its fourth byte, under three reserved bits.
const OPTION_LEN_MASK: u8 = 0x1f;

/// Byte ranges of the header fields.
mod field {
    use std::ops::Range;
    pub const VER_OPTLEN: usize = 0;
    pub const FLAGS: usize = 1;
    pub const PROTOCOL: Range<usize> = 2..4;
    /// VNI (three bytes) and the reserved byte after it.
    pub const VNI_RSVD: Range<usize> = 4..8;
    pub const HEADER: usize = 8;

    pub const OPT_CLASS: Range<usize> = 0..2;
    pub const OPT_TYPE: usize = 2;
    pub const OPT_LEN: usize = 3;
}

/// Why a header, or its options, was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than 8 bytes, or than 8 + Opt Len * 4.
    Truncated,
    /// Ver is not 0 (RFC 8926 §3.4: dropped).
    BadVersion,
    /// An option's header or data runs past Opt Len.
    BadOption,
}

#[inline]
fn be16(b: &[u8], r: Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

#[inline]
fn be32(b: &[u8], r: Range<usize>) -> u32 {
    u32::from_be_bytes([b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3]])
}

/// A view of a Geneve header (the UDP payload) of version 0 whose options, as long as Opt
/// Len says, are in the buffer. The option TLVs themselves are checked only by those who
/// walk them ([`GeneveHeader::options`], [`GeneveHeader::has_unknown_critical`]).
#[derive(Debug, Clone, Copy)]
pub struct GeneveHeader<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> GeneveHeader<T> {
    /// Checks the version and that the header with its options fits.
    #[inline]
    pub fn new_checked(buf: T) -> Result<GeneveHeader<T>, Malformed> {
        let b = buf.as_ref();
        if b.len() < field::HEADER {
            return Err(Malformed::Truncated);
        }
        if b[field::VER_OPTLEN] >> 6 != 0 {
            return Err(Malformed::BadVersion);
        }
        if header_len(b[field::VER_OPTLEN]) > b.len() {
            return Err(Malformed::Truncated);
        }
        Ok(GeneveHeader { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Length of the options in bytes (Opt Len * 4, 0 to 252).
    #[inline]
    pub fn options_len(&self) -> usize {
        usize::from(self.b()[field::VER_OPTLEN] & OPT_LEN_MASK) * 4
    }

    /// Length of the header with its options: where the inner packet starts.
    #[inline]
    pub fn header_len(&self) -> usize {
        header_len(self.b()[field::VER_OPTLEN])
    }

    /// The O bit: a control packet, whose payload a tunnel endpoint does not forward.
    #[inline]
    pub fn control(&self) -> bool {
        self.b()[field::FLAGS] & FLAG_O != 0
    }

    /// The C bit: one or more options are critical.
    #[inline]
    pub fn critical(&self) -> bool {
        self.b()[field::FLAGS] & FLAG_C != 0
    }

    /// Protocol Type: the ethertype of the inner packet ([`PROTO_ETHERNET`], 0x0800, ...).
    #[inline]
    pub fn protocol(&self) -> u16 {
        be16(self.b(), field::PROTOCOL)
    }

    /// The 24-bit Virtual Network Identifier.
    #[inline]
    pub fn vni(&self) -> u32 {
        be32(self.b(), field::VNI_RSVD) >> 8
    }

    /// The option bytes (Opt Len * 4 of them).
    #[inline]
    pub fn options_bytes(&self) -> &[u8] {
        &self.b()[field::HEADER..self.header_len()]
    }

    /// The options, walked within Opt Len.
    #[inline]
    pub fn options(&self) -> Options<'_> {
        Options {
            rest: self.options_bytes(),
        }
    }

    /// The inner packet: everything after the options.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }

    /// Whether the packet must be dropped for a critical option this endpoint does not
    /// know (RFC 8926 §3.5); `known(class, type)` tells which it knows (`type` with its
    /// critical bit). False at once when C is clear: the options hold nothing critical and
    /// are not walked. With C set, options that run past Opt Len count as unknown critical
    /// ones, since what they hide cannot be shown harmless.
    #[inline]
    pub fn has_unknown_critical<F: Fn(u16, u8) -> bool>(&self, known: F) -> bool {
        self.critical()
            && self.options().any(|o| match o {
                Ok(o) => o.is_critical() && !known(o.class, o.kind),
                Err(_) => true,
            })
    }
}

#[inline]
fn header_len(ver_optlen: u8) -> usize {
    field::HEADER + usize::from(ver_optlen & OPT_LEN_MASK) * 4
}

/// One Geneve option (RFC 8926 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneveOption<'a> {
    /// Option Class (IANA "Geneve Option Class").
    pub class: u16,
    /// Type, critical bit included.
    pub kind: u8,
    /// The data: Length * 4 bytes.
    pub data: &'a [u8],
}

impl GeneveOption<'_> {
    /// The critical bit of Type.
    #[inline]
    pub fn is_critical(&self) -> bool {
        self.kind & OPTION_CRITICAL != 0
    }
}

/// The options of a header, in order. Yields `Err(Malformed::BadOption)` once, and then
/// nothing, when an option runs past the end of the options.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<GeneveOption<'a>, Malformed>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.rest;
        let len = match r.get(field::OPT_LEN) {
            Some(&l) => OPTION_HEADER_LEN + usize::from(l & OPTION_LEN_MASK) * 4,
            None => usize::MAX,
        };
        if len > r.len() {
            self.rest = &[];
            return Some(Err(Malformed::BadOption));
        }
        let (opt, rest) = r.split_at(len);
        self.rest = rest;
        Some(Ok(GeneveOption {
            class: be16(opt, field::OPT_CLASS),
            kind: opt[field::OPT_TYPE],
            data: &opt[OPTION_HEADER_LEN..],
        }))
    }
}

/// The fields [`emit`] writes besides the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneveRepr {
    /// The O bit (control packet).
    pub control: bool,
    /// Protocol Type of the inner packet.
    pub protocol: u16,
    /// VNI (24 bits).
    pub vni: u32,
}

/// Writes a header for `repr` followed by `options` (raw option TLVs, as
/// [`emit_option`] writes them) at the start of `buf` and returns its length,
/// 8 + `options.len()`. Ver is 0, the reserved fields zero, and C is set when an option is
/// critical. None, and nothing written, when `buf` is too short, the VNI does not fit 24
/// bits, or `options` is not a whole number of well-formed options of at most 252 bytes.
pub fn emit(buf: &mut [u8], repr: &GeneveRepr, options: &[u8]) -> Option<usize> {
    if repr.vni > MAX_VNI || options.len() > MAX_OPTIONS_LEN || options.len() % 4 != 0 {
        return None;
    }
    let mut critical = false;
    for o in (Options { rest: options }) {
        critical |= o.ok()?.is_critical();
    }
    let len = HEADER_LEN + options.len();
    let h = buf.get_mut(..len)?;
    h[field::VER_OPTLEN] = (options.len() / 4) as u8;
    h[field::FLAGS] = if repr.control { FLAG_O } else { 0 } | if critical { FLAG_C } else { 0 };
    h[field::PROTOCOL].copy_from_slice(&repr.protocol.to_be_bytes());
    h[field::VNI_RSVD].copy_from_slice(&(repr.vni << 8).to_be_bytes());
    h[HEADER_LEN..].copy_from_slice(options);
    Some(len)
}

/// Writes one option (`kind` with its critical bit, if wanted) carrying `data` at the
/// start of `buf` and returns its length, 4 + `data.len()`. None, and nothing written,
/// when `buf` is too short or `data` is not a multiple of 4 bytes up to 124.
pub fn emit_option(buf: &mut [u8], class: u16, kind: u8, data: &[u8]) -> Option<usize> {
    if data.len() > MAX_OPTION_DATA_LEN || data.len() % 4 != 0 {
        return None;
    }
    let len = OPTION_HEADER_LEN + data.len();
    let o = buf.get_mut(..len)?;
    o[field::OPT_CLASS].copy_from_slice(&class.to_be_bytes());
    o[field::OPT_TYPE] = kind;
    o[field::OPT_LEN] = (data.len() / 4) as u8;
    o[OPTION_HEADER_LEN..].copy_from_slice(data);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// VNI 0xabcdef, Ethernet payload, C set, two options (12 bytes, Opt Len 3):
    /// class 0x0102 type 0x03 with 4 data bytes, and class 0xffff type 0x85 (critical)
    /// with none; then 14 bytes of inner frame. Laid out from RFC 8926 §3.4 and §3.5.
    const PKT: [u8; 34] = [
        0x03, 0x40, 0x65, 0x58, 0xab, 0xcd, 0xef, 0x00, // base header
        0x01, 0x02, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef, // option 1
        0xff, 0xff, 0x85, 0x00, // option 2, critical
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, // inner
    ];

    #[test]
    fn parses_a_header_with_options() {
        let h = GeneveHeader::new_checked(&PKT[..]).unwrap();
        assert_eq!(h.options_len(), 12);
        assert_eq!(h.header_len(), 20);
        assert!(!h.control());
        assert!(h.critical());
        assert_eq!(h.protocol(), PROTO_ETHERNET);
        assert_eq!(h.vni(), 0xabcdef);
        assert_eq!(h.options_bytes(), &PKT[8..20]);
        assert_eq!(h.payload(), &PKT[20..]);
        let opts: Vec<_> = h.options().collect();
        assert_eq!(
            opts,
            [
                Ok(GeneveOption {
                    class: 0x0102,
                    kind: 0x03,
                    data: &[0xde, 0xad, 0xbe, 0xef],
                }),
                Ok(GeneveOption {
                    class: 0xffff,
                    kind: 0x85,
                    data: &[],
                }),
            ]
        );
        assert!(!opts[0].unwrap().is_critical() && opts[1].unwrap().is_critical());
    }

    #[test]
    fn critical_options_must_be_known() {
        let h = GeneveHeader::new_checked(&PKT[..]).unwrap();
        assert!(h.has_unknown_critical(|_, _| false));
        assert!(!h.has_unknown_critical(|c, t| (c, t) == (0xffff, 0x85)));
        // The non-critical option need not be known.
        assert!(h.has_unknown_critical(|c, _| c == 0x0102));
        // C clear: nothing is critical, whatever the type bits say.
        let mut b = PKT;
        b[1] = 0;
        let h = GeneveHeader::new_checked(&b[..]).unwrap();
        assert!(!h.has_unknown_critical(|_, _| false));
        // C set and options running past Opt Len: drop.
        let mut b = PKT;
        b[11] = 0x03; // option 1 claims 12 data bytes
        let h = GeneveHeader::new_checked(&b[..]).unwrap();
        assert_eq!(h.options().last(), Some(Err(Malformed::BadOption)));
        assert!(h.has_unknown_critical(|_, _| true));
        // Reserved bits in an option's length byte are ignored.
        let mut b = PKT;
        b[11] = 0xe1;
        let h = GeneveHeader::new_checked(&b[..]).unwrap();
        assert_eq!(h.options().count(), 2);
        assert!(h.options().all(|o| o.is_ok()));
    }

    #[test]
    fn refuses_each_malformation() {
        let check = |b: &[u8]| GeneveHeader::new_checked(b).map(|_| ());
        assert_eq!(check(&PKT[..7]), Err(Malformed::Truncated));
        assert_eq!(check(&PKT[..19]), Err(Malformed::Truncated));
        assert_eq!(check(&PKT[..20]), Ok(()));
        for ver in 1..4u8 {
            let mut b = PKT;
            b[0] |= ver << 6;
            assert_eq!(check(&b), Err(Malformed::BadVersion));
        }
        // Reserved bits are ignored.
        let mut b = PKT;
        b[1] |= 0x3f;
        b[7] = 0xff;
        let h = GeneveHeader::new_checked(&b[..]).unwrap();
        assert_eq!(h.vni(), 0xabcdef);
        assert!(h.critical() && !h.control());
    }

    #[test]
    fn emit_writes_the_header() {
        let mut opts = [0u8; 12];
        assert_eq!(
            emit_option(&mut opts, 0x0102, 0x03, &[0xde, 0xad, 0xbe, 0xef]),
            Some(8)
        );
        assert_eq!(emit_option(&mut opts[8..], 0xffff, 0x85, &[]), Some(4));
        let mut b = [0xffu8; 20];
        let repr = GeneveRepr {
            control: false,
            protocol: PROTO_ETHERNET,
            vni: 0xabcdef,
        };
        assert_eq!(emit(&mut b, &repr, &opts), Some(20));
        assert_eq!(b, PKT[..20]);
        // Without the critical option, C is clear.
        assert_eq!(emit(&mut b, &repr, &opts[..8]), Some(16));
        assert_eq!(b[..2], [0x02, 0x00]);
        // Control bit, no options.
        let ctl = GeneveRepr {
            control: true,
            ..repr
        };
        assert_eq!(emit(&mut b, &ctl, &[]), Some(8));
        assert_eq!(b[..8], [0x00, 0x80, 0x65, 0x58, 0xab, 0xcd, 0xef, 0x00]);
        // Refused: short buffer, bad VNI, options not a list, too long.
        let before = b;
        assert_eq!(emit(&mut b[..19], &repr, &opts), None);
        let big = GeneveRepr {
            vni: MAX_VNI + 1,
            ..repr
        };
        assert_eq!(emit(&mut b, &big, &[]), None);
        assert_eq!(emit(&mut b, &repr, &opts[..6]), None);
        assert_eq!(emit(&mut b, &repr, &[0, 0, 0, 1]), None);
        let mut long = vec![0u8; 256];
        assert_eq!(
            emit(&mut long, &repr, &[0; 256][..MAX_OPTIONS_LEN + 4]),
            None
        );
        assert_eq!(b, before);
        assert_eq!(emit_option(&mut b, 1, 1, &[0; 3]), None);
        assert_eq!(emit_option(&mut [0u8; 200], 1, 1, &[0; 128]), None);
        assert_eq!(emit_option(&mut [0u8; 200], 1, 1, &[0; 124]), Some(128));
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_inside(big in proptest::collection::vec(any::<u8>(), 0..300),
                                         cut in any::<prop::sample::Index>(), fix: bool) {
            let mut big = big;
            let n = cut.index(big.len() + 1);
            if fix && n > 0 {
                big[0] &= 0x3f; // version 0, so the walk is reached
            }
            let b = &big[..n];
            if let Ok(h) = GeneveHeader::new_checked(b) {
                prop_assert!(h.header_len() <= n);
                prop_assert_eq!(h.header_len(), 8 + h.options_len());
                prop_assert_eq!(h.options_bytes().len(), h.options_len());
                prop_assert_eq!(h.payload().len(), n - h.header_len());
                prop_assert!(h.vni() <= MAX_VNI);
                let mut walked = 0;
                for o in h.options() {
                    match o {
                        Ok(o) => walked += 4 + o.data.len(),
                        Err(_) => walked = h.options_len(),
                    }
                }
                prop_assert_eq!(walked, h.options_len());
                let _ = (h.control(), h.protocol(), h.has_unknown_critical(|c, _| c & 1 == 0));
                if !h.critical() {
                    prop_assert!(!h.has_unknown_critical(|_, _| false));
                }
            }
        }

        #[test]
        fn emit_round_trips(vni in 0..=MAX_VNI, protocol: u16, control: bool,
                            opts in proptest::collection::vec(
                                (any::<u16>(), any::<u8>(), 0usize..8), 0..6)) {
            let mut ob = [0u8; MAX_OPTIONS_LEN];
            let mut n = 0;
            for &(class, kind, words) in &opts {
                let data = [0x5au8; 28];
                n += emit_option(&mut ob[n..], class, kind, &data[..words * 4]).unwrap();
            }
            let repr = GeneveRepr { control, protocol, vni };
            let mut b = vec![0u8; 8 + n + 4];
            prop_assert_eq!(emit(&mut b, &repr, &ob[..n]), Some(8 + n));
            let h = GeneveHeader::new_checked(&b[..]).unwrap();
            prop_assert_eq!((h.vni(), h.protocol(), h.control()), (vni, protocol, control));
            prop_assert_eq!(h.critical(), opts.iter().any(|o| o.1 & 0x80 != 0));
            let back: Vec<_> = h.options().map(|o| {
                let o = o.unwrap();
                (o.class, o.kind, o.data.len() / 4)
            }).collect();
            prop_assert_eq!(back, opts);
            prop_assert_eq!(h.payload().len(), 4);
            prop_assert!(!h.has_unknown_critical(|_, _| true));
            // Every truncation is refused or stays inside.
            for cut in 0..b.len() {
                match GeneveHeader::new_checked(&b[..cut]) {
                    Ok(h) => prop_assert!(cut >= 8 + n && h.header_len() == 8 + n),
                    Err(e) => prop_assert!(cut < 8 + n && e == Malformed::Truncated),
                }
            }
        }
    }
}
