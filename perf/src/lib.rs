//! perf: the benchmark suite's Rust half.
//!
//! `vswitch-pktgen` (src/bin) writes deterministic traffic profiles as classic pcap files;
//! `perf/run.sh` replays them through vswitch, dpdk-testpmd and OVS-DPDK. The library is
//! split so that a new profile (routes, VXLAN, ACL) is one new file under `profile/`:
//!
//! - [`rng`]: the seeded PRNG (SplitMix64) every random choice comes from.
//! - [`wire`]: Ethernet / IPv4 / UDP header emission and the Internet checksum.
//! - [`size`]: frame-size mixes (fixed 64 B, IMIX 7:4:1).
//! - [`profile`]: traffic profiles, each an address plan that turns a packet index into a frame.
//! - [`pcap`]: the classic libpcap file writer.
//! - [`generate`]: ties them together (profile x size mix x count -> pcap).
//!
//! `fib-bench` (src/bin) measures FIB structures' inserts and lookups; [`routes`] gives it
//! BGP-shaped route sets, destinations and a reference longest match. `vswitch-aclbench`
//! compares ACL classifiers; [`aclrules`] gives it ClassBench-like rule sets and keys;
//! `acl-gen` writes such a set (all permit) as `vsctl` rules and OpenFlow flows ([`aclemit`]).
//! [`bench`] holds what the benchmark binaries share (EAL arguments, pinning, exit status).

pub mod aclemit;
pub mod aclrules;
pub mod bench;
pub mod generate;
pub mod pcap;
pub mod profile;
pub mod rng;
pub mod routes;
pub mod size;
pub mod wire;
