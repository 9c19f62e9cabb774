//! The desired state: what vswitchd restores at start.
//!
//! Two files: the snapshot (`state.json`, the whole state, written atomically: temp file,
//! fsync, rename, fsync of the directory) and its journal (`state.json.journal`): every
//! transaction applied since the snapshot, appended and fsync'd before it is applied (and
//! so before the caller is answered); a transaction that could not be applied after all is
//! taken back out. A change costs one small append, however big the state is; when the journal
//! outgrows the snapshot and holds much more than the state (Store::wants_snapshot), a new
//! snapshot is written and the journal emptied. At start the
//! snapshot is restored and the journal replayed (records at or below the snapshot's `seq`
//! are already in it: a crash between the two steps of compaction loses nothing).
//!
//! Both files, the snapshot's temporary file and the `.unrestored` copies are created with
//! mode 0640 (less if the umask says so): they hold the whole configuration, which is not
//! for every local user. Files are created with that mode, never chmod'ed after being
//! written. Files of an older vswitchd (0644) are not chmod'ed either: they are replaced,
//! since a start always ends by writing a new snapshot (a new file, renamed over the old
//! one) and emptying (removing) the journal.
//!
//! Journal record: u32 length (little endian), u32 CRC-32 of the payload, payload (protobuf
//! `JournalRecord`). A record cut short at the end of the file is a write that a crash
//! interrupted (its caller was never answered) and is ignored; any other damage, in either
//! file, stops vswitchd with a message and leaves the files as they are.
//!
//! A write that fails (a full disk, say) changes neither file: an append that fails is cut
//! off the journal again (its caller is told, and the transaction is not applied), and a
//! snapshot that fails removes its temp file and leaves the old snapshot and journal, which
//! still hold every change that was acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

/// The state file format's version. Version 1 files (one section per resource, each in
/// its own shape) are still read: see state_v1.rs.
pub const STATE_VERSION: u32 = 2;

/// A snapshot: the changes that build the desired state from an empty switch (the
/// journal's schema: restore is replay), and the last journal record it includes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub seq: u64,
    pub changes: Vec<C>,
}

/// The state file (version 2): the snapshot's changes grouped by kind, one section per kind
/// in replay order, each a list of that change's requests (`"interfaces": [{"name": "a",
/// "type": "af_packet", "args": {...}}, ...]`). Read and written as typed data, streamed:
/// a million entries never become a tree of JSON values. A new resource adds its section
/// here, in [`FileOut`] and in the two conversions below.
///
/// Tunnels start from the addresses of interfaces, and interface settings, members, static
/// MACs and addresses can be a tunnel's: the `tunnel_*` sections come after `addresses`
/// and hold those of tunnels (the sections before hold the rest). A file without tunnels
/// has none of them, and reads as before (the version stays 2; a vswitchd older than
/// tunnels refuses a file with them rather than drop them). ACLs and their bindings come
/// last (`acls`, `acl_bindings`: bindings need interfaces, tunnels and ACLs), the same way;
/// then the session table's settings (`session_config`); then services (`services`: their
/// backends must be reachable by the routes before them), masquerading interfaces
/// (`masquerade`) and port mappings (`portmaps`).
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    #[allow(dead_code)]
    version: u32,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    vrfs: Vec<pb::AddVrfRequest>,
    #[serde(default)]
    interfaces: Vec<pb::AddInterfaceRequest>,
    #[serde(default)]
    interface_settings: Vec<pb::SetInterfaceRequest>,
    #[serde(default)]
    xconnects: Vec<pb::AddXconnectRequest>,
    #[serde(default)]
    bridges: Vec<pb::AddBridgeRequest>,
    #[serde(default)]
    bridge_members: Vec<pb::AttachBridgeRequest>,
    #[serde(default)]
    static_macs: Vec<pb::AddFdbRequest>,
    #[serde(default)]
    addresses: Vec<pb::AddAddressRequest>,
    #[serde(default)]
    tunnels: Vec<pb::AddTunnelRequest>,
    #[serde(default)]
    tunnel_settings: Vec<pb::SetInterfaceRequest>,
    #[serde(default)]
    tunnel_members: Vec<pb::AttachBridgeRequest>,
    #[serde(default)]
    tunnel_static_macs: Vec<pb::AddFdbRequest>,
    #[serde(default)]
    tunnel_fdb: Vec<pb::AddTunnelFdbRequest>,
    #[serde(default)]
    tunnel_addresses: Vec<pb::AddAddressRequest>,
    #[serde(default)]
    routes: Vec<pb::AddRouteRequest>,
    #[serde(default)]
    neighbors: Vec<pb::AddNeighborRequest>,
    #[serde(default)]
    proxy_arp: Vec<pb::SetProxyArpRequest>,
    #[serde(default)]
    neighbor_config: Vec<pb::SetNeighborConfigRequest>,
    #[serde(default)]
    acls: Vec<pb::AddAclRequest>,
    #[serde(default)]
    acl_bindings: Vec<pb::BindAclRequest>,
    #[serde(default)]
    session_config: Vec<pb::SetSessionConfigRequest>,
    #[serde(default)]
    services: Vec<pb::AddServiceRequest>,
    #[serde(default)]
    masquerade: Vec<pb::SetMasqueradeRequest>,
    #[serde(default)]
    portmaps: Vec<pb::AddPortMapRequest>,
}

