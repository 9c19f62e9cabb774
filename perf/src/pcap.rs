//! Classic libpcap file writer (the format `tcpdump -w` writes and DPDK's net_pcap reads
//! with libpcap): a 24-byte global header, then per packet a 16-byte record header and the
//! captured bytes. Little-endian, microsecond timestamps, link type Ethernet. Format:
//! draft-ietf-opsawg-pcap (the "PCAP Capture File Format"), sections 4 and 5.

use std::io::{self, Write};

/// Magic number for microsecond-resolution files; written in our (little-endian) byte order,
/// readers use it to detect the order.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
pub const VERSION_MAJOR: u16 = 2;
pub const VERSION_MINOR: u16 = 4;
/// LINKTYPE_ETHERNET (tcpdump.org link-layer header types).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Largest packet the file declares it may hold.
pub const SNAPLEN: u32 = 65_535;
pub const GLOBAL_HEADER_LEN: usize = 24;
pub const RECORD_HEADER_LEN: usize = 16;

/// Writes a pcap stream. Timestamps are the caller's (the generator uses the packet index in
/// microseconds so that the file is byte-for-byte reproducible).
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut hdr = [0u8; GLOBAL_HEADER_LEN];
        hdr[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        hdr[4..6].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        hdr[6..8].copy_from_slice(&VERSION_MINOR.to_le_bytes());
        // 8..12 thiszone (GMT offset, always 0), 12..16 sigfigs (always 0).
        hdr[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        hdr[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&hdr)?;
        Ok(PcapWriter { out })
    }

    /// Appends one packet captured whole (captured length = original length).
    pub fn write_packet(&mut self, ts_micros: u64, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len())
            .ok()
            .filter(|&l| l <= SNAPLEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "packet exceeds snaplen"))?;
        let secs = u32::try_from(ts_micros / 1_000_000)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "timestamp beyond 2106"))?;
        let micros = (ts_micros % 1_000_000) as u32;
        let mut rec = [0u8; RECORD_HEADER_LEN];
        rec[0..4].copy_from_slice(&secs.to_le_bytes());
        rec[4..8].copy_from_slice(&micros.to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(data)
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_header_golden() {
        let w = PcapWriter::new(Vec::new()).unwrap().finish().unwrap();
        assert_eq!(
            w,
            [
                0xd4, 0xc3, 0xb2, 0xa1, // magic, little-endian
                0x02, 0x00, 0x04, 0x00, // version 2.4
                0x00, 0x00, 0x00, 0x00, // thiszone
                0x00, 0x00, 0x00, 0x00, // sigfigs
                0xff, 0xff, 0x00, 0x00, // snaplen 65535
                0x01, 0x00, 0x00, 0x00, // LINKTYPE_ETHERNET
            ]
        );
    }

    #[test]
    fn record_header_golden() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(1_000_002, &[0xaa, 0xbb, 0xcc]).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(
            &bytes[GLOBAL_HEADER_LEN..],
            [
                0x01, 0x00, 0x00, 0x00, // ts_sec 1
                0x02, 0x00, 0x00, 0x00, // ts_usec 2
                0x03, 0x00, 0x00, 0x00, // incl_len
                0x03, 0x00, 0x00, 0x00, // orig_len
                0xaa, 0xbb, 0xcc,
            ]
        );
    }

    #[test]
    fn oversized_packet_refused() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        assert!(w.write_packet(0, &vec![0u8; SNAPLEN as usize + 1]).is_err());
    }
}
