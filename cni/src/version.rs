//! CNI spec versions: which this plugin speaks, and choosing one with a delegate.

use crate::error::{code, CniError, CniResult};

/// The versions this plugin speaks, oldest first (CONTRACT.md: 0.4.0 to 1.1.0).
pub const SUPPORTED: [&str; 3] = ["0.4.0", "1.0.0", "1.1.0"];

/// The newest: what VERSION reports and errors carry when a request names none.
pub const NEWEST: &str = "1.1.0";

/// A parsed `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let mut it = s.split('.').map(|p| {
            if p.is_empty()
                || p.len() > 9
                || (p.len() > 1 && p.starts_with('0'))
                || !p.bytes().all(|b| b.is_ascii_digit())
            {
                None
            } else {
                p.parse::<u32>().ok()
            }
        });
        let v = Version(it.next()??, it.next()??, it.next()??);
        it.next().is_none().then_some(v)
    }

    /// Results in 0.x carry each IP's `version`; from 1.0.0 they do not.
    pub fn is_pre_1(self) -> bool {
        self.0 == 0
    }

    /// 1.1.0 and later: interfaces may carry `mtu` and `socketPath`.
    pub fn has_1_1(self) -> bool {
        self >= Version(1, 1, 0)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The request's `cniVersion`, if this plugin speaks it.
pub fn check(s: &str) -> CniResult<Version> {
    match Version::parse(s) {
        Some(v) if SUPPORTED.contains(&s) => Ok(v),
        _ => Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "cniVersion {s:?} is not supported; vswitch-cni speaks {}",
                SUPPORTED.join(", ")
            ),
        )),
    }
}

/// The newest version both this plugin and a delegate (its VERSION answer) speak.
pub fn common(theirs: &[String]) -> Option<Version> {
    SUPPORTED
        .iter()
        .rev()
        .find(|s| theirs.iter().any(|t| t == *s))
        .and_then(|s| Version::parse(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(Version::parse("1.0.0"), Some(Version(1, 0, 0)));
        assert!(Version(1, 1, 0) > Version(1, 0, 9));
        for bad in [
            "", "1", "1.0", "1.0.0.0", "a.b.c", "1..0", "-1.0.0", "1.0.x",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert!(check("0.4.0").unwrap().is_pre_1());
        assert!(check("1.1.0").unwrap().has_1_1());
        assert_eq!(check("0.3.1").unwrap_err().code, 1);
        assert_eq!(check("2.0.0").unwrap_err().code, 1);
    }

    #[test]
    fn the_common_version_is_the_newest_both_speak() {
        let host_local: Vec<String> = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]
            .map(String::from)
            .to_vec();
        assert_eq!(common(&host_local), Some(Version(1, 0, 0)));
        assert_eq!(common(&["0.3.1".to_string()]), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            if let Some(v) = Version::parse(&s) {
                prop_assert_eq!(v.to_string(), s);
            }
        }
    }
}
