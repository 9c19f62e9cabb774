//! The sessions file: the live sessions of the stateful-ACL table saved beside the state
//! file (`<state>.sessions`) on a graceful stop, and put back at the next start, so that a
//! restart keeps established flows going. A SIGKILL (or a crash) writes nothing: the
//! sessions are lost then, and flows are admitted again by the rules (a reply whose session
//! went is dropped until its side opens the flow again).
//!
//! Format version 1, little endian, written atomically (temp file, fsync, rename):
//!
//! ```text
//! magic     8 bytes  "vssess\0\n"
//! version   u32      1
//! saved_at  u64      Unix seconds when written (the downtime is added to idle times)
//! names     u16      interface names, then each: u8 length, the name's bytes
//! count     u32      sessions, then each RECORD bytes:
//!   iface u16 (index into names), family u8 (4 | 6), proto u8, dir u8 (0 in, 1 out),
//!   src [16] (IPv4 in the last 4), dst [16], sport u16, dport u16, state u32 (the
//!   table's bits), age u32, idle u32
//! crc       u32      CRC-32 of everything before it
//! ```
//!
//! Sessions are keyed by interface name, not index: indices are given afresh at start.
//! The file is outside input when read: any bytes give a file or an error, never a panic
//! (a proptest below feeds it random and truncated bytes).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use vswitch_dataplane::acl::rule::Family;
use vswitch_dataplane::acl::session::{Flow, SavedSession};
use vswitch_dataplane::acl::Dir;

const MAGIC: &[u8; 8] = b"vssess\0\n";
const VERSION: u32 = 1;
/// Bytes per session.
const RECORD: usize = 2 + 1 + 1 + 1 + 16 + 16 + 2 + 2 + 4 + 4 + 4;

/// A sessions file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFile {
    /// Unix seconds when it was written.
    pub saved_at: u64,
    /// Interface names; a session's flow's `iface` is an index into them.
    pub names: Vec<String>,
    pub sessions: Vec<SavedSession>,
}

/// The sessions file of state file `state`.
pub fn path_of(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".sessions");
    PathBuf::from(p)
}

/// The bytes of `f`. Names longer than 255 bytes (never valid interface names) and
/// sessions naming no name are left out.
pub fn encode(f: &SessionFile) -> Vec<u8> {
    let names: Vec<&String> = f.names.iter().take(usize::from(u16::MAX)).collect();
    let fits = |s: &&SavedSession| usize::from(s.flow.iface) < names.len();
    let sessions: Vec<&SavedSession> = f.sessions.iter().filter(fits).collect();
    let mut b = Vec::with_capacity(64 + sessions.len() * RECORD);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&f.saved_at.to_le_bytes());
    b.extend_from_slice(&(names.len() as u16).to_le_bytes());
    for n in &names {
        let n = &n.as_bytes()[..n.len().min(255)];
        b.push(n.len() as u8);
        b.extend_from_slice(n);
    }
    b.extend_from_slice(&(sessions.len() as u32).to_le_bytes());
    for s in sessions {
        let fl = &s.flow;
        b.extend_from_slice(&fl.iface.to_le_bytes());
        b.push(match fl.family {
            Family::V4 => 4,
            Family::V6 => 6,
        });
        b.push(fl.proto);
        b.push(s.dir as u8);
        b.extend_from_slice(&fl.src.to_be_bytes());
        b.extend_from_slice(&fl.dst.to_be_bytes());
        b.extend_from_slice(&fl.sport.to_le_bytes());
        b.extend_from_slice(&fl.dport.to_le_bytes());
        for v in [s.state, s.age, s.idle] {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Reads fields off the front of a byte slice; every read checks the length.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("cut short".to_string());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }
}

/// The content of a sessions file, or what is wrong with it.
pub fn decode(bytes: &[u8]) -> Result<SessionFile, String> {
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a sessions file".to_string());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let mut r = Reader(body);
    r.take(MAGIC.len())?;
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!("version {version}, this vswitchd reads {VERSION}"));
    }
    let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != want {
        return Err("checksum mismatch (damaged or cut short)".to_string());
    }
    let saved_at = u64::from_le_bytes(r.array()?);
    let mut names = Vec::new();
    for _ in 0..r.u16()? {
        let len = usize::from(r.u8()?);
        let n = std::str::from_utf8(r.take(len)?).map_err(|_| "a name is not UTF-8")?;
        names.push(n.to_string());
    }
    let count = r.u32()? as usize;
    if r.0.len() != count.saturating_mul(RECORD) {
        return Err(format!(
            "{count} sessions announced, {} bytes of them",
            r.0.len()
        ));
    }
    let mut sessions = Vec::with_capacity(count);
    for i in 0..count {
        let bad = |what: &str| format!("session {}: {what}", i + 1);
        let iface = r.u16()?;
        if usize::from(iface) >= names.len() {
            return Err(bad("interface out of range"));
        }
        let family = match r.u8()? {
            4 => Family::V4,
            6 => Family::V6,
            _ => return Err(bad("family is neither 4 nor 6")),
        };
        let proto = r.u8()?;
        let dir = match r.u8()? {
            0 => Dir::In,
            1 => Dir::Out,
            _ => return Err(bad("direction is neither 0 nor 1")),
        };
        let src = u128::from_be_bytes(r.array()?);
        let dst = u128::from_be_bytes(r.array()?);
        if family == Family::V4 && (src | dst) >> 32 != 0 {
            return Err(bad("an IPv4 address wider than 32 bits"));
        }
        let (sport, dport) = (r.u16()?, r.u16()?);
        let (state, age, idle) = (r.u32()?, r.u32()?, r.u32()?);
        sessions.push(SavedSession {
            flow: Flow {
                iface,
                family,
                proto,
                src,
                dst,
                sport,
                dport,
            },
            dir,
            state,
            age,
            idle,
        });
    }
    Ok(SessionFile {
        saved_at,
        names,
        sessions,
    })
}

