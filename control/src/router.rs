//! The router's dataplane tables on the control side: one IPv4 and one IPv6 FIB per VRF
//! and the next-hop table, kept in step with the model's [`L3Diff`] (the single writer of
//! each; workers read them without locks, see `vswitch_dataplane::l3`).
//!
//! Next hops are shared: every route through one gateway names one next-hop id, whose word
//! (`Forward` to the gateway's MAC once known, `Resolve` until then) changes in place when
//! the neighbour does, so that the routes follow at once. Kinds of next hop:
//! - `Local`: the router's own addresses (local routes);
//! - `Glean(iface)`: a subnet on `iface` (connected routes, `dev IFACE` routes): its
//!   packets go to the slow path, which resolves the host;
//! - `Gateway(iface, ip)`: a neighbour as a next hop;
//! - `Ecmp(members)`: consecutive ids holding copies of the members' words, one picked
//!   per flow by the workers.
//!
//! Thread safety: owned by the switch (under its lock).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use vswitch_dataplane::l3::fib::Grace;
use vswitch_dataplane::l3::{Fib4Writer, Fib6Writer, FibError, Match, NextHop, NextHops};
use vswitch_dataplane::plan::{L3Plan, VrfPlan};
use vswitch_dataplane::IfIndex;

use crate::model::ip::Prefix;
use crate::model::{L3Diff, Route};

/// Groups per FIB for prefixes longer than the first level's 24 bits (1 KiB each, committed
/// as used).
const V4_GROUPS: u32 = 1 << 17;
const V6_GROUPS: u32 = 1 << 17;
/// Next-hop ids (8 bytes each, committed as used).
const NEXTHOPS: u32 = 1 << 20;
/// Id 0 is never handed out (a zeroed word is Invalid anyway).
const LOCAL: u32 = 1;

/// What a next-hop id stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum NhKey {
    Glean(IfIndex),
    Gateway(IfIndex, IpAddr),
    Ecmp(Vec<NhKey>),
}

#[derive(Debug)]
struct Vrf {
    v4: Fib4Writer,
    v6: Fib6Writer,
}

impl Vrf {
    fn new() -> Result<Vrf, String> {
        Ok(Vrf {
            v4: Fib4Writer::new(V4_GROUPS).map_err(|e| e.to_string())?,
            v6: Fib6Writer::new(V6_GROUPS).map_err(|e| e.to_string())?,
        })
    }

    fn insert(&mut self, p: &Prefix, nh: u32) -> Result<(), FibError> {
        match p.addr() {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), p.length(), nh),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), p.length(), nh),
        }
    }

    fn remove(&mut self, p: &Prefix) -> Result<(), FibError> {
        match p.addr() {
            IpAddr::V4(a) => self.v4.remove(u32::from(a), p.length()),
            IpAddr::V6(a) => self.v6.remove(u128::from(a), p.length()),
        }
    }

    fn lookup(&self, a: IpAddr) -> Option<Match> {
        match a {
            IpAddr::V4(a) => self.v4.fib().lookup_match(u32::from(a)),
            IpAddr::V6(a) => self.v6.fib().lookup_match(u128::from(a)),
        }
    }
}

/// A next-hop id in use: its key, how many routes name it, how many ids it spans.
#[derive(Debug)]
struct Allocated {
    id: u32,
    refs: u32,
    span: u32,
}