/// [`FileIn`], borrowed from a snapshot's changes for writing.
#[derive(Default, serde::Serialize)]
struct FileOut<'a> {
    version: u32,
    seq: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vrfs: Vec<&'a pb::AddVrfRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<&'a pb::AddInterfaceRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interface_settings: Vec<&'a pb::SetInterfaceRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    xconnects: Vec<&'a pb::AddXconnectRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bridges: Vec<&'a pb::AddBridgeRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bridge_members: Vec<&'a pb::AttachBridgeRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    static_macs: Vec<&'a pb::AddFdbRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    addresses: Vec<&'a pb::AddAddressRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tunnels: Vec<&'a pb::AddTunnelRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tunnel_settings: Vec<&'a pb::SetInterfaceRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tunnel_members: Vec<&'a pb::AttachBridgeRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tunnel_static_macs: Vec<&'a pb::AddFdbRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tunnel_fdb: Vec<&'a pb::AddTunnelFdbRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tunnel_addresses: Vec<&'a pb::AddAddressRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<&'a pb::AddRouteRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    neighbors: Vec<&'a pb::AddNeighborRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    proxy_arp: Vec<&'a pb::SetProxyArpRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    neighbor_config: Vec<&'a pb::SetNeighborConfigRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    acls: Vec<&'a pb::AddAclRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    acl_bindings: Vec<&'a pb::BindAclRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    session_config: Vec<&'a pb::SetSessionConfigRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    services: Vec<&'a pb::AddServiceRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    masquerade: Vec<&'a pb::SetMasqueradeRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    portmaps: Vec<&'a pb::AddPortMapRequest>,
}

impl<'a> FileOut<'a> {
    fn new(s: &'a Snapshot) -> Result<FileOut<'a>, String> {
        let mut f = FileOut {
            version: STATE_VERSION,
            seq: s.seq,
            ..FileOut::default()
        };
        // Tunnels come before what is theirs (Model::changes' order).
        let mut tunnels = std::collections::HashSet::new();
        for c in &s.changes {
            match c {
                C::AddInterface(r) => f.interfaces.push(r),
                C::SetInterface(r) if tunnels.contains(r.name.as_str()) => {
                    f.tunnel_settings.push(r)
                }
                C::SetInterface(r) => f.interface_settings.push(r),
                C::AddXconnect(r) => f.xconnects.push(r),
                C::AddBridge(r) => f.bridges.push(r),
                C::AttachBridge(r) if tunnels.contains(r.iface.as_str()) => {
                    f.tunnel_members.push(r)
                }
                C::AttachBridge(r) => f.bridge_members.push(r),
                C::AddFdb(r) if tunnels.contains(r.iface.as_str()) => f.tunnel_static_macs.push(r),
                C::AddFdb(r) => f.static_macs.push(r),
                C::AddVrf(r) => f.vrfs.push(r),
                C::AddAddress(r) if tunnels.contains(r.iface.as_str()) => {
                    f.tunnel_addresses.push(r)
                }
                C::AddAddress(r) => f.addresses.push(r),
                C::AddTunnel(r) => {
                    tunnels.insert(r.name.as_str());
                    f.tunnels.push(r)
                }
                C::AddTunnelFdb(r) => f.tunnel_fdb.push(r),
                C::AddRoute(r) => f.routes.push(r),
                C::AddNeighbor(r) => f.neighbors.push(r),
                C::SetProxyArp(r) => f.proxy_arp.push(r),
                C::SetNeighborConfig(r) => f.neighbor_config.push(r),
                C::AddAcl(r) => f.acls.push(r),
                C::BindAcl(r) => f.acl_bindings.push(r),
                C::SetSessionConfig(r) => f.session_config.push(r),
                C::AddService(r) => f.services.push(r),
                C::SetMasquerade(r) => f.masquerade.push(r),
                C::AddPortMap(r) => f.portmaps.push(r),
                other => {
                    return Err(format!(
                        "cannot encode state: {} is not part of a snapshot",
                        crate::model::change_name(other)
                    ))
                }
            }
        }
        Ok(f)
    }
}

impl FileIn {
    fn into_snapshot(self) -> Snapshot {
        let changes = (self.vrfs.into_iter().map(C::AddVrf))
            .chain(self.interfaces.into_iter().map(C::AddInterface))
            .chain(self.interface_settings.into_iter().map(C::SetInterface))
            .chain(self.xconnects.into_iter().map(C::AddXconnect))
            .chain(self.bridges.into_iter().map(C::AddBridge))
            .chain(self.bridge_members.into_iter().map(C::AttachBridge))
            .chain(self.static_macs.into_iter().map(C::AddFdb))
            .chain(self.addresses.into_iter().map(C::AddAddress))
            .chain(self.tunnels.into_iter().map(C::AddTunnel))
            .chain(self.tunnel_settings.into_iter().map(C::SetInterface))
            .chain(self.tunnel_members.into_iter().map(C::AttachBridge))
            .chain(self.tunnel_static_macs.into_iter().map(C::AddFdb))
            .chain(self.tunnel_fdb.into_iter().map(C::AddTunnelFdb))
            .chain(self.tunnel_addresses.into_iter().map(C::AddAddress))
            .chain(self.routes.into_iter().map(C::AddRoute))
            .chain(self.neighbors.into_iter().map(C::AddNeighbor))
            .chain(self.proxy_arp.into_iter().map(C::SetProxyArp))
            .chain(self.neighbor_config.into_iter().map(C::SetNeighborConfig))
            .chain(self.acls.into_iter().map(C::AddAcl))
            .chain(self.acl_bindings.into_iter().map(C::BindAcl))
            .chain(self.session_config.into_iter().map(C::SetSessionConfig))
            .chain(self.services.into_iter().map(C::AddService))
            .chain(self.masquerade.into_iter().map(C::SetMasquerade))
            .chain(self.portmaps.into_iter().map(C::AddPortMap))
            .collect();
        Snapshot {
            seq: self.seq,
            changes,
        }
    }
}

/// Writes the JSON text of a snapshot to `w` (pretty, ending in a newline).
pub fn encode_to(s: &Snapshot, mut w: impl Write) -> Result<(), String> {
    let f = FileOut::new(s)?;
    serde_json::to_writer_pretty(&mut w, &f).map_err(|e| format!("cannot encode state: {e}"))?;
    w.write_all(b"\n")
        .map_err(|e| format!("cannot encode state: {e}"))
}

/// The JSON text of a snapshot.
pub fn encode(s: &Snapshot) -> Result<String, String> {
    let mut out = Vec::new();
    encode_to(s, &mut out)?;
    String::from_utf8(out).map_err(|e| format!("cannot encode state: {e}"))
}

/// Why a snapshot's text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A version this vswitchd does not read.
    Version(u64),
    /// Not a snapshot: what is wrong.
    Invalid(String),
}

