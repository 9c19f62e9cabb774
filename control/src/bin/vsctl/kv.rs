//! `KEY=VALUE` argument lists, as `iface add` takes them.
//!
//! Only the syntax is checked here (an `=`, a non-empty key, no key twice); which keys and
//! values are valid is vswitchd's business.

use std::collections::HashMap;

use anyhow::{anyhow, bail};

/// Parses `KEY=VALUE` words into a map. The value is everything after the first `=` and may
/// be empty or contain more `=`.
pub fn parse_key_values(words: &[String]) -> anyhow::Result<HashMap<String, String>> {
    let mut map = HashMap::with_capacity(words.len());
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid argument {word:?}: expected KEY=VALUE"))?;
        if key.is_empty() {
            bail!("invalid argument {word:?}: empty key");
        }
        if map.insert(key.to_owned(), value.to_owned()).is_some() {
            bail!("invalid argument {word:?}: key {key:?} given twice");
        }
    }
    Ok(map)
}

/// Command-line words from string literals (for tests).
#[cfg(test)]
pub(crate) fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs() {
        let map =
            parse_key_values(&words(&["socket=/tmp/a", "mode=server", "queues=2"])).expect("valid");
        assert_eq!(map.len(), 3);
        assert_eq!(map["socket"], "/tmp/a");
        assert_eq!(map["mode"], "server");
        assert_eq!(map["queues"], "2");
    }

    #[test]
    fn value_keeps_later_equals_and_may_be_empty() {
        let map = parse_key_values(&words(&["devargs=net_null0,size=64", "mac="])).expect("valid");
        assert_eq!(map["devargs"], "net_null0,size=64");
        assert_eq!(map["mac"], "");
    }

    #[test]
    fn empty_list_is_empty_map() {
        assert!(parse_key_values(&[]).expect("valid").is_empty());
    }

    #[test]
    fn rejects_missing_equals() {
        let err = parse_key_values(&words(&["iface=eth0", "promisc"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid argument "promisc": expected KEY=VALUE"#
        );
    }

    #[test]
    fn rejects_empty_key() {
        let err = parse_key_values(&words(&["=eth0"])).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid argument "=eth0": empty key"#);
    }

    #[test]
    fn rejects_duplicate_key() {
        let err = parse_key_values(&words(&["mtu=1500", "mtu=9000"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid argument "mtu=9000": key "mtu" given twice"#
        );
    }
}