/// The control side of the router's tables.
#[derive(Debug)]
pub struct Router {
    vrfs: BTreeMap<u16, Vrf>,
    nexthops: Arc<NextHops>,
    ids: HashMap<NhKey, Allocated>,
    keys: HashMap<u32, NhKey>,
    /// Free id ranges by length (1 for a next hop, the member count for a group).
    free: HashMap<u32, Vec<u32>>,
    fresh: u32,
    /// The next-hop id each installed route names, by (VRF, prefix).
    routes: HashMap<(u16, Prefix), u32>,
    /// Known neighbours: (interface, IP) -> MAC (static ones, and learned ones).
    neighbors: HashMap<(IfIndex, IpAddr), [u8; 6]>,
    /// Neighbours that are static (never replaced by what ARP says).
    statics: std::collections::HashSet<(IfIndex, IpAddr)>,
    /// Host routes of learned neighbours in connected subnets: (VRF, IP) -> next-hop id.
    hosts: HashMap<(u16, IpAddr), u32>,
    /// The routed interfaces, as the slow path needs them.
    ifaces: HashMap<IfIndex, IfaceInfo>,
    /// When each learned neighbour was last heard from (ARP from it).
    heard: HashMap<(IfIndex, IpAddr), std::time::Instant>,
    /// Most learned neighbours (`neigh set limit=`), and their age (`age=`).
    neigh_limit: usize,
    neigh_age: std::time::Duration,
    /// Neighbours not learned because the table was full.
    refused: u64,
}

/// A routed interface as the slow path sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    pub vrf: u16,
    pub mac: [u8; 6],
    pub mtu: u16,
    /// Its IPv4 addresses with their subnet lengths.
    pub v4: Vec<(std::net::Ipv4Addr, u8)>,
    pub proxy_arp: bool,
}

impl IfaceInfo {
    /// Whether `ip` is in one of the interface's IPv4 subnets.
    pub fn on_link(&self, ip: std::net::Ipv4Addr) -> bool {
        self.v4.iter().any(|&(a, len)| {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(a) & m == u32::from(ip) & m
        })
    }

    /// The interface's address in `ip`'s subnet, else its first.
    pub fn source_for(&self, ip: std::net::Ipv4Addr) -> Option<std::net::Ipv4Addr> {
        let one = |&(a, len): &(std::net::Ipv4Addr, u8)| {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(a) & m == u32::from(ip) & m
        };
        self.v4
            .iter()
            .find(|x| one(x))
            .or(self.v4.first())
            .map(|&(a, _)| a)
    }
}

/// A route as the FIB resolved an address: the matched prefix and its next hops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub prefix: Prefix,
    /// (gateway, interface) of each next hop; the interface is None for a local route.
    pub nexthops: Vec<(Option<IpAddr>, Option<IfIndex>)>,
    pub local: bool,
}

impl Router {
    /// Tables for VRF 0.
    pub fn new() -> Result<Router, String> {
        let nexthops = Arc::new(NextHops::new(NEXTHOPS).map_err(|e| e.to_string())?);
        nexthops.set(LOCAL, NextHop::Local);
        let mut vrfs = BTreeMap::new();
        vrfs.insert(0, Vrf::new()?);
        Ok(Router {
            vrfs,
            nexthops,
            ids: HashMap::new(),
            keys: HashMap::new(),
            free: HashMap::new(),
            fresh: LOCAL + 1,
            routes: HashMap::new(),
            neighbors: HashMap::new(),
            statics: Default::default(),
            hosts: HashMap::new(),
            ifaces: HashMap::new(),
            heard: HashMap::new(),
            neigh_limit: crate::model::neigh::DEFAULT_LIMIT as usize,
            neigh_age: std::time::Duration::from_secs(u64::from(crate::model::neigh::DEFAULT_AGE)),
            refused: 0,
        })
    }

    /// The tables as workers see them.
    pub fn plan(&self) -> L3Plan {
        let n = self
            .vrfs
            .keys()
            .next_back()
            .map_or(0, |&v| usize::from(v) + 1);
        let mut vrfs = vec![None; n];
        for (&id, v) in &self.vrfs {
            vrfs[usize::from(id)] = Some(VrfPlan {
                fib4: v.v4.fib().clone(),
                fib6: v.v6.fib().clone(),
            });
        }
        L3Plan {
            vrfs,
            nexthops: Some(self.nexthops.clone()),
        }
    }

    /// The word of next hop `key` as things stand.
    fn word(&self, key: &NhKey) -> NextHop {
        match key {
            NhKey::Glean(i) => NextHop::Resolve { iface: *i },
            NhKey::Gateway(i, ip) => match self.neighbors.get(&(*i, *ip)) {
                Some(mac) => NextHop::Forward {
                    iface: *i,
                    mac: *mac,
                },
                None => NextHop::Resolve { iface: *i },
            },
            NhKey::Ecmp(_) => NextHop::Invalid,
        }
    }

