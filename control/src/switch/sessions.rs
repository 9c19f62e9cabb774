//! The session table of stateful ACLs as the control plane sees it: its settings and
//! counters, its sessions listed (names for interface indices) and flushed, and its
//! sessions saved across a graceful restart (session_file.rs).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vswitch_dataplane::acl::rule::Family;
use vswitch_dataplane::acl::session::SessionInfo;
use vswitch_dataplane::acl::Dir;
use vswitch_proto::v1 as pb;

use super::Switch;
use crate::error::ApiResult;
use crate::model;
use crate::session_file::{self, SessionFile};

/// Sessions `ListSessions` returns unless asked for another number.
pub const DEFAULT_MAX: usize = 10_000;

/// A protocol's name (tcp, udp, icmp, icmp6), else its number.
pub fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmp6".into(),
        n => n.to_string(),
    }
}

fn addr(family: Family, a: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(a as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(a)),
    }
}

fn dir_name(d: Dir) -> &'static str {
    match d {
        Dir::In => "in",
        Dir::Out => "out",
    }
}

/// One session in its proto form, its interface named `iface`.
pub fn session_pb(s: &SessionInfo, iface: String) -> pb::Session {
    let f = &s.flow;
    let nat = s.nat.as_ref();
    let is_nat = nat.is_some();
    pb::Session {
        iface: if is_nat { "nat".into() } else { iface },
        direction: if is_nat { "nat" } else { dir_name(s.dir) }.into(),
        proto: proto_name(f.proto),
        src: addr(f.family, f.src).to_string(),
        dst: addr(f.family, f.dst).to_string(),
        sport: u32::from(f.sport),
        dport: u32::from(f.dport),
        state: s.state.into(),
        age_seconds: u64::from(s.age),
        idle_seconds: u64::from(s.idle),
        nat_src: nat
            .map(|n| addr(n.family, n.src).to_string())
            .unwrap_or_default(),
        nat_dst: nat
            .map(|n| addr(n.family, n.dst).to_string())
            .unwrap_or_default(),
        nat_sport: nat.map_or(0, |n| u32::from(n.sport)),
        nat_dport: nat.map_or(0, |n| u32::from(n.dport)),
        vrf: if is_nat {
            u32::from(f.iface - vswitch_dataplane::nat::NAT_KEY)
        } else {
            0
        },
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Switch {
    /// The session table's settings and counters.
    pub fn session_config(&self) -> pb::SessionConfig {
        let st = self.sessions.stats();
        pb::SessionConfig {
            live: st.live,
            created: st.created,
            evicted: st.evicted,
            refused: st.refused,
            expired: st.expired,
            capacity: self.sessions.capacity() as u64,
            ..model::session::config_pb(&self.model)
        }
    }

    /// Live sessions by state name (every state listed).
    pub fn session_states(&self) -> Vec<(String, u64)> {
        self.sessions
            .count_states()
            .iter()
            .map(|(n, c)| (n.to_string(), *c))
            .collect()
    }

    /// Sessions (of interface `iface` only, if not empty), at most `max` (0: the default),
    /// sorted by interface, then flow.
    pub fn list_sessions(&self, r: &pb::ListSessionsRequest) -> ApiResult<pb::ListSessionsReply> {
        let max = match r.max {
            0 => DEFAULT_MAX,
            n => n as usize,
        };
        let only = if r.iface.is_empty() {
            None
        } else {
            model::session::check_iface(&self.model, &r.iface)?;
            // An interface without an index (not in the dataplane) has no sessions.
            Some(self.l3_index(&r.iface))
        };
        let names = self.names_by_index();
        let mut truncated = false;
        let mut sessions = Vec::new();
        // One more than asked tells a truncated list (a filter on an interface reads all).
        let cap = if only.is_none() {
            max.saturating_add(1)
        } else {
            usize::MAX
        };
        for s in self.sessions.list(cap) {
            if only.is_some_and(|i| i != Some(s.flow.iface)) {
                continue;
            }
            if sessions.len() == max {
                truncated = true;
                break;
            }
            let name = names
                .get(&s.flow.iface)
                .cloned()
                .unwrap_or_else(|| format!("#{}", s.flow.iface));
            sessions.push(session_pb(&s, name));
        }
        sessions.sort_by(|a, b| {
            (&a.iface, &a.proto, &a.src, &a.dst, a.sport, a.dport)
                .cmp(&(&b.iface, &b.proto, &b.src, &b.dst, b.sport, b.dport))
        });
        Ok(pb::ListSessionsReply {
            sessions,
            truncated,
            live: self.sessions.stats().live,
        })
    }

    /// Saves the live sessions beside the state file (the workers are stopped). Nothing
    /// without a state file; an old sessions file is replaced (or removed when there are
    /// none).
    pub(super) fn save_sessions(&self) {
        let Some(path) = self.store.as_ref().map(|s| session_file::path_of(s.path())) else {
            return;
        };
        let saved = self.sessions.saved();
        if saved.is_empty() {
            let _ = std::fs::remove_file(&path);
            return;
        }
        let by_index = self.names_by_index();
        let mut names: Vec<String> = Vec::new();
        let mut slot = std::collections::BTreeMap::new();
        let mut sessions = Vec::with_capacity(saved.len());
        for mut s in saved {
            let Some(name) = by_index.get(&s.flow.iface) else {
                continue;
            };
            let i = *slot.entry(s.flow.iface).or_insert_with(|| {
                names.push(name.clone());
                names.len() - 1
            });
            s.flow.iface = i as u16;
            sessions.push(s);
        }
        let n = sessions.len();
        let f = SessionFile {
            saved_at: now_unix(),
            names,
            sessions,
        };
        match session_file::save(&path, &f) {
            Ok(bytes) => {
                tracing::info!(sessions = n, bytes, file = %path.display(), "sessions saved")
            }
            Err(e) => tracing::error!("{e}; sessions will not survive the restart"),
        }
    }

    /// Puts back the sessions saved at the last graceful stop, if any (after the state is
    /// restored: interfaces are found by name), and removes the file. Each is checked
    /// against the ACL bound where it is on its next packet. A session idle past its
    /// timeout (the downtime counts), on an interface that is gone, or over a limit, is
    /// dropped. A damaged file is logged and ignored.
    pub fn restore_sessions(&mut self) {
        let Some(path) = self.store.as_ref().map(|s| session_file::path_of(s.path())) else {
            return;
        };
        let f = match session_file::take(&path) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("{e}; no session restored");
                return;
            }
        };
        let down = now_unix().saturating_sub(f.saved_at);
        let down = u32::try_from(down).unwrap_or(u32::MAX);
        let index: Vec<Option<u16>> = f.names.iter().map(|n| self.l3_index(n)).collect();
        let (mut restored, total) = (0usize, f.sessions.len());
        for mut s in f.sessions {
            let Some(Some(i)) = index.get(usize::from(s.flow.iface)) else {
                continue;
            };
            s.flow.iface = *i;
            s.idle = s.idle.saturating_add(down);
            s.age = s.age.saturating_add(down);
            if self.sessions.restore(&s) {
                restored += 1;
            }
        }
        tracing::info!(
            restored,
            dropped = total - restored,
            downtime_seconds = down,
            "sessions restored"
        );
    }
}
