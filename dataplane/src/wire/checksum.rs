//! The Internet checksum (RFC 1071): ones' complement sum of 16-bit words; completing
//! a partial L4 checksum (the sender wrote the pseudo-header sum into the checksum field;
//! the sum of the L4 header and payload is folded in here); updating a checksum when a
//! field changes without summing the data again (RFC 1624); and the sums of the IPv4 and
//! IPv6 pseudo-headers that TCP, UDP and ICMPv6 checksums cover.
//!
//! Pseudo-headers (the sum helpers build neither; they add the fields):
//!
//! ```text
//! IPv4 (RFC 768, RFC 9293 §3.1)      IPv6 (RFC 8200 §8.1)
//! +--------------------------+      +------------------------------------+
//! | source address        (4)|      | source address                 (16)|
//! | destination address   (4)|      | destination address            (16)|
//! | zero (1) | protocol (1)  |      | upper-layer packet length       (4)|
//! | L4 length             (2)|      | zero (3)        | next header   (1)|
//! +--------------------------+      +------------------------------------+
//! ```
//!
//! Zero has two forms in ones' complement, 0x0000 and 0xffff. [`sum`] returns 0x0000 only
//! for data that is all zero, so a full computation (`!sum`) gives 0xffff only then. The
//! incremental updates agree with a full computation whenever the data after the change is
//! not all zero, which holds for every IP header (the version nibble) and every checksum
//! that covers a pseudo-header (the protocol); see [`update16`].

use std::net::{Ipv4Addr, Ipv6Addr};

/// Ones' complement sum of `data` (as big-endian 16-bit words, an odd last byte padded
/// with zero) added to `initial`, folded to 16 bits.
///
/// Eight bytes at a time: a big-endian 32-bit word is two 16-bit words, `hi * 2^16 + lo`, and
/// 2^16 = 1 modulo 0xffff, so summing 32-bit halves and folding at the end gives the same
/// ones' complement sum (RFC 1071 §2(B), "byte order independence" and deferred carries). A
/// u64 takes 2^31 such steps (16 GiB) before it could overflow.
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u16 {
    let mut acc = u64::from(initial);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    if let [a, b, c, d, tail @ ..] = rest {
        acc += u64::from(u32::from_be_bytes([*a, *b, *c, *d]));
        rest = tail;
    }
    if let [a, b, tail @ ..] = rest {
        acc += u64::from(u16::from_be_bytes([*a, *b]));
        rest = tail;
    }
    if let [last] = rest {
        acc += u64::from(*last) << 8;
    }
    fold(acc)
}

/// Folds a 64-bit sum of 16-bit words into 16 bits, end-around carries added, without a
/// data-dependent loop: 64 -> 33 bits, then three 16-bit folds (< 2^18, then <= 0x10002,
/// then <= 0xffff).
#[inline(always)]
fn fold(acc: u64) -> u16 {
    let acc = (acc >> 32) + (acc & 0xffff_ffff);
    let acc = (acc >> 16) + (acc & 0xffff);
    let acc = (acc >> 16) + (acc & 0xffff);
    let acc = (acc >> 16) + (acc & 0xffff);
    acc as u16
}

