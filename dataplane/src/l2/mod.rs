//! L2 switching: bridge domains, the MAC table and learning.

pub mod fdb;
pub mod learn;
