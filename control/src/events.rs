//! The event hub behind `Watch`: link changes, MAC learning events, neighbours the router
//! learns and forgets, and applied configuration changes, numbered in one sequence and fanned out to every watcher.
//!
//! Emitting never blocks: each watcher has a bounded backlog; one that falls behind loses
//! the oldest events and is told how many (it should then re-read with List calls).

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;
use vswitch_dataplane::l2::learn::FdbEvent;
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::event::Event as E;

use crate::names::format_mac;

/// Events a watcher may fall behind by before it loses some.
pub const BACKLOG: usize = 16384;

/// Port and bridge names, by id (events carry names).
#[derive(Default)]
struct Names {
    ports: HashMap<u16, String>,
    bridges: HashMap<u16, String>,
}

/// The hub.
pub struct Events {
    tx: broadcast::Sender<pb::Event>,
    /// The next sequence number; held while sending so that order matches numbering.
    seq: Mutex<u64>,
    names: RwLock<Names>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("watchers", &self.tx.receiver_count())
            .finish()
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Events {
        Events {
            tx: broadcast::channel(BACKLOG).0,
            seq: Mutex::new(1),
            names: RwLock::new(Names::default()),
        }
    }

    /// A new watcher: every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<pb::Event> {
        self.tx.subscribe()
    }

    /// Whether anyone is watching (events are not even built otherwise).
    pub fn watched(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    fn emit(&self, event: E) {
        if !self.watched() {
            return;
        }
        let unix_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.tx.send(pb::Event {
            seq: *seq,
            unix_nanos,
            event: Some(event),
            lost: 0,
        });
        *seq += 1;
    }

    /// Sets the names events use for port and bridge ids.
    pub fn set_names(&self, ports: HashMap<u16, String>, bridges: HashMap<u16, String>) {
        let mut n = self.names.write().unwrap_or_else(|p| p.into_inner());
        n.ports = ports;
        n.bridges = bridges;
    }

    /// An interface's link went up or down.
    pub fn link(&self, iface: &str, up: bool) {
        self.emit(E::Link(pb::LinkEvent {
            iface: iface.to_string(),
            up,
        }));
    }

    /// A configuration change was applied.
    pub fn config(&self, change: &str, name: &str) {
        self.emit(E::Config(pb::ConfigEvent {
            change: change.to_string(),
            name: name.to_string(),
        }));
    }

    /// A neighbour the router learned (ARP, ND), saw change MAC, or forgot; on interface
    /// `iface` (an ifindex).
    pub fn neighbor(&self, kind: &str, iface: u16, ip: std::net::IpAddr, mac: [u8; 6]) {
        if !self.watched() {
            return;
        }
        let iface = {
            let names = self.names.read().unwrap_or_else(|p| p.into_inner());
            names
                .ports
                .get(&iface)
                .cloned()
                .unwrap_or_else(|| format!("port{iface}"))
        };
        self.emit(E::Neighbor(pb::NeighborEvent {
            kind: kind.to_string(),
            iface,
            ip: ip.to_string(),
            mac: format_mac(mac),
        }));
    }

    /// MAC learning events from the learner.
    pub fn fdb(&self, events: &[FdbEvent]) {
        if events.is_empty() || !self.watched() {
            return;
        }
        let names = self.names.read().unwrap_or_else(|p| p.into_inner());
        let port = |p: &u16| {
            names
                .ports
                .get(p)
                .cloned()
                .unwrap_or_else(|| format!("port{p}"))
        };
        for e in events {
            let (kind, key, iface, from) = match e {
                FdbEvent::Learned { key, port: p } => ("learned", key, port(p), String::new()),
                FdbEvent::Moved { key, from, to } => ("moved", key, port(to), port(from)),
                FdbEvent::Aged { key, port: p } => ("aged", key, port(p), String::new()),
            };
            self.emit(E::Fdb(pb::FdbEvent {
                kind: kind.to_string(),
                bridge: names
                    .bridges
                    .get(&key.bridge)
                    .cloned()
                    .unwrap_or_else(|| key.bridge.to_string()),
                mac: format_mac(key.mac),
                vlan: u32::from(key.vlan),
                iface,
                from_iface: from,
            }));
        }
    }
}

/// The kind name of an event, as WatchRequest.kinds names it.
pub fn kind(e: &pb::Event) -> &'static str {
    match e.event {
        Some(E::Link(_)) => "link",
        Some(E::Fdb(_)) => "fdb",
        Some(E::Config(_)) => "config",
        Some(E::Neighbor(_)) => "neighbor",
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vswitch_dataplane::l2::fdb::FdbKey;

    #[test]
    fn events_are_numbered_in_order_and_carry_names() {
        let hub = Events::new();
        hub.link("nobody-listens", true); // dropped: no watcher
        let mut rx = hub.subscribe();
        hub.set_names(
            [(3, "a".to_string())].into(),
            [(1, "br0".to_string())].into(),
        );
        hub.config("add_bridge", "br0");
        let key = FdbKey {
            bridge: 1,
            vlan: 0,
            mac: [2, 0, 0, 0, 0, 1],
        };
        hub.fdb(&[FdbEvent::Learned { key, port: 3 }]);
        let a = rx.try_recv().unwrap();
        let b = rx.try_recv().unwrap();
        assert_eq!(b.seq, a.seq + 1);
        assert_eq!(kind(&a), "config");
        match b.event {
            Some(E::Fdb(f)) => {
                assert_eq!(
                    (
                        f.kind.as_str(),
                        f.bridge.as_str(),
                        f.iface.as_str(),
                        f.mac.as_str()
                    ),
                    ("learned", "br0", "a", "02:00:00:00:00:01")
                );
            }
            other => panic!("expected an fdb event, got {other:?}"),
        }
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_slow_watcher_is_told_how_many_it_lost() {
        let hub = Events::new();
        let mut rx = hub.subscribe();
        for i in 0..BACKLOG + 10 {
            hub.config("add_fdb", &i.to_string());
        }
        match rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 10),
            other => panic!("expected Lagged, got {other:?}"),
        }
    }
}