/// A snapshot from its JSON text (version 2, or version 1 converted); the error says what
/// is wrong (the caller names the file).
pub fn decode(text: &str) -> Result<Snapshot, DecodeError> {
    /// The version alone (the rest is skipped, not kept).
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(default)]
        version: u64,
    }
    let invalid = |e: serde_json::Error| DecodeError::Invalid(e.to_string());
    let v: Version = serde_json::from_str(text).map_err(invalid)?;
    match v.version {
        1 => crate::state_v1::convert(text).map_err(DecodeError::Invalid),
        2 => Ok(serde_json::from_str::<FileIn>(text)
            .map_err(invalid)?
            .into_snapshot()),
        v => Err(DecodeError::Version(v)),
    }
}

/// The mode of every file written here (owner read-write, group read).
pub const FILE_MODE: u32 = 0o640;

/// Creates `path` afresh with [`FILE_MODE`] (a file left there, say by a crash, is removed
/// first: opening it would keep its mode).
fn create_private(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Reads a state (or config) file. Ok(None) when it does not exist; an error that names
/// the file and the problem when it cannot be read, does not parse, or has another version.
pub fn load(path: &Path) -> Result<Option<Snapshot>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    match decode(&text) {
        Ok(s) => Ok(Some(s)),
        Err(DecodeError::Version(v)) => Err(format!(
            "{} has state version {v}, this vswitchd reads version {STATE_VERSION} (and \
             converts version 1)",
            path.display()
        )),
        Err(DecodeError::Invalid(e)) => {
            Err(format!("{} is not a valid state file: {e}", path.display()))
        }
    }
}

/// Writes `state` to `path` atomically: readers see the old file or the new one, never a
/// mix, and after a crash one of them survives. Returns the bytes written.
pub fn save(path: &Path, state: &Snapshot) -> Result<u64, String> {
    save_with(path, state, &open_file)
}

/// [`save`], opening the temp file with `open`. On failure the temp file is removed and
/// `path` is as it was.
fn save_with(path: &Path, state: &Snapshot, open: &OpenFn) -> Result<u64, String> {
    let err = |e: io::Error| format!("cannot write state file {}: {e}", path.display());
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
    let mut bytes = 0;
    let written = open(&tmp, Open::Create).and_then(|f| {
        let mut w = io::BufWriter::with_capacity(1 << 20, Counted { inner: f, bytes: 0 });
        encode_to(state, &mut w).map_err(io::Error::other)?;
        let mut c = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        c.inner.sync()?;
        bytes = c.bytes;
        drop(c);
        std::fs::rename(&tmp, path)
    });
    if let Err(e) = written {
        // Nothing half-written stays beside the state file.
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(bytes)
}

/// A writer that counts the bytes it passes on.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How the store opens a file: the journal for appending, a snapshot's temp file created
/// empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Append,
    Create,
}

/// A file the store writes: a real one, or in tests one on a disk that fills up.
trait StoreFile: Write + Send {
    /// Makes the data written so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
}

impl StoreFile for std::fs::File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.metadata().map(|m| m.len())
    }
}

/// Opens a file for the store.
type OpenFn = dyn Fn(&Path, Open) -> io::Result<Box<dyn StoreFile>> + Send + Sync;

/// Opens a real file, with [`FILE_MODE`] when it is created: the journal for appending, a
/// temp file afresh.
fn open_real(path: &Path, how: Open) -> io::Result<File> {
    match how {
        Open::Append => OpenOptions::new()
            .create(true)
            .append(true)
            .mode(FILE_MODE)
            .open(path),
        Open::Create => create_private(path),
    }
}

/// Opens a real file for the store.
fn open_file(path: &Path, how: Open) -> io::Result<Box<dyn StoreFile>> {
    Ok(Box::new(open_real(path, how)?))
}

/// One journal record: a transaction as it was applied.
#[derive(Clone, PartialEq, prost::Message)]
pub struct JournalRecord {
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    #[prost(message, repeated, tag = "2")]
    pub changes: Vec<pb::Change>,
}

/// A journal record of `changes` numbered `seq`: length, CRC and a [`JournalRecord`]
/// payload, encoded field by field from the changes as they are (a million of them are not
/// copied first).
fn record<'a>(seq: u64, changes: impl Iterator<Item = &'a pb::Change>) -> Vec<u8> {
    use prost::encoding::{message, uint64};
    let mut buf = vec![0; 8];
    uint64::encode(1, &seq, &mut buf);
    for c in changes {
        message::encode(2, c, &mut buf);
    }
    let len = (buf.len() - 8) as u32;
    let crc = crc32fast::hash(&buf[8..]);
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// The journal of `path` (the state file).
pub fn journal_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".journal");
    PathBuf::from(p)
}

/// A journal as read: the transactions after the snapshot, and the last record's number.
pub type Journal = (Vec<Vec<pb::Change>>, u64);

/// Reads a journal: the changes of every record after `after`, in order, and the last
/// record number seen (`after` if none). A record cut short at the end is ignored (with a
/// warning).
pub fn load_journal(path: &Path, after: u64) -> Result<Journal, String> {
    let jpath = journal_path(path);
    let mut bytes = Vec::new();
    match File::open(&jpath) {
        Ok(mut f) => f
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", jpath.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), after)),
        Err(e) => return Err(format!("cannot read {}: {e}", jpath.display())),
    };
    parse_journal(&bytes, after, &jpath)
}