    /// Writes the words of `key`'s id(s).
    fn write(&self, key: &NhKey, id: u32) {
        match key {
            NhKey::Ecmp(members) => {
                // Members first, then the group that names them.
                for (k, m) in members.iter().enumerate() {
                    self.nexthops.set(id + 1 + k as u32, self.word(m));
                }
                self.nexthops.set(
                    id,
                    NextHop::Ecmp {
                        first: id + 1,
                        count: members.len() as u8,
                    },
                );
            }
            k => {
                self.nexthops.set(id, self.word(k));
            }
        }
    }

    /// The id of `key`, taking a reference (allocated and written if new).
    fn acquire(&mut self, key: NhKey) -> Result<u32, String> {
        if let Some(a) = self.ids.get_mut(&key) {
            a.refs += 1;
            return Ok(a.id);
        }
        let span = match &key {
            NhKey::Ecmp(m) => m.len() as u32 + 1,
            _ => 1,
        };
        let id = match self.free.get_mut(&span).and_then(Vec::pop) {
            Some(id) => id,
            None if self.fresh + span <= self.nexthops.capacity() => {
                self.fresh += span;
                self.fresh - span
            }
            None => return Err(format!("next-hop table full ({NEXTHOPS} ids)")),
        };
        self.write(&key, id);
        self.keys.insert(id, key.clone());
        self.ids.insert(key, Allocated { id, refs: 1, span });
        Ok(id)
    }

    /// Drops a reference to next hop `id` (freed with its last). Local is never freed.
    fn release(&mut self, id: u32) {
        let Some(key) = self.keys.get(&id).cloned() else {
            return;
        };
        let Some(a) = self.ids.get_mut(&key) else {
            return;
        };
        a.refs -= 1;
        if a.refs == 0 {
            let span = a.span;
            self.ids.remove(&key);
            self.keys.remove(&id);
            // No route names it any more; a worker may still hold the id from a lookup
            // made before the route went, and reads Invalid (no_route) meanwhile.
            for i in id..id + span {
                self.nexthops.set(i, NextHop::Invalid);
            }
            self.free.entry(span).or_default().push(id);
        }
    }

    /// The next-hop key of route `p`'s next hops (`ifindex` names interfaces). A host
    /// route straight out of an interface (`10.1.1.5/32 dev pod5`) has its destination as
    /// its neighbour: a gateway next hop, resolved in place like any other.
    fn key_of(
        p: &Prefix,
        route: &Route,
        ifindex: &impl Fn(&str) -> Option<IfIndex>,
    ) -> Option<NhKey> {
        let host = *p == Prefix::host(p.addr());
        let one = |nh: &crate::model::NextHop| {
            let i = ifindex(&nh.iface)?;
            Some(match nh.via {
                Some(ip) => NhKey::Gateway(i, ip),
                None if host => NhKey::Gateway(i, p.addr()),
                None => NhKey::Glean(i),
            })
        };
        match route.nexthops.as_slice() {
            [nh] => one(nh),
            many => {
                let members: Vec<NhKey> = many.iter().map(one).collect::<Option<_>>()?;
                Some(NhKey::Ecmp(members))
            }
        }
    }