/// Writes `f` to `path` atomically (temp file beside it, mode 0640, fsync, rename).
/// Returns the bytes written.
pub fn save(path: &Path, f: &SessionFile) -> Result<usize, String> {
    let err = |e: std::io::Error| format!("cannot write sessions file {}: {e}", path.display());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let bytes = encode(f);
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::state::FILE_MODE)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(&bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(bytes.len())
}

/// Reads and removes the sessions file at `path`: Ok(None) when there is none; an error
/// (the file is removed all the same) when it cannot be read or is not a valid one.
pub fn take(path: &Path) -> Result<Option<SessionFile>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            let _ = std::fs::remove_file(path);
            return Err(format!("cannot read {}: {e}", path.display()));
        }
    };
    let _ = std::fs::remove_file(path);
    decode(&bytes)
        .map(Some)
        .map_err(|e| format!("{} is not a valid sessions file: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> SessionFile {
        let s = |iface, family, proto, src, dst, sport, dport, dir| SavedSession {
            flow: Flow {
                iface,
                family,
                proto,
                src,
                dst,
                sport,
                dport,
            },
            dir,
            state: 0x23,
            age: 100,
            idle: 7,
        };
        SessionFile {
            saved_at: 1_700_000_000,
            names: vec!["a".into(), "vx0".into()],
            sessions: vec![
                s(
                    0,
                    Family::V4,
                    6,
                    0x0a00_0001,
                    0xc000_0201,
                    40000,
                    80,
                    Dir::Out,
                ),
                s(
                    1,
                    Family::V6,
                    17,
                    0x2001_0db8 << 96 | 1,
                    0x2001_0db8 << 96 | 2,
                    5353,
                    53,
                    Dir::In,
                ),
                s(0, Family::V4, 1, 0x0a00_0001, 0x0a00_0002, 77, 77, Dir::In),
            ],
        }
    }

    #[test]
    fn round_trip() {
        let f = sample();
        assert_eq!(decode(&encode(&f)).unwrap(), f);
        let empty = SessionFile::default();
        assert_eq!(decode(&encode(&empty)).unwrap(), empty);
    }

    #[test]
    fn damage_is_reported() {
        let b = encode(&sample());
        assert_eq!(decode(b"").unwrap_err(), "not a sessions file");
        assert!(decode(&b[..b.len() - 1]).unwrap_err().contains("checksum"));
        let mut flipped = b.clone();
        flipped[30] ^= 1;
        assert!(decode(&flipped).unwrap_err().contains("checksum"));
        let mut v2 = b.clone();
        v2[8] = 2;
        assert!(decode(&v2).unwrap_err().contains("version 2"));
    }

    #[test]
    fn save_and_take() {
        let dir = std::env::temp_dir().join(format!("vs-sessfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = path_of(&dir.join("state.json"));
        assert_eq!(p, dir.join("state.json.sessions"));
        assert_eq!(take(&p).unwrap(), None);
        save(&p, &sample()).unwrap();
        assert_eq!(take(&p).unwrap(), Some(sample()));
        assert!(!p.exists(), "taken: removed");
        std::fs::write(&p, b"vssess\0\ngarbage").unwrap();
        assert!(take(&p).unwrap_err().contains("not a valid sessions file"));
        assert!(!p.exists(), "a bad file is removed too");
        let _ = std::fs::remove_dir_all(&dir);
    }

    proptest! {
        /// Random bytes, with and without a valid header, never panic.
        #[test]
        fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..600), header in any::<bool>()) {
            if header {
                let mut b = MAGIC.to_vec();
                b.extend_from_slice(&VERSION.to_le_bytes());
                b.extend_from_slice(&bytes);
                bytes = b;
            }
            let _ = decode(&bytes);
        }

        /// A valid file cut short or with a byte changed is refused, never a panic; with
        /// its checksum fixed up, the parser still copes with whatever it holds.
        #[test]
        fn damaged_files_never_panic(cut in 0usize..400, at in 0usize..400, x in 1u8..=255) {
            let b = encode(&sample());
            let cut = cut.min(b.len());
            prop_assert!(cut == b.len() || decode(&b[..cut]).is_err());
            let mut c = b.clone();
            let i = at % c.len();
            c[i] ^= x;
            let _ = decode(&c);
            let n = c.len() - 4;
            let crc = crc32fast::hash(&c[..n]).to_le_bytes();
            c[n..].copy_from_slice(&crc);
            let _ = decode(&c);
            let mut short = b[..b.len() - 4].to_vec();
            short.truncate(cut.min(short.len()));
            let crc = crc32fast::hash(&short).to_le_bytes();
            short.extend_from_slice(&crc);
            let _ = decode(&short);
        }
    }
}
