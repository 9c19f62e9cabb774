//! per-packet NAT (to come)