/// A journal's records from its bytes (`jpath` names the file in errors): see
/// [`load_journal`]. Reads nothing past `bytes`, whatever the length fields say.
fn parse_journal(bytes: &[u8], after: u64, jpath: &Path) -> Result<Journal, String> {
    let bad = |at: usize, what: &str| {
        format!(
            "{} is damaged at byte {at}: {what} (the file is left as it is; move it away, or \
             start with --reset-state to start empty)",
            jpath.display()
        )
    };
    let mut out = Vec::new();
    let mut at = 0;
    let mut last = after;
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + 8) else {
            tracing::warn!(file = %jpath.display(), at, "ignoring a journal record cut short at the end (interrupted write)");
            break;
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            tracing::warn!(file = %jpath.display(), at, "ignoring a journal record cut short at the end (interrupted write)");
            break;
        };
        if crc32fast::hash(payload) != crc {
            return Err(bad(at, "checksum mismatch"));
        }
        let rec = <JournalRecord as prost::Message>::decode(payload)
            .map_err(|e| bad(at, &format!("undecodable record: {e}")))?;
        if rec.seq > after {
            if rec.seq <= last {
                return Err(bad(at, "records out of order"));
            }
            last = rec.seq;
            out.push(rec.changes);
        }
        at += 8 + len;
    }
    Ok((out, last))
}

/// The state file and its journal, as vswitchd writes them.
///
/// Thread safety: owned by the `Switch`, so used under the switch's lock only.
pub struct Store {
    path: PathBuf,
    journal: Option<Box<dyn StoreFile>>,
    seq: u64,
    /// The journal's length up to its last good record (u64::MAX: not opened yet).
    journal_bytes: u64,
    /// Where the last record appended starts and its weight, while it may still be
    /// retracted.
    last_start: Option<(u64, u64)>,
    /// The weight of the records appended since the last snapshot: their changes, plus
    /// [`RECORD_WEIGHT`] per record.
    journal_weight: u64,
    /// The journal file may hold bytes after `journal_bytes` (a failed write that could not
    /// be cut off): they are cut off before anything else is appended.
    torn: bool,
    snapshot_bytes: u64,
    /// No compaction before the journal reaches this size (set after a compaction failed).
    compact_at: u64,
    open: Arc<OpenFn>,
}

/// A journal is compacted once it is larger than this and than the snapshot, and weighs more
/// than twice the state (see [`Store::wants_snapshot`]).
const MIN_COMPACT_BYTES: u64 = 4 << 20;

/// What a journal record weighs beside its changes: a record is replayed as a transaction,
/// whose fixed cost is that of several changes.
const RECORD_WEIGHT: u64 = 16;

impl Store {
    /// A store for `path`, continuing after journal record `seq` (the snapshot's plus the
    /// records replayed).
    pub fn new(path: &Path, seq: u64) -> Store {
        Store::with_opener(path, seq, Arc::new(open_file))
    }

