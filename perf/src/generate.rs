//! The generator proper: profile x size mix x count -> pcap.

use std::io::{self, Write};

use crate::pcap::PcapWriter;
use crate::profile::{addr, Params, ProfileKind};
use crate::size::SizeMix;
use crate::wire::ethernet;

/// Everything that determines the bytes of a generated pcap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub profile: ProfileKind,
    pub size: SizeMix,
    pub params: Params,
    pub count: u64,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub packets: u64,
    /// Bytes of frames as captured (no FCS).
    pub frame_bytes: u64,
}

impl Spec {
    /// Checks the knobs; the error names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        let Params { macs, flows, .. } = self.params;
        if !(1..=addr::MAX_POOL).contains(&macs) {
            return Err(format!("--macs must be 1..={}, got {macs}", addr::MAX_POOL));
        }
        if !(1..=addr::MAX_POOL).contains(&flows) {
            return Err(format!(
                "--flows must be 1..={}, got {flows}",
                addr::MAX_POOL
            ));
        }
        let Params {
            routes, rules, vni, ..
        } = self.params;
        if !(1..=crate::profile::routes::MAX_ROUTES).contains(&routes) {
            return Err(format!(
                "--routes must be 1..={}, got {routes}",
                crate::profile::routes::MAX_ROUTES
            ));
        }
        if !(1..=crate::profile::acl::MAX_RULES).contains(&rules) {
            return Err(format!(
                "--rules must be 1..={}, got {rules}",
                crate::profile::acl::MAX_RULES
            ));
        }
        let Params {
            services, backends, ..
        } = self.params;
        if !(1..=crate::profile::services::MAX_SERVICES).contains(&services) {
            return Err(format!(
                "--services must be 1..={}, got {services}",
                crate::profile::services::MAX_SERVICES
            ));
        }
        if !(1..=crate::profile::services::MAX_BACKENDS).contains(&backends) {
            return Err(format!(
                "--backends must be 1..={}, got {backends}",
                crate::profile::services::MAX_BACKENDS
            ));
        }
        if vni >= 1 << 24 {
            return Err(format!("--vni must be 0..=16777215, got {vni}"));
        }
        let need = macs.max(flows);
        if self.count < need {
            return Err(format!(
                "--count {} is below max(--macs, --flows) = {need}: some MACs or flows would never appear",
                self.count
            ));
        }
        Ok(())
    }

    /// Writes the pcap. Same spec, same bytes.
    pub fn write_pcap<W: Write>(&self, out: W) -> io::Result<Summary> {
        self.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let profile = self.profile.build(&self.params);
        let mut pcap = PcapWriter::new(out)?;
        let mut buf = Vec::with_capacity(2048);
        let mut summary = Summary::default();
        for (i, frame_len) in (0..self.count).zip(self.size.sizes(self.params.seed)) {
            profile.write_frame(i, frame_len, &mut buf);
            pcap.write_packet(i, &buf)?;
            summary.packets += 1;
            summary.frame_bytes += buf.len() as u64;
        }
        pcap.finish()?;
        Ok(summary)
    }

    /// The profile's destination MACs, one `aa:bb:cc:dd:ee:ff` per line.
    /// The profile's table (route prefixes, ACL rules), if it has one: false if not.
    pub fn write_table<W: Write>(&self, mut out: W) -> io::Result<bool> {
        match self.profile.build(&self.params).table() {
            Some(t) => {
                out.write_all(t.as_bytes())?;
                out.flush()?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub fn write_dst_macs<W: Write>(&self, mut out: W) -> io::Result<()> {
        for m in self.profile.build(&self.params).dst_macs() {
            writeln!(out, "{}", format_mac(&m))?;
        }
        out.flush()
    }
}

pub fn format_mac(m: &ethernet::Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::{GLOBAL_HEADER_LEN, RECORD_HEADER_LEN};
    use crate::wire::internet_checksum;
    use std::collections::HashSet;

    fn spec(profile: ProfileKind, size: SizeMix, seed: u64) -> Spec {
        Spec {
            profile,
            size,
            params: Params {
                macs: 16,
                flows: 100,
                seed,
                ..Params::default()
            },
            count: 1200,
        }
    }

    fn gen(s: &Spec) -> Vec<u8> {
        let mut out = Vec::new();
        s.write_pcap(&mut out).unwrap();
        out
    }

    /// Splits a pcap written by us into its packets.
    fn packets(pcap: &[u8]) -> Vec<&[u8]> {
        let mut rest = &pcap[GLOBAL_HEADER_LEN..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
            let orig = u32::from_le_bytes(rest[12..16].try_into().unwrap()) as usize;
            assert_eq!(len, orig);
            out.push(&rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len]);
            rest = &rest[RECORD_HEADER_LEN + len..];
        }
        out
    }

    #[test]
    fn same_seed_same_bytes() {
        for p in [ProfileKind::Xconnect, ProfileKind::L2] {
            for size in [SizeMix::Fixed(64), SizeMix::Imix] {
                assert_eq!(gen(&spec(p, size, 7)), gen(&spec(p, size, 7)));
                assert_ne!(gen(&spec(p, size, 7)), gen(&spec(p, size, 8)));
            }
        }
    }

    /// FNV-1a 64 of the file: pins the exact bytes a seed gives, so a change to any address
    /// plan (which would silently change every published result) fails here first.
    fn fnv1a(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    #[test]
    fn golden_digests() {
        let x = gen(&spec(ProfileKind::Xconnect, SizeMix::Fixed(64), 1));
        let l = gen(&spec(ProfileKind::L2, SizeMix::Imix, 1));
        assert_eq!(
            (fnv1a(&x), fnv1a(&l)),
            (0x1d00_53e0_8922_88e6, 0x3302_b85c_d927_7ecf)
        );
    }

    #[test]
    fn sizes_64() {
        let pcap = gen(&spec(ProfileKind::Xconnect, SizeMix::Fixed(64), 1));
        let pk = packets(&pcap);
        assert_eq!(pk.len(), 1200);
        assert!(pk.iter().all(|p| p.len() == 60));
        assert_eq!(
            pcap.len(),
            GLOBAL_HEADER_LEN + 1200 * (RECORD_HEADER_LEN + 60)
        );
    }

    #[test]
    fn sizes_imix() {
        let pcap = gen(&spec(ProfileKind::Xconnect, SizeMix::Imix, 1));
        let pk = packets(&pcap);
        let count = |n| pk.iter().filter(|p| p.len() == n).count();
        // 1200 = 100 blocks of 12: exactly 7:4:1, captured without the 4-byte FCS.
        assert_eq!((count(60), count(572), count(1496)), (700, 400, 100));
    }

    #[test]
    fn headers_valid_and_counts_distinct() {
        for p in [ProfileKind::Xconnect, ProfileKind::L2] {
            let pcap = gen(&spec(p, SizeMix::Imix, 3));
            let mut flows = HashSet::new();
            let mut srcs = HashSet::new();
            let mut dsts = HashSet::new();
            for pkt in packets(&pcap) {
                assert_eq!(&pkt[12..14], &[0x08, 0x00]);
                let ip = &pkt[14..];
                assert_eq!(internet_checksum(0, &ip[..20]), 0, "IPv4 checksum");
                let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
                assert_eq!(total, ip.len());
                let udp_len = u16::from_be_bytes([ip[24], ip[25]]) as usize;
                assert_eq!(udp_len, total - 20);
                flows.insert(ip[12..24].to_vec());
                srcs.insert(pkt[6..12].to_vec());
                dsts.insert(pkt[0..6].to_vec());
            }
            assert_eq!((flows.len(), srcs.len(), dsts.len()), (100, 16, 16));
        }
    }

    #[test]
    fn count_below_flows_refused() {
        let mut s = spec(ProfileKind::Xconnect, SizeMix::Fixed(64), 1);
        s.count = 99;
        assert!(s.validate().unwrap_err().contains("--count"));
        s.count = 100;
        s.params.flows = 0;
        assert!(s.validate().unwrap_err().contains("--flows"));
    }

    #[test]
    fn dst_macs_listed() {
        let s = spec(ProfileKind::L2, SizeMix::Fixed(64), 1);
        let mut out = Vec::new();
        s.write_dst_macs(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 16);
        assert!(text
            .lines()
            .all(|l| l.len() == 17 && l.starts_with("02:01:")));
    }
}
