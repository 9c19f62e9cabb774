//! Packet headers as views over bytes (parse and emit), in the style of smoltcp's wire
//! layer: `new_checked` validates lengths once, after which no accessor can panic.

pub mod checksum;
pub mod ethernet;
