//! An ACL rule as the dataplane holds it, and the packet fields rules match ([`Key`]).
//!
//! A rule matches one address family (the family of its prefixes; a rule with neither
//! prefix matches both), an IP protocol or any, source and destination prefixes, and port
//! ranges, which for ICMP and ICMPv6 hold the type (source) and code (destination) as VPP's
//! ACL plugin does: a rule `icmp-type=8` is `sport` 8-8. A rule that names a port range or
//! an ICMP type or code does not match a non-initial fragment (it carries no L4 header):
//! such fragments are matched on their addresses and protocol only (no fragment state is
//! kept), so a rule without ports can let them through.

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Action {
    Deny = 0,
    Permit = 1,
    /// Permit, and create a session so that the flow's replies pass too.
    PermitReflect = 2,
}

impl Action {
    /// Whether the packet passes.
    #[inline(always)]
    pub fn permits(self) -> bool {
        self != Action::Deny
    }

    /// The name `vsctl acl show` prints.
    pub const fn name(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Permit => "permit",
            Action::PermitReflect => "permit-reflect",
        }
    }
}

/// The address family a rule or packet is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Family {
    #[default]
    V4,
    V6,
}

/// An address prefix, IPv4 addresses held in the low 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Net {
    pub addr: u128,
    pub len: u8,
}

impl Net {
    /// Every address of `family`.
    pub const ANY: Net = Net { addr: 0, len: 0 };

    /// The range of addresses it covers, as (first, last), in a family of `bits` bits.
    #[inline]
    pub fn range(&self, bits: u8) -> (u128, u128) {
        let len = self.len.min(bits);
        let host_bits = u32::from(bits - len);
        let span: u128 = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let first = self.addr & !span;
        let last = if bits == 128 {
            first | span
        } else {
            (first | span) & ((1u128 << bits) - 1)
        };
        (first, last)
    }
}

/// One rule. Ranges are inclusive; the full range matches every value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    pub action: Action,
    /// None: both families (then `src` and `dst` are [`Net::ANY`]).
    pub family: Option<Family>,
    /// None: any protocol.
    pub proto: Option<u8>,
    pub src: Net,
    pub dst: Net,
    /// Source port range (ICMP: type range).
    pub sport: (u16, u16),
    /// Destination port range (ICMP: code range).
    pub dport: (u16, u16),
}

impl Rule {
    /// The full port range.
    pub const ANY_PORT: (u16, u16) = (0, u16::MAX);

    /// A rule that matches everything, with `action`.
    pub const fn any(action: Action) -> Rule {
        Rule {
            action,
            family: None,
            proto: None,
            src: Net::ANY,
            dst: Net::ANY,
            sport: Rule::ANY_PORT,
            dport: Rule::ANY_PORT,
        }
    }

    /// Whether it constrains L4 fields (ports, ICMP type or code).
    #[inline]
    pub fn has_l4(&self) -> bool {
        self.sport != Rule::ANY_PORT || self.dport != Rule::ANY_PORT
    }

    /// Whether it matches `k`: the plain definition, which classifiers must agree with.
    pub fn matches(&self, k: &Key) -> bool {
        if self.family.is_some_and(|f| f != k.family) {
            return false;
        }
        if self.proto.is_some_and(|p| p != k.proto) {
            return false;
        }
        let bits = k.bits();
        let in_net = |n: &Net, a: u128| {
            let (lo, hi) = n.range(bits);
            lo <= a && a <= hi
        };
        if !in_net(&self.src, k.src) || !in_net(&self.dst, k.dst) {
            return false;
        }
        if !self.has_l4() {
            return true;
        }
        !k.later_fragment
            && (self.sport.0..=self.sport.1).contains(&k.sport)
            && (self.dport.0..=self.dport.1).contains(&k.dport)
    }
}

/// The fields of a packet that rules match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Key {
    pub family: Family,
    pub proto: u8,
    /// Addresses (IPv4 in the low 32 bits).
    pub src: u128,
    pub dst: u128,
    /// Ports (ICMP: type and code; other protocols without ports: 0).
    pub sport: u16,
    pub dport: u16,
    /// A fragment other than the first (its L4 fields are unknown: 0).
    pub later_fragment: bool,
}

impl Key {
    /// Bits in an address of its family.
    #[inline(always)]
    pub fn bits(&self) -> u8 {
        match self.family {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// The first rule of `rules` that matches `k`, by a plain scan: the reference every
/// classifier is tested against.
pub fn first_match(rules: &[Rule], k: &Key) -> Option<usize> {
    rules.iter().position(|r| r.matches(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> u128 {
        u128::from(u32::from_be_bytes(a))
    }

    #[test]
    fn prefixes_cover_their_ranges() {
        let n = Net {
            addr: v4([10, 1, 2, 3]),
            len: 24,
        };
        assert_eq!(n.range(32), (v4([10, 1, 2, 0]), v4([10, 1, 2, 255])));
        assert_eq!(Net::ANY.range(32), (0, u128::from(u32::MAX)));
        assert_eq!(Net::ANY.range(128), (0, u128::MAX));
        let h = Net { addr: 7, len: 128 };
        assert_eq!(h.range(128), (7, 7));
    }

    #[test]
    fn later_fragments_match_only_rules_without_ports() {
        let with_port = Rule {
            proto: Some(17),
            dport: (53, 53),
            ..Rule::any(Action::Permit)
        };
        let without = Rule {
            proto: Some(17),
            ..Rule::any(Action::Permit)
        };
        let k = Key {
            proto: 17,
            dport: 53,
            ..Key::default()
        };
        assert!(with_port.matches(&k) && without.matches(&k));
        let frag = Key {
            later_fragment: true,
            dport: 0,
            ..k
        };
        assert!(!with_port.matches(&frag) && without.matches(&frag));
    }

    #[test]
    fn a_family_rule_matches_only_its_family() {
        let r = Rule {
            family: Some(Family::V6),
            ..Rule::any(Action::Deny)
        };
        assert!(!r.matches(&Key::default()));
        assert!(r.matches(&Key {
            family: Family::V6,
            ..Key::default()
        }));
        assert!(Rule::any(Action::Deny).matches(&Key::default()));
    }
}
