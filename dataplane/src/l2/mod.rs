//! L2 switching: bridge domains, the MAC table and learning.

pub mod bridge;
pub mod fdb;
pub mod learn;
