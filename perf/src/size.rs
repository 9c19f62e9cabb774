//! Frame-size mixes. Sizes are Ethernet frame sizes on the wire, FCS included, as RFC 2544
//! §9 counts them: a "64 B" frame is 60 bytes in the pcap (captures carry no FCS) plus the
//! 4-byte FCS the NIC would append.

use std::fmt;

use crate::rng::{self, SplitMix64};
use crate::wire::ethernet;

/// Simple IMIX: 7 x 64 B, 4 x 576 B, 1 x 1500 B per block of 12 frames.
pub const IMIX: [(usize, usize); 3] = [(64, 7), (576, 4), (1500, 1)];
const IMIX_BLOCK: usize = 12;
/// Largest fixed size accepted: a 1500-byte-MTU frame with one VLAN tag.
pub const MAX_FRAME_LEN: usize = 1522;
/// Stream id for the IMIX order, so it is independent of the profile's random fields.
const STREAM_IMIX: u64 = 0x1313;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeMix {
    /// Every frame this size (FCS included).
    Fixed(usize),
    /// [`IMIX`], each block of 12 in a seeded random order.
    Imix,
}

impl SizeMix {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("imix") {
            return Ok(SizeMix::Imix);
        }
        match s.parse::<usize>() {
            Ok(n) if (ethernet::MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&n) => {
                Ok(SizeMix::Fixed(n))
            }
            _ => Err(format!(
                "size must be imix or a frame size {}..={} (FCS included), got {s:?}",
                ethernet::MIN_FRAME_LEN,
                MAX_FRAME_LEN
            )),
        }
    }

    /// The frame sizes (FCS included) of packets 0, 1, 2, ...
    pub fn sizes(&self, seed: u64) -> Sizes {
        Sizes {
            mix: *self,
            rng: SplitMix64::new(rng::keyed(seed, STREAM_IMIX, 0)),
            block: [0; IMIX_BLOCK],
            pos: IMIX_BLOCK,
        }
    }
}

impl fmt::Display for SizeMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeMix::Fixed(n) => write!(f, "{n}"),
            SizeMix::Imix => f.write_str("imix"),
        }
    }
}

/// Infinite iterator of frame sizes; see [`SizeMix::sizes`].
pub struct Sizes {
    mix: SizeMix,
    rng: SplitMix64,
    block: [usize; IMIX_BLOCK],
    pos: usize,
}

impl Iterator for Sizes {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self.mix {
            SizeMix::Fixed(n) => Some(n),
            SizeMix::Imix => {
                if self.pos == IMIX_BLOCK {
                    let mut i = 0;
                    for (size, n) in IMIX {
                        self.block[i..i + n].fill(size);
                        i += n;
                    }
                    self.rng.shuffle(&mut self.block);
                    self.pos = 0;
                }
                let size = self.block[self.pos];
                self.pos += 1;
                Some(size)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(SizeMix::parse("64"), Ok(SizeMix::Fixed(64)));
        assert_eq!(SizeMix::parse("IMIX"), Ok(SizeMix::Imix));
        assert!(SizeMix::parse("63").is_err());
        assert!(SizeMix::parse("1523").is_err());
        assert!(SizeMix::parse("big").is_err());
    }

    #[test]
    fn imix_ratio_is_exact_per_block() {
        let sizes: Vec<usize> = SizeMix::Imix.sizes(5).take(12 * 100).collect();
        for block in sizes.chunks(12) {
            let count = |s| block.iter().filter(|&&x| x == s).count();
            assert_eq!((count(64), count(576), count(1500)), (7, 4, 1));
        }
        // The order differs between blocks (it is shuffled), not a fixed pattern.
        assert_ne!(sizes[..12], sizes[12..24]);
    }

    #[test]
    fn fixed_is_constant() {
        assert!(SizeMix::Fixed(128).sizes(1).take(50).all(|s| s == 128));
    }
}