    /// Makes the tables follow `diff`. `ifindex` gives an interface's logical index (None
    /// for an interface without one: its routes are not installed). Errors (a full table)
    /// are returned after the rest is applied; the model keeps the route.
    pub fn apply(
        &mut self,
        diff: &L3Diff,
        ifindex: impl Fn(&str) -> Option<IfIndex>,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        for &v in &diff.vrfs.added {
            if let std::collections::btree_map::Entry::Vacant(e) = self.vrfs.entry(v) {
                match Vrf::new() {
                    Ok(t) => {
                        e.insert(t);
                    }
                    Err(err) => errors.push(format!("vrf {v}: {err}")),
                }
            }
        }
        if let Some(c) = diff.neighbor_config {
            self.neigh_limit = c.limit as usize;
            self.neigh_age = std::time::Duration::from_secs(u64::from(c.age));
        }
        // Neighbours before routes, so that new gateways start resolved.
        for n in diff.neighbors.removed.iter() {
            if let Some(i) = ifindex(&n.0) {
                self.neighbors.remove(&(i, n.1));
                self.statics.remove(&(i, n.1));
            }
        }
        for n in diff.neighbors.added.iter().chain(&diff.neighbors.replaced) {
            if let Some(i) = ifindex(&n.iface) {
                self.neighbors.insert((i, n.ip), n.mac);
                self.statics.insert((i, n.ip));
            }
        }
        // Grown once for a bulk load, not rehashed a dozen times on the way.
        self.routes
            .reserve(diff.routes.values().map(|d| d.added.len()).sum());
        for ((vrf, _family), delta) in &diff.routes {
            for p in &delta.removed {
                self.uninstall(*vrf, p);
            }
            for (p, r) in delta.added.iter().chain(&delta.replaced) {
                if let Err(e) = self.install(*vrf, p, r, &ifindex) {
                    errors.push(format!("route {p} in vrf {vrf}: {e}"));
                }
            }
        }
        // Gateways whose neighbour came or went: rewrite their words (and groups').
        if !diff.neighbors.added.is_empty()
            || !diff.neighbors.replaced.is_empty()
            || !diff.neighbors.removed.is_empty()
        {
            self.rewrite_all();
        }
        for &v in &diff.vrfs.removed {
            if v != 0 {
                // The model refuses to delete a VRF with routes; its tables are empty.
                self.vrfs.remove(&v);
            }
        }
        errors
    }

    fn install(
        &mut self,
        vrf: u16,
        p: &Prefix,
        r: &Route,
        ifindex: &impl Fn(&str) -> Option<IfIndex>,
    ) -> Result<(), String> {
        let id = if r.origin == crate::model::Origin::Local {
            LOCAL
        } else {
            match Self::key_of(p, r, ifindex) {
                Some(k) => self.acquire(k)?,
                None => return Err("an interface of its next hops has no index".into()),
            }
        };
        let Some(t) = self.vrfs.get_mut(&vrf) else {
            self.release(id);
            return Err("no such vrf".into());
        };
        if let Err(e) = t.insert(p, id) {
            self.release(id);
            return Err(e.to_string());
        }
        if let Some(old) = self.routes.insert((vrf, *p), id) {
            if old != LOCAL {
                self.release(old);
            }
        }
        // A learned neighbour's host route of this prefix is replaced by the configured one.
        if *p == Prefix::host(p.addr()) {
            if let Some(h) = self.hosts.remove(&(vrf, p.addr())) {
                self.release(h);
            }
        }
        Ok(())
    }

    fn uninstall(&mut self, vrf: u16, p: &Prefix) {
        let Some(id) = self.routes.remove(&(vrf, *p)) else {
            return;
        };
        if let Some(t) = self.vrfs.get_mut(&vrf) {
            let _ = t.remove(p);
        }
        if id != LOCAL {
            self.release(id);
        }
    }

    fn rewrite_all(&self) {
        for (key, a) in &self.ids {
            self.write(key, a.id);
        }
    }

    /// Looks `a` up in VRF `vrf` as the workers do: the matched prefix and its next hops.
    pub fn lookup(&self, vrf: u16, a: IpAddr) -> Option<Lookup> {
        let m = self.vrfs.get(&vrf)?.lookup(a)?;
        let prefix = Prefix::of(a, m.len);
        if m.next_hop == LOCAL {
            return Some(Lookup {
                prefix,
                nexthops: vec![(None, None)],
                local: true,
            });
        }
        // A host route straight out of an interface names its destination as the neighbour.
        let host = prefix == Prefix::host(a);
        let one = |k: &NhKey| match k {
            NhKey::Glean(i) => (None, Some(*i)),
            NhKey::Gateway(i, ip) if host && *ip == a => (None, Some(*i)),
            NhKey::Gateway(i, ip) => (Some(*ip), Some(*i)),
            NhKey::Ecmp(_) => (None, None),
        };
        let nexthops = match self.keys.get(&m.next_hop)? {
            NhKey::Ecmp(members) => members.iter().map(one).collect(),
            k => vec![one(k)],
        };
        Some(Lookup {
            prefix,
            nexthops,
            local: false,
        })
    }

