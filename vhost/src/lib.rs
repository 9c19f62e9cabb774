//! vhost-user and memif ports: where their sockets live, who may open them, and the DPDK
//! devargs (net_vhost, net_memif) that make them.
//!
//! Socket paths given without a `/` are relative to the run directory (default
//! /run/vswitch). Directories vswitchd creates for sockets are mode 0770 (owner and group:
//! the VM or container runtime is put in the group), sockets are 0660. A server socket may
//! be given to a group (`group=`): the socket, and the directories created for it, then
//! belong to that group, so that a QEMU or a pod's runtime running in it can connect.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where relative socket names go unless `--run-dir` says otherwise.
pub const DEFAULT_RUN_DIR: &str = "/run/vswitch";

/// Which end of a unix socket the switch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketRole {
    /// The switch creates and listens on the socket.
    Server,
    /// The switch connects to a socket the peer (QEMU, a container) created.
    Client,
}

impl SocketRole {
    /// Parses `server` / `client`; `key` names the argument in the error.
    pub fn parse(key: &str, value: &str) -> Result<SocketRole, String> {
        match value {
            "server" => Ok(SocketRole::Server),
            "client" => Ok(SocketRole::Client),
            v => Err(format!("{key} must be server or client, not {v:?}")),
        }
    }
}

/// Resolves a `socket=` value: absolute paths as given, bare names under `run_dir`.
/// Refuses empty paths, `..` components and characters DPDK's devargs cannot carry.
pub fn resolve_socket(run_dir: &Path, value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("socket must not be empty".into());
    }
    if value.contains([',', '=', ' ', '\t', '\n']) {
        return Err(format!(
            "socket path {value:?} must not contain ',', '=' or white space"
        ));
    }
    let p = Path::new(value);
    if p.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!("socket path {value:?} must not contain '..'"));
    }
    let full = if p.is_absolute() {
        p.to_path_buf()
    } else {
        run_dir.join(p)
    };
    // sun_path holds 108 bytes including the NUL.
    if full.as_os_str().len() > 107 {
        return Err(format!(
            "socket path {} is longer than 107 bytes",
            full.display()
        ));
    }
    Ok(full)
}

/// Makes sure the directory of a socket the switch will create exists: missing directories
/// are created with mode 0770, given to `group` when there is one (directories that exist
/// are left as they are: see [`unreachable_by_group`]).
pub fn prepare_socket_dir(socket: &Path, group: Option<u32>) -> Result<(), String> {
    let Some(dir) = socket.parent() else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.is_dir()).collect();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o770)
        .create(dir)
        .map_err(|e| format!("cannot create socket directory {}: {e}", dir.display()))?;
    for d in missing {
        if let Some(gid) = group {
            std::os::unix::fs::chown(d, None, Some(gid))
                .map_err(|e| format!("cannot give {} to group {gid}: {e}", d.display()))?;
        }
        // The umask may have masked group bits off.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o770))
            .map_err(|e| format!("cannot set mode 0770 on {}: {e}", d.display()))?;
    }
    Ok(())
}

/// The first directory above `socket` that members of group `gid` cannot search (neither
/// theirs with the group's search bit nor searchable by others), None if they reach it.
/// A hint only: ACLs and the peer's other groups may let it in all the same.
pub fn unreachable_by_group(socket: &Path, gid: u32) -> Option<PathBuf> {
    let dir = socket.parent()?;
    dir.ancestors()
        .find(|d| {
            std::fs::metadata(d).is_ok_and(|m| {
                let mode = m.mode();
                mode & 0o001 == 0 && !(m.gid() == gid && mode & 0o010 != 0)
            })
        })
        .map(Path::to_path_buf)
}

/// Refuses a server socket path that is taken by something other than a stale socket,
/// and removes a stale socket (one nobody listens on) so the driver can bind.
pub fn claim_server_socket(socket: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(socket) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(format!("{} exists and is not a socket", socket.display()));
    }
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(format!("{} is in use by another process", socket.display()));
    }
    std::fs::remove_file(socket)
        .map_err(|e| format!("cannot remove stale socket {}: {e}", socket.display()))
}

/// Sets a created server socket to mode 0660 and, with `group`, gives it to that group
/// (the owner stays the switch's user), so that its members may connect.
pub fn restrict_socket(socket: &Path, group: Option<u32>) -> Result<(), String> {
    if let Some(gid) = group {
        std::os::unix::fs::chown(socket, None, Some(gid)).map_err(|e| {
            format!(
                "cannot give socket {} to group {gid}: {e}",
                socket.display()
            )
        })?;
    }
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("cannot set mode 0660 on socket {}: {e}", socket.display()))
}