/// Completes a partial checksum: the field `field` bytes after `start` holds the
/// pseudo-header sum; the checksum of `frame[start..]` (with that field) is written into
/// it. UDP's zero result is sent as 0xffff (RFC 768). False, and nothing written, when the
/// field is not inside the frame.
pub fn complete_partial(frame: &mut [u8], start: usize, field: usize, udp: bool) -> bool {
    let Some(at) = start.checked_add(field) else {
        return false;
    };
    if at.checked_add(2).is_none_or(|end| end > frame.len()) {
        return false;
    }
    let mut c = !sum(&frame[start..], 0);
    if udp && c == 0 {
        c = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// The checksum after one 16-bit word of the covered data changes from `old_word` to
/// `new_word`, from the old checksum alone (RFC 1624 §3, eqn. 3: `HC' = ~(~HC + ~m + m')`).
///
/// Equal to a full recomputation unless the data is all zero after the change: then this
/// gives 0x0000 where a full computation gives 0xffff (RFC 1624 §3 explains why eqn. 3,
/// unlike RFC 1141's eqn. 2, never yields 0xffff otherwise). IP headers and data covered by
/// a pseudo-header are never all zero; a caller updating anything else and getting 0x0000
/// recomputes in full.
#[inline]
pub fn update16(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    let acc = u32::from(!old_checksum) + u32::from(!old_word) + u32::from(new_word);
    !sum(&[], acc)
}

/// [`update16`] for a field of several words, such as a 4-byte IPv4 or a 16-byte IPv6
/// address, that starts at an even offset of the covered data. Ones' complement negation
/// distributes over the sum, so this is eqn. 3 with `m` and `m'` the sums of the old and
/// new field.
#[inline]
pub fn update_bytes<const N: usize>(old_checksum: u16, old: &[u8; N], new: &[u8; N]) -> u16 {
    let acc = u32::from(!old_checksum) + u32::from(!sum(old, 0));
    !sum(new, acc)
}

/// The folded sum of the IPv4 pseudo-header (RFC 768; RFC 9293 §3.1) for an L4 segment of
/// `length` bytes (header and data) carried as `protocol`. Pass it as `initial` to
/// [`sum`] over the segment.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let acc = u32::from(sum(&src.octets(), 0))
        + u32::from(sum(&dst.octets(), 0))
        + u32::from(protocol)
        + u32::from(length);
    sum(&[], acc)
}

/// The folded sum of the IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer packet of
/// `length` bytes whose protocol is `next_header` (58 for ICMPv6, RFC 4443 §2.3). `src`
/// and `dst` are the addresses the packet carries, or for a Routing header the final
/// destination (RFC 8200 §8.1).
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let acc = u32::from(sum(&src.octets(), 0))
        + u32::from(sum(&dst.octets(), 0))
        + (length >> 16)
        + (length & 0xffff)
        + u32::from(next_header);
    sum(&[], acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0),
            0xddf2
        );
        assert_eq!(sum(&[0xff], 0), 0xff00);
    }

    /// A UDP/IPv4 datagram whose checksum the kernel computed: completing the partial
    /// form (pseudo-header sum in the field) gives the same value.
    #[test]
    fn completes_a_udp_checksum_as_the_kernel_does() {
        // 10.0.0.1:1234 -> 10.0.0.2:5678, payload "hello".
        let mut udp = vec![0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0d, 0x00, 0x00];
        udp.extend_from_slice(b"hello");
        let pseudo = sum(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 13], 0);
        // The full checksum, computed directly.
        let mut full = udp.clone();
        let c = !sum(&udp, u32::from(pseudo));
        full[6..8].copy_from_slice(&c.to_be_bytes());
        // The partial form: field = pseudo-header sum (not complemented).
        let mut frame = vec![0u8; 34];
        udp[6..8].copy_from_slice(&pseudo.to_be_bytes());
        frame.extend_from_slice(&udp);
        assert!(complete_partial(&mut frame, 34, 6, true));
        assert_eq!(&frame[34..], &full[..]);
        // Verifying: the sum over pseudo-header and datagram is 0xffff.
        assert_eq!(sum(&frame[34..], u32::from(pseudo)), 0xffff);
    }

    #[test]
    fn field_outside_the_frame_is_refused() {
        let mut f = vec![0u8; 40];
        assert!(!complete_partial(&mut f, 34, 16, false));
        assert!(!complete_partial(&mut f, usize::MAX, 16, false));
        assert!(complete_partial(&mut f, 34, 4, false));
    }

    /// RFC 1071's sum word by word: the reference [`sum`] must agree with.
    fn sum_by_words(data: &[u8], initial: u32) -> u16 {
        let mut acc = u64::from(initial);
        let mut chunks = data.chunks_exact(2);
        for c in &mut chunks {
            acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            acc += u64::from(*last) << 8;
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn sum_agrees_with_the_word_by_word_sum_at_every_length() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 151 + 7) as u8).collect();
        for len in 0..data.len() {
            for initial in [0, 1, 0xffff, 0x1_2345, u32::MAX] {
                assert_eq!(
                    sum(&data[..len], initial),
                    sum_by_words(&data[..len], initial)
                );
            }
        }
        let ones = [0xffu8; 64];
        for len in 0..ones.len() {
            assert_eq!(sum(&ones[..len], 0), sum_by_words(&ones[..len], 0));
        }
        assert_eq!(sum(&[0; 40], 0), 0, "all zero sums to zero, not 0xffff");
    }

    /// End-around carries added one fold at a time, as RFC 1071 describes it.
    fn fold_by_loop(mut acc: u64) -> u16 {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn fold_agrees_with_the_loop_at_the_edges() {
        for acc in [
            0,
            0xffff,
            0x1_0000,
            0x1_0002,
            0x1_fffe,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_ffff_fffe,
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(fold(acc), fold_by_loop(acc), "{acc:#x}");
        }
    }

    proptest! {
        #[test]
        fn fold_equals_the_loop(acc in any::<u64>()) {
            prop_assert_eq!(fold(acc), fold_by_loop(acc));
        }

        #[test]
        fn sum_equals_the_word_by_word_sum(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            initial in any::<u32>(),
        ) {
            prop_assert_eq!(sum(&data, initial), sum_by_words(&data, initial));
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_verifies(data in proptest::collection::vec(any::<u8>(), 0..200),
                                     start in 0usize..220,
                                     field in (0usize..20).prop_map(|w| 2 * w), udp: bool) {
            let mut f = data.clone();
            if complete_partial(&mut f, start, field, udp) {
                // It verifies as a receiver checks it: the range's sum plus the
                // pseudo-header sum (what the field held) is 0xffff.
                let at = start + field;
                let pseudo = u16::from_be_bytes([data[at], data[at + 1]]);
                prop_assert_eq!(sum(&f[start..], u32::from(pseudo)), 0xffff);
            } else {
                prop_assert_eq!(f, data);
            }
        }
    }

    /// The full checksum of `data` as a sender computes it.
    fn full(data: &[u8]) -> u16 {
        !sum(data, 0)
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 §4: the other header words sum to 0xcd7a, m = 0x5555 becomes
        // m' = 0x3285. Recomputation gives 0x0000, and so does eqn. 3 (eqn. 2 gave 0xffff).
        assert_eq!(full(&[0xcd, 0x7a, 0x55, 0x55]), 0xdd2f);
        assert_eq!(full(&[0xcd, 0x7a, 0x32, 0x85]), 0x0000);
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn ipv4_ttl_decrement_on_a_published_header() {
        // The header of Wikipedia's "IPv4 header checksum" example (checksum b861):
        // 192.168.0.1 -> 192.168.0.199, UDP, TTL 64. TTL 63 gives b961 when recomputed.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(full(&h), 0xb861);
        assert_eq!(update16(0xb861, 0x4011, 0x3f11), 0xb961);
        h[8] = 0x3f;
        assert_eq!(full(&h), 0xb961);
        // The source address becomes 10.0.0.1.
        h[10..12].copy_from_slice(&0xb961u16.to_be_bytes());
        let c = update_bytes(0xb961, &[192, 168, 0, 1], &[10, 0, 0, 1]);
        h[10..12].copy_from_slice(&[0, 0]);
        h[12..16].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(c, full(&h));
    }

    #[test]
    fn all_zero_data_is_the_documented_exception() {
        // One word 0x0001 becomes 0: the full checksum of all-zero data is 0xffff, eqn. 3
        // gives the other zero.
        assert_eq!(full(&[0, 1]), 0xfffe);
        assert_eq!(full(&[0, 0]), 0xffff);
        assert_eq!(update16(0xfffe, 0x0001, 0x0000), 0x0000);
    }

    #[test]
    fn pseudo_header_v4_matches_the_udp_example() {
        // The pseudo-header of completes_a_udp_checksum_as_the_kernel_does, laid out.
        let laid_out = sum(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 13], 0);
        let v4 = |a, b, c, d| Ipv4Addr::new(a, b, c, d);
        assert_eq!(
            pseudo_header_v4(v4(10, 0, 0, 1), v4(10, 0, 0, 2), 17, 13),
            laid_out
        );
    }

    proptest! {
        #[test]
        fn update16_equals_recomputation(data in proptest::collection::vec(any::<u8>(), 2..80),
                                         word in any::<prop::sample::Index>(),
                                         new_word: u16) {
            let at = 2 * word.index(data.len() / 2);
            let old_word = u16::from_be_bytes([data[at], data[at + 1]]);
            let mut changed = data.clone();
            changed[at..at + 2].copy_from_slice(&new_word.to_be_bytes());
            let updated = update16(full(&data), old_word, new_word);
            if changed.iter().all(|&b| b == 0) {
                // The one exception (see update16): both are zero in ones' complement.
                prop_assert_eq!(updated, 0x0000);
            } else {
                prop_assert_eq!(updated, full(&changed));
            }
        }

        #[test]
        fn update_bytes_equals_recomputation(data in proptest::collection::vec(any::<u8>(), 20..80),
                                             at in any::<prop::sample::Index>(),
                                             new4: [u8; 4], new16: [u8; 16]) {
            // A 4-byte and a 16-byte field at the same even offset.
            let mut data = data;
            let at = 2 * at.index((data.len() - 16) / 2 + 1);
            // One nonzero byte outside the field, so no result is all zero.
            let keep = if at == 0 { data.len() - 1 } else { 0 };
            data[keep] |= 1;
            let mut old4 = [0; 4];
            old4.copy_from_slice(&data[at..at + 4]);
            let mut old16 = [0; 16];
            old16.copy_from_slice(&data[at..at + 16]);

            let mut c4 = data.clone();
            c4[at..at + 4].copy_from_slice(&new4);
            prop_assert_eq!(update_bytes(full(&data), &old4, &new4), full(&c4));
            let mut c16 = data.clone();
            c16[at..at + 16].copy_from_slice(&new16);
            prop_assert_eq!(update_bytes(full(&data), &old16, &new16), full(&c16));
        }

        #[test]
        fn pseudo_headers_equal_their_laid_out_sums(s4: [u8; 4], d4: [u8; 4], proto: u8,
                                                    len16: u16, s6: [u8; 16], d6: [u8; 16],
                                                    len32: u32) {
            let mut v4 = Vec::new();
            v4.extend_from_slice(&s4);
            v4.extend_from_slice(&d4);
            v4.extend_from_slice(&[0, proto]);
            v4.extend_from_slice(&len16.to_be_bytes());
            prop_assert_eq!(
                pseudo_header_v4(Ipv4Addr::from(s4), Ipv4Addr::from(d4), proto, len16),
                sum(&v4, 0)
            );
            let mut v6 = Vec::new();
            v6.extend_from_slice(&s6);
            v6.extend_from_slice(&d6);
            v6.extend_from_slice(&len32.to_be_bytes());
            v6.extend_from_slice(&[0, 0, 0, proto]);
            prop_assert_eq!(
                pseudo_header_v6(&Ipv6Addr::from(s6), &Ipv6Addr::from(d6), proto, len32),
                sum(&v6, 0)
            );
        }
    }
}