    /// The routed interfaces (set by the switch with each plan it publishes).
    pub fn set_ifaces(&mut self, ifaces: HashMap<IfIndex, IfaceInfo>) {
        // Neighbours learned on an interface that is gone or no longer routed go with it.
        let gone: Vec<(IfIndex, IpAddr)> = self
            .neighbors
            .keys()
            .filter(|(i, _)| !ifaces.contains_key(i))
            .filter(|k| !self.statics.contains(k))
            .copied()
            .collect();
        self.ifaces = ifaces;
        for (i, ip) in gone {
            self.forget(i, ip);
        }
    }

    /// An IPv4 address the router has in VRF `vrf` (for ARP requests out of an interface
    /// without one of its own).
    pub fn any_v4(&self, vrf: u16) -> Option<std::net::Ipv4Addr> {
        self.ifaces
            .values()
            .filter(|i| i.vrf == vrf)
            .find_map(|i| i.v4.first().map(|&(a, _)| a))
    }

    /// Routed interface `i`.
    pub fn iface(&self, i: IfIndex) -> Option<&IfaceInfo> {
        self.ifaces.get(&i)
    }

    /// What a packet to `dst` in VRF `vrf` waits for: the neighbours (interface, IP) its
    /// route's unresolved next hops need (the destination itself on a connected subnet, or
    /// the gateways).
    pub fn unresolved(&self, vrf: u16, dst: IpAddr) -> Vec<(IfIndex, IpAddr)> {
        let Some(m) = self.vrfs.get(&vrf).and_then(|v| v.lookup(dst)) else {
            return vec![];
        };
        let one = |k: &NhKey| match k {
            NhKey::Glean(i) => Some((*i, dst)),
            NhKey::Gateway(i, gw) => Some((*i, *gw)),
            NhKey::Ecmp(_) => None,
        };
        let want = match self.keys.get(&m.next_hop) {
            Some(NhKey::Ecmp(members)) => members.iter().filter_map(one).collect(),
            Some(k) => one(k).into_iter().collect(),
            None => vec![],
        };
        want.into_iter()
            .filter(|k| !self.neighbors.contains_key(k))
            .collect()
    }

    /// The MTU of the interface a packet to `dst` in VRF `vrf` leaves through.
    pub fn egress_mtu(&self, vrf: u16, dst: IpAddr) -> Option<u16> {
        let m = self.vrfs.get(&vrf)?.lookup(dst)?;
        let i = match self.keys.get(&m.next_hop)? {
            NhKey::Glean(i) | NhKey::Gateway(i, _) => *i,
            NhKey::Ecmp(members) => match members.first()? {
                NhKey::Glean(i) | NhKey::Gateway(i, _) => *i,
                NhKey::Ecmp(_) => return None,
            },
        };
        Some(self.ifaces.get(&i)?.mtu)
    }