    fn with_opener(path: &Path, seq: u64, open: Arc<OpenFn>) -> Store {
        Store {
            path: path.to_path_buf(),
            journal: None,
            seq,
            journal_bytes: u64::MAX,
            last_start: None,
            journal_weight: 0,
            torn: false,
            snapshot_bytes: 0,
            compact_at: 0,
            open,
        }
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one transaction (its persistent changes) and syncs it to disk. Returns
    /// whether a record was written (a transaction of flushes only changes no desired
    /// state). On error the journal is as it was before the call.
    pub fn append(&mut self, changes: &[pb::Change]) -> Result<bool, String> {
        self.last_start = None;
        let persistent = |c: &&pb::Change| {
            c.change
                .as_ref()
                .is_some_and(|c| !crate::model::is_action(c))
        };
        if !changes.iter().any(|c| persistent(&c)) {
            return Ok(false);
        }
        let jpath = journal_path(&self.path);
        let err = |e: io::Error| format!("cannot append to {}: {e}", jpath.display());
        let f = match self.journal.take() {
            Some(f) => f,
            None => {
                let f = (self.open)(&jpath, Open::Append).map_err(err)?;
                self.journal_bytes = f.size().map_err(err)?;
                f
            }
        };
        let f = self.journal.insert(f);
        if self.torn {
            f.truncate(self.journal_bytes).map_err(|e| {
                format!(
                    "cannot append to {}: it ends in a failed write that cannot be cut off: {e}",
                    jpath.display()
                )
            })?;
            self.torn = false;
        }
        let weight = changes.iter().filter(persistent).count() as u64 + RECORD_WEIGHT;
        let buf = record(self.seq + 1, changes.iter().filter(persistent));
        if let Err(e) = f.write_all(&buf).and_then(|()| f.sync()) {
            // Part of the record may be in the file: cut it off, so that the next record
            // follows the last good one (or a crash finds the journal as it was).
            self.cut_back();
            return Err(err(e));
        }
        self.last_start = Some((self.journal_bytes, weight));
        self.journal_weight += weight;
        self.seq += 1;
        self.journal_bytes += buf.len() as u64;
        Ok(true)
    }

    /// Takes back the record the last `append` wrote: the transaction it holds could not be
    /// applied after all. Ok if there is none.
    pub fn retract_last(&mut self) -> Result<(), String> {
        let Some((start, weight)) = self.last_start.take() else {
            return Ok(());
        };
        self.journal_weight -= weight;
        self.seq -= 1;
        self.journal_bytes = start;
        if self.cut_back() {
            Ok(())
        } else {
            Err(format!(
                "cannot remove a refused transaction from {}; it is cut off before the next \
                 append",
                journal_path(&self.path).display()
            ))
        }
    }

    /// Cuts the journal back to `journal_bytes` (and syncs). If that fails, the next append
    /// tries again first (`torn`). Returns whether it succeeded.
    fn cut_back(&mut self) -> bool {
        let len = self.journal_bytes;
        let cut = self
            .journal
            .as_mut()
            .map(|f| f.truncate(len).and_then(|()| f.sync()));
        match cut {
            Some(Ok(())) | None => true,
            Some(Err(e)) => {
                tracing::error!(
                    file = %journal_path(&self.path).display(),
                    "cannot cut a failed write off the journal: {e}"
                );
                self.torn = true;
                false
            }
        }
    }

    /// Keeps a copy of the state file and journal as they are now, beside them, as
    /// `<state file>.unrestored` (and `.journal.unrestored`). Used before a snapshot that
    /// would drop objects which could not be restored at start (an af_packet interface
    /// whose Linux interface is not there yet, say), so that nothing configured is lost.
    pub fn keep_copy(&self) -> Result<PathBuf, String> {
        let copy = |from: &Path| -> Result<PathBuf, String> {
            let mut to = from.as_os_str().to_owned();
            to.push(".unrestored");
            let to = PathBuf::from(to);
            let copied = File::open(from).and_then(|mut src| {
                let mut dst = create_private(&to)?;
                std::io::copy(&mut src, &mut dst)?;
                dst.sync_all()
            });
            match copied {
                Ok(()) => Ok(to),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(to),
                Err(e) => Err(format!(
                    "cannot copy {} to {}: {e}",
                    from.display(),
                    to.display()
                )),
            }
        };
        copy(&journal_path(&self.path))?;
        copy(&self.path)
    }

    /// Whether the journal has grown enough to be folded into a new snapshot of a state of
    /// `objects` objects: it is larger than the snapshot (and than 4 MiB), and its records
    /// weigh more than twice the state (changes, plus [`RECORD_WEIGHT`] per record), so
    /// that the snapshot replaces much more than it holds. A compaction, whose cost is the
    /// state's, so follows changes that cost at least as much to journal. A transaction
    /// that loads a million routes into an empty switch is not followed by a snapshot of
    /// them (which would take longer than the transaction); deleting them again is, and so
    /// is a million small transactions.
    pub fn wants_snapshot(&self, objects: usize) -> bool {
        self.journal_bytes != u64::MAX
            && self.journal_bytes > MIN_COMPACT_BYTES.max(self.snapshot_bytes)
            && self.journal_bytes >= self.compact_at
            && self.journal_weight > 2 * objects as u64
    }

    /// Writes `state` as the new snapshot, then empties the journal. If the snapshot cannot
    /// be written, the old snapshot and journal stay as they were (they hold every change
    /// appended), and the next compaction waits for the journal to grow further.
    pub fn snapshot(&mut self, mut state: Snapshot) -> Result<(), String> {
        state.seq = self.seq;
        self.snapshot_bytes = match save_with(&self.path, &state, &*self.open) {
            Ok(n) => n,
            Err(e) => {
                if self.journal_bytes != u64::MAX {
                    self.compact_at = self.journal_bytes.saturating_add(MIN_COMPACT_BYTES);
                }
                return Err(e);
            }
        };
        self.last_start = None;
        self.compact_at = 0;
        let jpath = journal_path(&self.path);
        match std::fs::remove_file(&jpath) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // The snapshot holds every record of the journal: appending to it still works.
            Err(e) => return Err(format!("cannot remove {}: {e}", jpath.display())),
        }
        self.journal = None;
        self.torn = false;
        self.journal_bytes = 0;
        self.journal_weight = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

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
        let s = sample();
        save(&p, &s).unwrap();
        assert_eq!(load(&p), Ok(Some(s)));
        std::fs::remove_dir_all(d).unwrap();
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Nothing written is readable by others or writable by the group (0640 under the
    /// usual umask), even where an older, world-readable file was.
    #[test]
    fn files_are_not_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let d = tmpdir("mode");
        let p = d.join("state.json");
        let tmp = d.join(".state.json.tmp");
        let world = std::fs::Permissions::from_mode(0o644);
        for f in [&p, &tmp] {
            std::fs::write(f, "{}").unwrap();
            std::fs::set_permissions(f, world.clone()).unwrap();
        }
        let mut store = Store::new(&p, 0);
        store.snapshot(empty()).unwrap();
        store.append(&[fdb_change("02:00:00:00:00:01")]).unwrap();
        let copy = store.keep_copy().unwrap();
        let mut journal_copy = journal_path(&p).into_os_string();
        journal_copy.push(".unrestored");
        for f in [p.clone(), journal_path(&p), copy, journal_copy.into()] {
            let m = mode(&f);
            assert_eq!(m & !FILE_MODE, 0, "{} has mode {m:o}", f.display());
        }
        assert!(!tmp.exists());
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

    fn fdb_change(mac: &str) -> pb::Change {
        pb::Change {
            change: Some(pb::change::Change::AddFdb(pb::AddFdbRequest {
                bridge: "br0".into(),
                mac: mac.into(),
                iface: "a".into(),
                vlan: 0,
                remote: String::new(),
            })),
        }
    }

    fn empty() -> Snapshot {
        Snapshot::default()
    }

    /// A record encoded change by change is the derived encoding of its JournalRecord.
    #[test]
    fn a_record_is_a_journal_record_encoded() {
        let changes = vec![
            fdb_change("02:00:00:00:00:01"),
            fdb_change("02:00:00:00:00:02"),
        ];
        let buf = record(7, changes.iter());
        let payload = prost::Message::encode_to_vec(&JournalRecord { seq: 7, changes });
        assert_eq!(&buf[8..], &payload[..]);
        assert_eq!(buf[..4], (payload.len() as u32).to_le_bytes());
        assert_eq!(buf[4..8], crc32fast::hash(&payload).to_le_bytes());
    }

    #[test]
    fn journal_records_come_back_in_order_and_a_snapshot_empties_it() {
        let d = tmpdir("journal");
        let p = d.join("state.json");
        let mut store = Store::new(&p, 0);
        store.snapshot(empty()).unwrap();
        store.append(&[fdb_change("02:00:00:00:00:01")]).unwrap();
        store
            .append(&[
                fdb_change("02:00:00:00:00:02"),
                fdb_change("02:00:00:00:00:03"),
            ])
            .unwrap();
        // A flush changes no desired state: nothing is written.
        let flush = pb::Change {
            change: Some(pb::change::Change::FlushFdb(pb::FlushFdbRequest::default())),
        };
        store.append(&[flush]).unwrap();
        let (txns, last) = load_journal(&p, 0).unwrap();
        assert_eq!(last, 2);
        assert_eq!(txns.len(), 2);
        assert_eq!(txns[1].len(), 2);
        assert_eq!(txns[0][0], fdb_change("02:00:00:00:00:01"));
        // Records already in the snapshot are skipped.
        assert_eq!(load_journal(&p, 1).unwrap().0.len(), 1);
        store.snapshot(empty()).unwrap();
        assert_eq!(load(&p).unwrap().unwrap().seq, 2);
        assert!(!journal_path(&p).exists());
        store.append(&[fdb_change("02:00:00:00:00:04")]).unwrap();
        let (txns, last) = load_journal(&p, 2).unwrap();
        assert_eq!((txns.len(), last), (1, 3));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_record_cut_short_at_the_end_is_ignored_but_damage_is_refused() {
        let d = tmpdir("torn");
        let p = d.join("state.json");
        let mut store = Store::new(&p, 0);
        store.append(&[fdb_change("02:00:00:00:00:01")]).unwrap();
        store.append(&[fdb_change("02:00:00:00:00:02")]).unwrap();
        let j = journal_path(&p);
        let whole = std::fs::read(&j).unwrap();
        // Interrupted write of the second record: only the first counts.
        std::fs::write(&j, &whole[..whole.len() - 3]).unwrap();
        assert_eq!(load_journal(&p, 0).unwrap().0.len(), 1);
        std::fs::write(&j, &whole[..whole.len() / 2 + 2]).unwrap();
        assert!(load_journal(&p, 0).is_ok());
        // A flipped byte inside the first record: refused, file untouched.
        let mut bad = whole.clone();
        bad[12] ^= 0x40;
        std::fs::write(&j, &bad).unwrap();
        let e = load_journal(&p, 0).unwrap_err();
        assert!(e.contains("damaged at byte 0: checksum mismatch"), "{e}");
        assert_eq!(std::fs::read(&j).unwrap(), bad);
        std::fs::remove_dir_all(d).unwrap();
    }

    /// A snapshot with a change of every kind a snapshot holds, in replay order.
    fn sample() -> Snapshot {
        Snapshot {
            seq: 3,
            changes: vec![
                C::AddVrf(pb::AddVrfRequest { id: 5 }),
                C::AddInterface(pb::AddInterfaceRequest {
                    name: "a".into(),
                    r#type: "af_packet".into(),
                    args: [("iface".to_string(), "veth0".to_string())].into(),
                    vrf: None,
                    attachment: None,
                }),
                C::SetInterface(pb::SetInterfaceRequest {
                    name: "a".into(),
                    admin_up: Some(false),
                    mtu: None,
                    vrf: None,
                }),
                C::AddXconnect(pb::AddXconnectRequest {
                    iface_a: "a".into(),
                    iface_b: "b".into(),
                }),
                C::AddBridge(pb::AddBridgeRequest {
                    name: "br0".into(),
                    learn: Some(true),
                    age: Some(300),
                    learn_limit: Some(100),
                    flood: Some(false),
                    vrf: None,
                }),
                C::AttachBridge(pb::AttachBridgeRequest {
                    bridge: "br0".into(),
                    iface: "c".into(),
                    vlan: None,
                    trunk: vec![10, 20],
                }),
                C::AddFdb(pb::AddFdbRequest {
                    bridge: "br0".into(),
                    mac: "02:00:00:00:00:01".into(),
                    iface: "c".into(),
                    vlan: 10,
                    remote: String::new(),
                }),
                C::AddAddress(pb::AddAddressRequest {
                    iface: "bvi:br0".into(),
                    address: "10.0.0.1/24".into(),
                }),
                C::AddRoute(pb::AddRouteRequest {
                    prefix: "10.1.0.0/16".into(),
                    vrf: 0,
                    nexthops: vec![pb::NextHop {
                        via: "10.0.0.2".into(),
                        iface: String::new(),
                    }],
                    onlink: false,
                }),
                C::AddNeighbor(pb::AddNeighborRequest {
                    iface: "bvi:br0".into(),
                    ip: "10.0.0.2".into(),
                    mac: "02:00:00:00:00:02".into(),
                }),
                C::SetProxyArp(pb::SetProxyArpRequest {
                    iface: "bvi:br0".into(),
                    on: true,
                }),
                C::SetNeighborConfig(pb::SetNeighborConfigRequest {
                    limit: Some(1000),
                    age: Some(60),
                }),
                C::AddService(pb::AddServiceRequest {
                    name: "web".into(),
                    vip: "10.96.0.10".into(),
                    port: 80,
                    proto: "tcp".into(),
                    backends: vec![pb::Backend {
                        ip: "10.1.0.5".into(),
                        port: 8080,
                        weight: Some(2),
                    }],
                    nodeport: Some(30080),
                    affinity: "client-ip".into(),
                    vrf: 0,
                }),
                C::SetMasquerade(pb::SetMasqueradeRequest {
                    iface: "bvi:br0".into(),
                    on: true,
                }),
                C::AddPortMap(pb::AddPortMapRequest {
                    iface: "bvi:br0".into(),
                    proto: "udp".into(),
                    port: 53,
                    to_ip: "10.1.0.6".into(),
                    to_port: 5353,
                }),
            ],
        }
    }

    fn sample_snapshot() -> String {
        encode(&sample()).unwrap()
    }

    fn sample_journal() -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for seq in 1..=3u64 {
            let rec = JournalRecord {
                seq,
                changes: vec![fdb_change(&format!("02:00:00:00:00:0{seq}"))],
            };
            let payload = prost::Message::encode_to_vec(&rec);
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
            ends.push(bytes.len());
        }
        (bytes, ends)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any bytes as a state file: read or refused with a message, never a panic.
        #[test]
        fn any_bytes_as_a_snapshot_are_refused_never_a_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)
        ) {
            let _ = decode(&String::from_utf8_lossy(&bytes));
        }

        /// A good snapshot with one byte changed or cut short anywhere: never a panic; cut
        /// short, always refused.
        #[test]
        fn a_damaged_or_cut_snapshot_is_refused_never_a_panic(
            at in 0usize..10_000, byte in proptest::prelude::any::<u8>()
        ) {
            let text = sample_snapshot();
            // Cut before the closing brace (the text ends in "}\n").
            let at = at % text.trim_end().len();
            proptest::prop_assert!(decode(&text[..at]).is_err());
            let mut bytes = text.into_bytes();
            bytes[at] = byte;
            let _ = decode(&String::from_utf8_lossy(&bytes));
        }

        /// Any bytes as a journal: records, or an error, never a panic or a read past the
        /// end (the length fields are not trusted).
        #[test]
        fn any_bytes_as_a_journal_are_refused_never_a_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            after in 0u64..4
        ) {
            let _ = parse_journal(&bytes, after, Path::new("j"));
        }

