//! The Internet checksum (RFC 1071): ones' complement sum of 16-bit words, and completing
//! a partial L4 checksum (the sender wrote the pseudo-header sum into the checksum field;
//! the sum of the L4 header and payload is folded in here).

/// The longest TCP header (RFC 9293 §3.1: data offset 15 words).
pub const MAX_L4_HEADER: usize = 60;

/// Ones' complement sum of `data` (as big-endian 16-bit words, an odd last byte padded
/// with zero) added to `initial`, folded to 16 bits.
pub fn sum(data: &[u8], initial: u32) -> u16 {
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
}