    /// A neighbour seen by ARP: `ip` is at `mac` on interface `i`. Taken only for an IP in
    /// one of the interface's subnets, and never over a static entry. Returns whether the
    /// table changed. Gateways through it and its host route follow at once.
    pub fn learn(&mut self, i: IfIndex, ip: IpAddr, mac: [u8; 6]) -> bool {
        let Some(info) = self.ifaces.get(&i) else {
            return false;
        };
        let IpAddr::V4(v4) = ip else { return false };
        // On one of its subnets, or routed out of it (a `dev` route: a Calico pod's /32).
        let routed_here = || {
            let m = self.vrfs.get(&info.vrf).and_then(|v| v.lookup(ip));
            match m.and_then(|m| self.keys.get(&m.next_hop)) {
                Some(NhKey::Glean(x)) => *x == i,
                Some(NhKey::Gateway(x, gw)) => *x == i && *gw == ip,
                _ => false,
            }
        };
        if !(info.on_link(v4) || routed_here()) || self.statics.contains(&(i, ip)) {
            return false;
        }
        let known = self.neighbors.get(&(i, ip));
        if known.is_none() && self.heard.len() >= self.neigh_limit {
            // Full: the entries there stay (an ARP flood cannot push out known hosts).
            self.refused += 1;
            return false;
        }
        self.heard.insert((i, ip), std::time::Instant::now());
        if known == Some(&mac) {
            return false;
        }
        let vrf = info.vrf;
        self.neighbors.insert((i, ip), mac);
        // A host route through the neighbour (unless a configured route holds the prefix).
        let host = Prefix::host(ip);
        if !self.routes.contains_key(&(vrf, host)) && !self.hosts.contains_key(&(vrf, ip)) {
            if let Ok(id) = self.acquire(NhKey::Gateway(i, ip)) {
                match self.vrfs.get_mut(&vrf).map(|t| t.insert(&host, id)) {
                    Some(Ok(())) => {
                        self.hosts.insert((vrf, ip), id);
                    }
                    _ => self.release(id),
                }
            }
        }
        self.rewrite_all();
        true
    }

    /// Forgets learned neighbours not heard from for the configured age (they are
    /// resolved again when traffic needs them). Returns how many went.
    pub fn age(&mut self, now: std::time::Instant) -> usize {
        let old: Vec<(IfIndex, IpAddr)> = self
            .heard
            .iter()
            .filter(|(_, &t)| now.saturating_duration_since(t) > self.neigh_age)
            .map(|(k, _)| *k)
            .collect();
        for &(i, ip) in &old {
            self.forget(i, ip);
        }
        old.len()
    }

    /// Learned neighbours, and how many were refused because the table was full.
    pub fn learned(&self) -> (usize, u64) {
        (self.heard.len(), self.refused)
    }

    /// Forgets a learned neighbour (and its host route).
    pub fn forget(&mut self, i: IfIndex, ip: IpAddr) {
        self.heard.remove(&(i, ip));
        if self.statics.contains(&(i, ip)) || self.neighbors.remove(&(i, ip)).is_none() {
            return;
        }
        let vrfs: Vec<u16> = self
            .hosts
            .keys()
            .filter(|(_, a)| *a == ip)
            .map(|(v, _)| *v)
            .collect();
        for vrf in vrfs {
            if let Some(id) = self.hosts.remove(&(vrf, ip)) {
                // A configured route of the same prefix took the entry over meanwhile.
                if !self.routes.contains_key(&(vrf, Prefix::host(ip))) {
                    if let Some(t) = self.vrfs.get_mut(&vrf) {
                        let _ = t.remove(&Prefix::host(ip));
                    }
                }
                self.release(id);
            }
        }
        self.rewrite_all();
    }

    /// Every known neighbour: (interface, IP, MAC, static).
    pub fn neighbors(&self) -> Vec<(IfIndex, IpAddr, [u8; 6], bool)> {
        self.neighbors
            .iter()
            .map(|(&(i, ip), &mac)| (i, ip, mac, self.statics.contains(&(i, ip))))
            .collect()
    }

    /// Starts a grace period for the FIB groups retired so far (groups folded back when
    /// longer prefixes went), if any: once every worker has finished a poll begun after
    /// this (a plan publish that returned true), [`Router::end_grace`] makes them reusable.
    pub fn begin_grace(&mut self) -> Option<Vec<(u16, Grace, Grace)>> {
        let waiting = self
            .vrfs
            .values()
            .any(|v| v.v4.groups().1 > 0 || v.v6.groups().1 > 0);
        waiting.then(|| {
            self.vrfs
                .iter_mut()
                .map(|(&id, v)| (id, v.v4.begin_grace(), v.v6.begin_grace()))
                .collect()
        })
    }

    /// Ends a grace period begun by [`Router::begin_grace`].
    pub fn end_grace(&mut self, grace: Vec<(u16, Grace, Grace)>) {
        for (id, g4, g6) in grace {
            if let Some(v) = self.vrfs.get_mut(&id) {
                v.v4.end_grace(g4);
                v.v6.end_grace(g6);
            }
        }
    }