        /// A journal cut anywhere gives exactly the records wholly before the cut (an
        /// interrupted write), in order.
        #[test]
        fn a_journal_cut_anywhere_gives_the_records_before_the_cut(cut in 0usize..10_000) {
            let (bytes, ends) = sample_journal();
            let cut = cut % (bytes.len() + 1);
            let (txns, last) = parse_journal(&bytes[..cut], 0, Path::new("j")).unwrap();
            let whole = ends.iter().filter(|e| **e <= cut).count();
            proptest::prop_assert_eq!(txns.len(), whole);
            proptest::prop_assert_eq!(last, whole as u64);
        }

        /// One byte of a journal changed: the checksum (or the header) catches it, or the
        /// record read is the one written; never a panic.
        #[test]
        fn a_journal_with_a_changed_byte_is_caught(at in 0usize..10_000, flip in 1u8..=255) {
            let (mut bytes, _) = sample_journal();
            let at = at % bytes.len();
            bytes[at] ^= flip;
            if let Ok((txns, _)) = parse_journal(&bytes, 0, Path::new("j")) {
                let (good, _) = sample_journal();
                let (want, _) = parse_journal(&good, 0, Path::new("j")).unwrap();
                // Only a cut-short read (a length made longer) may succeed: a prefix.
                proptest::prop_assert!(txns.len() < want.len());
                proptest::prop_assert_eq!(&txns[..], &want[..txns.len()]);
            }
        }
    }

    /// A disk with room for `left` more bytes, shared by every file opened through it (a
    /// cut gives room back), whose syncs fail while `sync_fails` is set.
    #[derive(Default)]
    struct SmallDisk {
        left: AtomicU64,
        sync_fails: AtomicBool,
    }

    struct SmallFile {
        file: std::fs::File,
        disk: Arc<SmallDisk>,
    }

    fn enospc() -> io::Error {
        io::Error::from_raw_os_error(nix::errno::Errno::ENOSPC as i32)
    }

    impl Write for SmallFile {
        /// Writes what fits, like a real disk: a short write, then ENOSPC.
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let left = self.disk.left.load(SeqCst);
            if left == 0 && !buf.is_empty() {
                return Err(enospc());
            }
            let n = self.file.write(&buf[..buf.len().min(left as usize)])?;
            self.disk.left.fetch_sub(n as u64, SeqCst);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.file.flush()
        }
    }

    impl StoreFile for SmallFile {
        fn sync(&mut self) -> io::Result<()> {
            if self.disk.sync_fails.load(SeqCst) {
                return Err(io::Error::from_raw_os_error(nix::errno::Errno::EIO as i32));
            }
            self.file.sync_data()
        }
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            let before = self.file.size()?;
            self.file.set_len(len)?;
            self.disk.left.fetch_add(before.saturating_sub(len), SeqCst);
            Ok(())
        }
        fn size(&self) -> io::Result<u64> {
            self.file.size()
        }
    }

    /// A store for `p` on `disk`.
    fn small_store(p: &Path, disk: &Arc<SmallDisk>) -> Store {
        let disk = disk.clone();
        Store::with_opener(
            p,
            0,
            Arc::new(move |path: &Path, how: Open| {
                Ok(Box::new(SmallFile {
                    file: open_real(path, how)?,
                    disk: disk.clone(),
                }) as Box<dyn StoreFile>)
            }),
        )
    }

    fn set_room(disk: &SmallDisk, bytes: u64) {
        disk.left.store(bytes, SeqCst);
    }

    fn macs(txns: &[Vec<pb::Change>]) -> Vec<String> {
        txns.iter()
            .flatten()
            .filter_map(|c| match &c.change {
                Some(pb::change::Change::AddFdb(r)) => Some(r.mac.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_append_the_disk_has_no_room_for_fails_and_leaves_the_journal_as_it_was() {
        let d = tmpdir("full");
        let p = d.join("state.json");
        let disk = Arc::new(SmallDisk::default());
        set_room(&disk, 1000);
        let mut store = small_store(&p, &disk);
        let mut acked = Vec::new();
        let mut refused = 0;
        for n in 0..40 {
            let mac = format!("02:00:00:00:01:{n:02x}");
            let before = std::fs::read(journal_path(&p)).unwrap_or_default();
            match store.append(&[fdb_change(&mac)]) {
                Ok(written) => {
                    assert!(written);
                    acked.push(mac);
                }
                Err(e) => {
                    refused += 1;
                    assert!(e.contains("state.json.journal"), "{e}");
                    assert!(e.contains("No space left on device"), "{e}");
                    // Not a byte of the refused record stays in the file.
                    assert_eq!(std::fs::read(journal_path(&p)).unwrap(), before);
                }
            }
        }
        assert!(
            !acked.is_empty() && refused > 0,
            "{} {refused}",
            acked.len()
        );
        assert_eq!(macs(&load_journal(&p, 0).unwrap().0), acked);
        // Room again: the next record follows the last good one.
        set_room(&disk, 1 << 20);
        store.append(&[fdb_change("02:00:00:00:02:00")]).unwrap();
        acked.push("02:00:00:00:02:00".into());
        let (txns, last) = load_journal(&p, 0).unwrap();
        assert_eq!(macs(&txns), acked);
        assert_eq!(last, acked.len() as u64);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_append_whose_sync_fails_is_taken_back() {
        let d = tmpdir("sync");
        let p = d.join("state.json");
        let disk = Arc::new(SmallDisk::default());
        set_room(&disk, 1 << 20);
        let mut store = small_store(&p, &disk);
        store.append(&[fdb_change("02:00:00:00:00:01")]).unwrap();
        let before = std::fs::read(journal_path(&p)).unwrap();
        disk.sync_fails.store(true, SeqCst);
        let e = store
            .append(&[fdb_change("02:00:00:00:00:02")])
            .unwrap_err();
        assert!(e.contains("Input/output error"), "{e}");
        assert_eq!(std::fs::read(journal_path(&p)).unwrap(), before);
        disk.sync_fails.store(false, SeqCst);
        store.append(&[fdb_change("02:00:00:00:00:03")]).unwrap();
        let (txns, last) = load_journal(&p, 0).unwrap();
        assert_eq!(macs(&txns), ["02:00:00:00:00:01", "02:00:00:00:00:03"]);
        assert_eq!(last, 2);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_record_retracted_is_gone_and_its_number_reused() {
        let d = tmpdir("retract");
        let p = d.join("state.json");
        let mut store = Store::new(&p, 0);
        store.append(&[fdb_change("02:00:00:00:00:01")]).unwrap();
        store.append(&[fdb_change("02:00:00:00:00:02")]).unwrap();
        store.retract_last().unwrap();
        // Only the last record can be taken back, once.
        store.retract_last().unwrap();
        assert_eq!(macs(&load_journal(&p, 0).unwrap().0), ["02:00:00:00:00:01"]);
        store.append(&[fdb_change("02:00:00:00:00:03")]).unwrap();
        let (txns, last) = load_journal(&p, 0).unwrap();
        assert_eq!(macs(&txns), ["02:00:00:00:00:01", "02:00:00:00:00:03"]);
        assert_eq!(last, 2);
        // A transaction of flushes wrote nothing: retracting after it takes nothing back.
        let flush = pb::Change {
            change: Some(pb::change::Change::FlushFdb(pb::FlushFdbRequest::default())),
        };
        assert!(!store.append(&[flush]).unwrap());
        store.retract_last().unwrap();
        assert_eq!(load_journal(&p, 0).unwrap().0.len(), 2);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_snapshot_that_fails_keeps_the_old_files_and_leaves_no_temp_file() {
        let d = tmpdir("snapfull");
        let p = d.join("state.json");
        let disk = Arc::new(SmallDisk::default());
        set_room(&disk, 1 << 20);
        let mut store = small_store(&p, &disk);
        store.snapshot(empty()).unwrap();
        let snapshot = std::fs::read(&p).unwrap();
        store.append(&[fdb_change("02:00:00:00:00:01")]).unwrap();
        store.append(&[fdb_change("02:00:00:00:00:02")]).unwrap();
        let journal = std::fs::read(journal_path(&p)).unwrap();
        // The new snapshot needs more room than there is.
        set_room(&disk, 10);
        let big = Snapshot {
            seq: 0,
            changes: vec![C::AddBridge(pb::AddBridgeRequest {
                name: "br0".into(),
                ..Default::default()
            })],
        };
        let e = store.snapshot(big.clone()).unwrap_err();
        assert!(
            e.contains("cannot write state file") && e.contains("No space left"),
            "{e}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), snapshot);
        assert_eq!(std::fs::read(journal_path(&p)).unwrap(), journal);
        let left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!left.iter().any(|n| n.ends_with(".tmp")), "{left:?}");
        // What was acknowledged is all still there, and appending goes on.
        assert_eq!(load_journal(&p, 0).unwrap().0.len(), 2);
        set_room(&disk, 1 << 20);
        store.append(&[fdb_change("02:00:00:00:00:03")]).unwrap();
        assert_eq!(load_journal(&p, 0).unwrap().0.len(), 3);
        store.snapshot(big).unwrap();
        assert_eq!(load(&p).unwrap().unwrap().seq, 3);
        assert!(!journal_path(&p).exists());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_compaction_that_failed_waits_for_the_journal_to_grow_again() {
        let d = tmpdir("compact");
        let p = d.join("state.json");
        let disk = Arc::new(SmallDisk::default());
        set_room(&disk, 0);
        let mut store = small_store(&p, &disk);
        store.journal_bytes = MIN_COMPACT_BYTES + 1;
        store.journal_weight = 21;
        assert!(store.wants_snapshot(10));
        assert!(!store.wants_snapshot(11), "not twice the state");
        assert!(store.snapshot(empty()).is_err());
        assert!(!store.wants_snapshot(10));
        store.journal_bytes = 2 * MIN_COMPACT_BYTES + 1;
        assert!(store.wants_snapshot(10));
        std::fs::remove_dir_all(d).unwrap();
    }
}
