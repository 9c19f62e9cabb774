//! The desired state: what vswitchd restores at start. Written atomically (temp file,
//! fsync, rename, fsync of the directory) after every change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The state file format's version; a file of any other version is refused.
pub const STATE_VERSION: u32 = 1;

/// Everything configured, in the order it must be re-applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    #[serde(default)]
    pub interfaces: Vec<IfaceState>,
    #[serde(default)]
    pub xconnects: Vec<XconnectState>,
    #[serde(default)]
    pub bridges: Vec<BridgeState>,
}

/// One bridge, its members and its static MAC entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeState {
    pub name: String,
    pub learn: bool,
    pub age: u32,
    pub learn_limit: u32,
    pub flood: bool,
    #[serde(default)]
    pub members: Vec<MemberState>,
    #[serde(default)]
    pub static_macs: Vec<StaticMacState>,
}

/// A bridge member: untagged (no vlan, no trunk), access (vlan) or trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberState {
    pub iface: String,
    #[serde(default)]
    pub vlan: Option<u16>,
    #[serde(default)]
    pub trunk: Vec<u16>,
}

/// A static MAC table entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticMacState {
    pub mac: String,
    pub vlan: u16,
    pub iface: String,
}

/// One interface: as it was added, plus its admin state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IfaceState {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub admin_up: bool,
}

fn yes() -> bool {
    true
}

/// One cross-connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XconnectState {
    pub iface_a: String,
    pub iface_b: String,
}

/// Reads a state (or config) file. Ok(None) when it does not exist; an error that names
/// the file and the problem when it cannot be read, does not parse, or has another version.
pub fn load(path: &Path) -> Result<Option<State>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let state: State = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a valid state file: {e}", path.display()))?;
    if state.version != STATE_VERSION {
        return Err(format!(
            "{} has state version {}, this vswitchd reads version {STATE_VERSION}",
            path.display(),
            state.version
        ));
    }
    Ok(Some(state))
}

/// Writes `state` to `path` atomically: readers see the old file or the new one, never a
/// mix, and after a crash one of them survives.
pub fn save(path: &Path, state: &State) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write state file {}: {e}", path.display());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let mut text =
        serde_json::to_string_pretty(state).map_err(|e| format!("cannot encode state: {e}"))?;
    text.push('\n');
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vsstate-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip() {
        let d = tmpdir("rt");
        let p = d.join("state.json");
        assert_eq!(load(&p), Ok(None));
        let s = State {
            version: STATE_VERSION,
            interfaces: vec![IfaceState {
                name: "a".into(),
                type_name: "af_packet".into(),
                args: [("iface".to_string(), "veth0".to_string())].into(),
                admin_up: false,
            }],
            xconnects: vec![XconnectState {
                iface_a: "a".into(),
                iface_b: "b".into(),
            }],
            bridges: vec![BridgeState {
                name: "br0".into(),
                learn: true,
                age: 300,
                learn_limit: 100,
                flood: false,
                members: vec![MemberState {
                    iface: "c".into(),
                    vlan: None,
                    trunk: vec![10, 20],
                }],
                static_macs: vec![StaticMacState {
                    mac: "02:00:00:00:00:01".into(),
                    vlan: 10,
                    iface: "c".into(),
                }],
            }],
        };
        save(&p, &s).unwrap();
        assert_eq!(load(&p), Ok(Some(s)));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn corrupt_or_foreign_files_are_refused_and_left_alone() {
        let d = tmpdir("bad");
        let p = d.join("state.json");
        std::fs::write(&p, "{\"version\": 1, \"interfaces\": [").unwrap();
        assert!(load(&p).unwrap_err().contains("not a valid state file"));
        std::fs::write(&p, "{\"version\": 7}").unwrap();
        assert!(load(&p).unwrap_err().contains("version 7"));
        std::fs::write(&p, "{\"version\": 1, \"routes\": []}").unwrap();
        assert!(load(&p).unwrap_err().contains("unknown field"));
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"version\": 1, \"routes\": []}"
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}