    /// Routes installed, and next-hop ids in use (tests).
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        (self.routes.len(), self.ids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Limits, Model};
    use std::net::Ipv4Addr;
    use vswitch_proto::v1 as pb;
    use vswitch_proto::v1::change::Change as C;

    const A: IfIndex = 1;
    const B: IfIndex = 2;

    fn ifindex(n: &str) -> Option<IfIndex> {
        match n {
            "a" => Some(A),
            "b" => Some(B),
            _ => None,
        }
    }

    /// Stages `changes` on `m` (replaced by the result) and applies the L3 diff to `r`.
    fn step(m: &mut Model, r: &mut Router, changes: Vec<C>) {
        let limits = Limits {
            run_dir: std::env::temp_dir(),
            fdb_capacity: 64,
        };
        let changes: Vec<pb::Change> = changes
            .into_iter()
            .map(|c| pb::Change { change: Some(c) })
            .collect();
        let s = m.stage(&changes, &limits).unwrap();
        assert!(r.apply(&s.diff.l3, ifindex).is_empty());
        *m = s.model;
    }

    fn null(name: &str) -> C {
        C::AddInterface(pb::AddInterfaceRequest {
            name: name.into(),
            r#type: "null".into(),
            args: Default::default(),
            vrf: None,
        })
    }

    fn addr(iface: &str, a: &str) -> C {
        C::AddAddress(pb::AddAddressRequest {
            iface: iface.into(),
            address: a.into(),
        })
    }

