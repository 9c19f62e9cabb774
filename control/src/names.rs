//! Validation of names and common values from outside (gRPC, CLI, state files).

/// Checks an object name: 1-31 characters of `[A-Za-z0-9_.-]`. `what` names the field.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if name.len() > 31 {
        return Err(format!("{what} {name:?} is longer than 31 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{what} {name:?} contains {c:?}: use only A-Z a-z 0-9 _ . -"
        ));
    }
    Ok(())
}

/// Checks a Linux network interface name (IFNAMSIZ - 1 = 15 bytes, no '/', ',' or spaces).
pub fn check_ifname(key: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "{key} must be a Linux interface name of 1-15 characters, not {name:?}"
        ));
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ',' || c == '=' || c == ':' || c.is_whitespace())
    {
        return Err(format!(
            "{key} {name:?} is not a valid Linux interface name"
        ));
    }
    Ok(())
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff` (or with '-'); refuses multicast addresses,
/// which no port can own.
pub fn parse_mac(key: &str, s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("{key} {s:?} is not a MAC address (expected aa:bb:cc:dd:ee:ff)");
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(&parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac == [0; 6] {
        return Err(format!(
            "{key} {s} is the all-zero address, which no station has"
        ));
    }
    if mac[0] & 1 == 1 {
        return Err(format!(
            "{key} {s} is a multicast address; a unicast address is needed"
        ));
    }
    Ok(mac)
}

/// Formats a MAC address as lower-case colon-separated hex.
pub fn format_mac(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Parses an MTU: 68 (RFC 791's minimum) to 9600, the largest the switch's jumbo buffers
/// carry (see buffers.rs).
pub fn parse_mtu(key: &str, s: &str) -> Result<u16, String> {
    use crate::buffers::{MAX_MTU, MIN_MTU};
    match s.parse::<u16>() {
        Ok(n) if (MIN_MTU..=MAX_MTU).contains(&n) => Ok(n),
        _ => Err(format!(
            "{key} must be a number from {MIN_MTU} to {MAX_MTU} (the largest the switch's \
             jumbo buffers carry), not {s:?}"
        )),
    }
}

/// Parses a PCI address `DDDD:BB:DD.F` (or `BB:DD.F`).
pub fn check_pci_addr(key: &str, s: &str) -> Result<(), String> {
    let bad = || format!("{key} {s:?} is not a PCI address (expected 0000:00:04.0)");
    let (rest, func) = s.rsplit_once('.').ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split(':').collect();
    let widths: &[usize] = match parts.len() {
        3 => &[4, 2, 2],
        2 => &[2, 2],
        _ => return Err(bad()),
    };
    let hex = |p: &str, w: usize| p.len() == w && p.chars().all(|c| c.is_ascii_hexdigit());
    let fields_ok = parts.iter().zip(widths).all(|(p, w)| hex(p, *w));
    let func_ok = func.len() == 1 && func.chars().all(|c| ('0'..='7').contains(&c));
    if !(fields_ok && func_ok) {
        return Err(bad());
    }
    Ok(())
}

/// A group's id, from its name (looked up as the C library does: /etc/group, or whatever
/// the system's name service says) or its number (the group need not exist then).
/// `key` names the argument in the error.
pub fn group_id(key: &str, group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        // (gid_t)-1 means "leave the group as it is" to chown(2).
        if gid == u32::MAX {
            return Err(format!("{key} {gid} is not a group id (-1)"));
        }
        return Ok(gid);
    }
    if group.is_empty() {
        return Err(format!("{key} must be a group name or number, not empty"));
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("{key}: no group named {group:?}")),
        Err(e) => Err(format!("{key} {group:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_name_or_number() {
        // Group 0 is root's on every Linux system.
        assert_eq!(group_id("group", "root"), Ok(0));
        assert_eq!(group_id("group", "0"), Ok(0));
        assert_eq!(group_id("group", "4321"), Ok(4321));
        assert_eq!(
            group_id("group", "no-such-group-x9"),
            Err("group: no group named \"no-such-group-x9\"".to_string())
        );
        assert!(group_id("group", "").unwrap_err().contains("empty"));
        assert!(group_id("group", "4294967295").unwrap_err().contains("-1"));
        // A name with a NUL cannot be looked up: an error, not a panic.
        assert!(group_id("group", "a\0b").is_err());
    }

    #[test]
    fn names() {
        assert!(check_name("name", "vm1-eth0.2_x").is_ok());
        assert!(check_name("name", &"a".repeat(31)).is_ok());
        assert!(check_name("name", &"a".repeat(32))
            .unwrap_err()
            .contains("31"));
        assert!(check_name("name", "").unwrap_err().contains("empty"));
        assert!(check_name("name", "a b").unwrap_err().contains("' '"));
        assert!(check_name("name", "a/b").is_err());
        assert!(check_name("name", "bvi:br0").is_err());
    }

    #[test]
    fn ifnames() {
        assert!(check_ifname("iface", "veth0").is_ok());
        assert!(check_ifname("iface", "a23456789012345").is_ok());
        assert!(check_ifname("iface", "a234567890123456").is_err());
        assert!(check_ifname("iface", "a,b").is_err());
        assert!(check_ifname("iface", "..").is_err());
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("mac", "02:00:00:aB:cd:EF").unwrap(),
            [2, 0, 0, 0xab, 0xcd, 0xef]
        );
        assert_eq!(
            parse_mac("mac", "02-00-00-00-00-01").unwrap(),
            [2, 0, 0, 0, 0, 1]
        );
        for bad in [
            "",
            "zz:00:00:00:00:00",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:0:0:0:0:0",
            "02:00:00:00:00:0g",
        ] {
            assert!(
                parse_mac("mac", bad).unwrap_err().contains("not a MAC"),
                "{bad}"
            );
        }
        assert!(parse_mac("mac", "01:00:5e:00:00:01")
            .unwrap_err()
            .contains("multicast"));
        assert!(parse_mac("mac", "00:00:00:00:00:00")
            .unwrap_err()
            .contains("all-zero"));
        assert_eq!(format_mac([2, 0, 0, 0xab, 0xcd, 0xef]), "02:00:00:ab:cd:ef");
    }

    #[test]
    fn mtus() {
        assert_eq!(parse_mtu("mtu", "1500"), Ok(1500));
        assert!(parse_mtu("mtu", "67").is_err());
        assert_eq!(parse_mtu("mtu", "9600"), Ok(9600));
        assert_eq!(
            parse_mtu("mtu", "9601").unwrap_err(),
            "mtu must be a number from 68 to 9600 (the largest the switch's jumbo buffers \
             carry), not \"9601\""
        );
        assert!(parse_mtu("mtu", "x").is_err());
    }

    #[test]
    fn pci_addresses() {
        assert!(check_pci_addr("dev", "0000:00:04.0").is_ok());
        assert!(check_pci_addr("dev", "00:04.7").is_ok());
        assert!(check_pci_addr("dev", "0000:00:04.8").is_err());
        assert!(check_pci_addr("dev", "0000:0:04.0").is_err());
        assert!(check_pci_addr("dev", "net_null0").is_err());
    }
}