/// Devargs for a vhost-user port (DPDK's net_vhost) named `dev`.
pub fn vhost_user_devargs(dev: &str, socket: &Path, role: SocketRole, queues: u16) -> String {
    let client = matches!(role, SocketRole::Client) as u8;
    format!(
        "{dev},iface={},queues={queues},client={client}",
        socket.display()
    )
}

/// Devargs for a memif port (DPDK's net_memif) named `dev`, on a filesystem socket.
pub fn memif_devargs(dev: &str, socket: &Path, role: SocketRole, id: u32) -> String {
    let role = match role {
        SocketRole::Server => "server",
        SocketRole::Client => "client",
    };
    format!(
        "{dev},role={role},id={id},socket={},socket-abstract=no",
        socket.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_sockets_go_under_the_run_dir() {
        let run = Path::new("/run/vswitch");
        assert_eq!(
            resolve_socket(run, "vm1.sock").unwrap(),
            Path::new("/run/vswitch/vm1.sock")
        );
        assert_eq!(
            resolve_socket(run, "/tmp/x.sock").unwrap(),
            Path::new("/tmp/x.sock")
        );
    }

    #[test]
    fn bad_socket_paths_are_refused() {
        let run = Path::new("/run/vswitch");
        assert!(resolve_socket(run, "").is_err());
        assert!(resolve_socket(run, "a,b").unwrap_err().contains("','"));
        assert!(resolve_socket(run, "../etc/x").unwrap_err().contains(".."));
        assert!(resolve_socket(run, &"x".repeat(120))
            .unwrap_err()
            .contains("107"));
    }

    #[test]
    fn devargs_have_the_driver_keys() {
        let s = Path::new("/run/vswitch/vh0.sock");
        assert_eq!(
            vhost_user_devargs("net_vhost3", s, SocketRole::Client, 2),
            "net_vhost3,iface=/run/vswitch/vh0.sock,queues=2,client=1"
        );
        assert_eq!(
            memif_devargs("net_memif1", s, SocketRole::Server, 7),
            "net_memif1,role=server,id=7,socket=/run/vswitch/vh0.sock,socket-abstract=no"
        );
    }

    #[test]
    fn roles_parse_and_name_the_key() {
        assert_eq!(SocketRole::parse("mode", "server"), Ok(SocketRole::Server));
        assert!(SocketRole::parse("role", "master")
            .unwrap_err()
            .starts_with("role must be"));
    }

    #[test]
    fn socket_dirs_are_created_0770_and_stale_sockets_claimed() {
        let base = std::env::temp_dir().join(format!("vsvhost{}", std::process::id()));
        let sock = base.join("sub/s.sock");
        prepare_socket_dir(&sock, None).unwrap();
        let mode = std::fs::metadata(sock.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o770);
        // A stale socket (bound, nobody listening any more) is removed.
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        assert!(sock.exists());
        claim_server_socket(&sock).unwrap();
        assert!(!sock.exists());
        // A live one is refused; a regular file is refused.
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(claim_server_socket(&sock).unwrap_err().contains("in use"));
        let f = base.join("file");
        std::fs::write(&f, b"x").unwrap();
        assert!(claim_server_socket(&f)
            .unwrap_err()
            .contains("not a socket"));
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// A server socket given to a group: the directories made for it and the socket belong
    /// to the group, mode 0770 and 0660. (A group id needs no entry in /etc/group; as
    /// another user than root, the user's own group is used.)
    #[test]
    fn group_sockets_and_their_new_directories_belong_to_the_group() {
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        let (root, own_gid) = unsafe { (libc::geteuid() == 0, libc::getegid()) };
        let gid = if root { 4321 } else { own_gid };
        let base = std::env::temp_dir().join(format!("vsvgrp{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
        let sock = base.join("a/b/s.sock");
        prepare_socket_dir(&sock, Some(gid)).unwrap();
        for d in [base.join("a"), base.join("a/b")] {
            let m = std::fs::metadata(&d).unwrap();
            assert_eq!((m.mode() & 0o777, m.gid()), (0o770, gid), "{}", d.display());
        }
        // base (0700, not the group's) stands in the way: named as the hint.
        assert_eq!(unreachable_by_group(&sock, gid), Some(base.clone()));
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(unreachable_by_group(&sock, gid), None);
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        restrict_socket(&sock, Some(gid)).unwrap();
        let m = std::fs::metadata(&sock).unwrap();
        assert_eq!((m.mode() & 0o777, m.gid()), (0o660, gid));
        let gone = base.join("nothing.sock");
        assert!(restrict_socket(&gone, Some(gid))
            .unwrap_err()
            .contains("nothing.sock"));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