    fn route(prefix: &str, vias: &[&str]) -> C {
        C::AddRoute(pb::AddRouteRequest {
            prefix: prefix.into(),
            vrf: 0,
            nexthops: vias
                .iter()
                .map(|v| pb::NextHop {
                    via: (*v).into(),
                    iface: String::new(),
                })
                .collect(),
            onlink: false,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The next hop the workers would use for `dst` (ECMP resolved with `hash`).
    fn fwd(r: &Router, dst: &str, hash: u32) -> NextHop {
        let IpAddr::V4(a) = ip(dst) else { panic!() };
        let id = r.vrfs[&0].v4.fib().lookup(u32::from(a)).unwrap();
        r.nexthops.resolve(id, hash)
    }

    const MAC_GW: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

    #[test]
    fn routes_follow_diffs_and_neighbours() {
        let mut m = Model::new();
        let mut r = Router::new().unwrap();
        step(
            &mut m,
            &mut r,
            vec![
                null("a"),
                null("b"),
                addr("a", "10.0.0.1/24"),
                addr("b", "10.0.1.1/24"),
                route("10.9.0.0/16", &["10.0.0.254"]),
                route("0.0.0.0/0", &["10.0.0.254", "10.0.1.254"]),
            ],
        );
        // Connected, local, gateway not resolved yet, the ECMP default.
        assert_eq!(fwd(&r, "10.0.0.7", 0), NextHop::Resolve { iface: A });
        assert_eq!(fwd(&r, "10.0.0.1", 0), NextHop::Local);
        assert_eq!(fwd(&r, "10.9.1.1", 0), NextHop::Resolve { iface: A });
        let l = r.lookup(0, ip("10.9.1.1")).unwrap();
        assert_eq!(l.prefix.to_string(), "10.9.0.0/16");
        assert_eq!(l.nexthops, vec![(Some(ip("10.0.0.254")), Some(A))]);
        assert_eq!(r.unresolved(0, ip("10.9.1.1")), vec![(A, ip("10.0.0.254"))]);
        assert_eq!(r.lookup(0, ip("8.8.8.8")).unwrap().nexthops.len(), 2);

        // The gateway is learned (the slow path's ARP): its routes forward at once, and it
        // gets a host route; a neighbour off every subnet of the interface is refused.
        r.set_ifaces(HashMap::from([
            (
                A,
                IfaceInfo {
                    vrf: 0,
                    mac: [2, 0, 0, 0, 0, 1],
                    mtu: 1500,
                    v4: vec![(Ipv4Addr::new(10, 0, 0, 1), 24)],
                    proxy_arp: false,
                },
            ),
            (
                B,
                IfaceInfo {
                    vrf: 0,
                    mac: [2, 0, 0, 0, 0, 2],
                    mtu: 1400,
                    v4: vec![(Ipv4Addr::new(10, 0, 1, 1), 24)],
                    proxy_arp: false,
                },
            ),
        ]));
        assert!(r.learn(A, ip("10.0.0.254"), MAC_GW));
        assert!(!r.learn(A, ip("10.0.0.254"), MAC_GW), "nothing new");
        assert!(!r.learn(A, ip("192.168.0.1"), MAC_GW), "not on a's subnets");
        let gw = NextHop::Forward {
            iface: A,
            mac: MAC_GW,
        };
        assert_eq!(fwd(&r, "10.9.1.1", 0), gw);
        assert_eq!(fwd(&r, "10.0.0.254", 0), gw);
        assert_eq!(
            r.lookup(0, ip("10.0.0.254")).unwrap().prefix.to_string(),
            "10.0.0.254/32"
        );
        assert!(r.unresolved(0, ip("10.9.1.1")).is_empty());
        // ECMP: the group's member through a now forwards, the other still resolves.
        let ways: std::collections::HashSet<String> = (0..64u32)
            .map(|h| format!("{:?}", fwd(&r, "8.8.8.8", h.wrapping_mul(0x9e37_79b9))))
            .collect();
        assert_eq!(ways.len(), 2, "{ways:?}");
        assert_eq!(r.unresolved(0, ip("8.8.8.8")), vec![(B, ip("10.0.1.254"))]);
        assert_eq!(r.egress_mtu(0, ip("10.0.1.9")), Some(1400));

        // A static neighbour wins over ARP; forgetting a learned one removes its host route.
        step(
            &mut m,
            &mut r,
            vec![C::AddNeighbor(pb::AddNeighborRequest {
                iface: "b".into(),
                ip: "10.0.1.254".into(),
                mac: "02:00:00:00:01:fe".into(),
            })],
        );
        assert!(!r.learn(B, ip("10.0.1.254"), MAC_GW));
        assert!(r.unresolved(0, ip("8.8.8.8")).is_empty());
        // The learned table's limit (static entries do not count) and aging.
        r.neigh_limit = 2;
        assert!(r.learn(A, ip("10.0.0.7"), [2, 0, 0, 0, 0, 7]));
        assert!(
            !r.learn(A, ip("10.0.0.8"), [2, 0, 0, 0, 0, 8]),
            "table full"
        );
        assert_eq!(r.learned(), (2, 1));
        r.neigh_age = std::time::Duration::from_secs(1);
        let later = std::time::Instant::now() + std::time::Duration::from_secs(2);
        assert_eq!(r.age(later), 2);
        assert_eq!(r.learned().0, 0);
        assert_eq!(fwd(&r, "10.9.1.1", 0), NextHop::Resolve { iface: A });
        assert!(r.learn(A, ip("10.0.0.254"), MAC_GW));
        r.forget(A, ip("10.0.0.254"));
        assert_eq!(fwd(&r, "10.9.1.1", 0), NextHop::Resolve { iface: A });
        assert_eq!(
            r.lookup(0, ip("10.0.0.254")).unwrap().prefix.to_string(),
            "10.0.0.0/24"
        );

        // Deleting routes and addresses releases their next hops.
        let before = r.counts();
        step(
            &mut m,
            &mut r,
            vec![
                C::DeleteRoute(pb::DeleteRouteRequest {
                    prefix: "10.9.0.0/16".into(),
                    vrf: 0,
                }),
                C::DeleteRoute(pb::DeleteRouteRequest {
                    prefix: "0.0.0.0/0".into(),
                    vrf: 0,
                }),
            ],
        );
        assert_eq!(r.counts().0, before.0 - 2);
        assert!(r.lookup(0, ip("8.8.8.8")).is_none());
        assert!(r.lookup(0, ip("10.9.1.1")).is_none());
    }
}
