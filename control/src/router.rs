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
//! Out of an L3 tunnel (gre mode=l3, ipip: IP without Ethernet, no neighbour to resolve),
//! `Glean` and `Gateway` next hops are `Tunnel` words at once, carrying the IPv4 gateway
//! (the outer destination of a point-to-multipoint ipip tunnel).
//!
//! Thread safety: owned by the switch (under its lock).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    /// Learned neighbours past their age being probed, since when.
    probing: HashMap<(IfIndex, IpAddr), std::time::Instant>,
    /// Most learned neighbours (`neigh set limit=`), and their age (`age=`).
    neigh_limit: usize,
    neigh_age: std::time::Duration,
    /// Neighbours not learned because the table was full.
    refused: u64,
    /// Where learned and forgotten neighbours are told (Watch).
    events: Option<Arc<crate::events::Events>>,
}

/// A routed interface as the slow path sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    pub vrf: u16,
    pub mac: [u8; 6],
    pub mtu: u16,
    /// Its IPv4 addresses with their subnet lengths.
    pub v4: Vec<(Ipv4Addr, u8)>,
    /// Its IPv6 addresses (link-local ones too) with their subnet lengths.
    pub v6: Vec<(Ipv6Addr, u8)>,
    pub proxy_arp: bool,
    /// It carries IP packets without Ethernet (a gre l3 or ipip tunnel): next hops out of
    /// it need no neighbour.
    pub l3_tunnel: bool,
}

/// Whether `a` and `b` (`bits`-bit addresses in a u128) share their first `len` bits.
fn same_subnet(a: u128, b: u128, len: u8, bits: u32) -> bool {
    let len = u32::from(len).min(bits);
    len == 0 || (a ^ b) >> (bits - len) == 0
}

/// Whether `a` is an IPv6 link-local unicast address (fe80::/10).
pub fn is_link_local(a: Ipv6Addr) -> bool {
    u128::from(a) >> 118 == 0x3fa
}

impl IfaceInfo {
    /// Whether `ip` is in one of the interface's IPv4 subnets.
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        self.v4.iter().any(|&(a, len)| {
            same_subnet(u128::from(u32::from(a)), u128::from(u32::from(ip)), len, 32)
        })
    }

    /// The interface's address in `ip`'s subnet, else its first.
    pub fn source_for(&self, ip: Ipv4Addr) -> Option<Ipv4Addr> {
        self.v4
            .iter()
            .find(|&&(a, len)| {
                same_subnet(u128::from(u32::from(a)), u128::from(u32::from(ip)), len, 32)
            })
            .or(self.v4.first())
            .map(|&(a, _)| a)
    }

    /// Whether `ip` is on the interface's link: link-local, or in one of its IPv6 subnets.
    pub fn on_link6(&self, ip: Ipv6Addr) -> bool {
        is_link_local(ip)
            || self
                .v6
                .iter()
                .any(|&(a, len)| same_subnet(u128::from(a), u128::from(ip), len, 128))
    }

    /// The interface's link-local address: the configured one, else the modified EUI-64
    /// one of its MAC (RFC 4291 §2.5.1, appendix A), so that every routed interface has
    /// one (RFC 4291 §2.1) to send Neighbor Discovery from and be a gateway with.
    pub fn link_local(&self) -> Ipv6Addr {
        if let Some(&(a, _)) = self.v6.iter().find(|(a, _)| is_link_local(*a)) {
            return a;
        }
        let m = self.mac;
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 2,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }

    /// Whether `ip` is one of the interface's IPv6 addresses (its link-local one too).
    pub fn owns6(&self, ip: Ipv6Addr) -> bool {
        ip == self.link_local() || self.v6.iter().any(|&(a, _)| a == ip)
    }

    /// The address to send to `ip` from: the link-local one to a link-local destination,
    /// else the interface's address in `ip`'s subnet, else its first global one, else the
    /// link-local one.
    pub fn source_for6(&self, ip: Ipv6Addr) -> Ipv6Addr {
        if is_link_local(ip) {
            return self.link_local();
        }
        let global = || self.v6.iter().filter(|(a, _)| !is_link_local(*a));
        global()
            .find(|&&(a, len)| same_subnet(u128::from(a), u128::from(ip), len, 128))
            .or_else(|| global().next())
            .map_or_else(|| self.link_local(), |&(a, _)| a)
    }
}

/// How long a learned neighbour past its age is probed (unicast, about once a second)
/// before it is forgotten.
pub const PROBE_TIME: std::time::Duration = std::time::Duration::from_secs(3);

/// The router's sizes, for /metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Per VRF and family ("ipv4", "ipv6"): FIB entries (routes, connected, local and
    /// learned host routes) and second-level groups in use (1 KiB each).
    pub fibs: Vec<(u16, &'static str, usize, u32)>,
    pub neighbors_static: usize,
    pub neighbors_learned: usize,
    /// Neighbours not learned because the table was full.
    pub neighbors_refused: u64,
    /// Next-hop ids in use (neighbours, glean entries, ECMP groups).
    pub nexthops: usize,
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
            probing: HashMap::new(),
            neigh_limit: crate::model::neigh::DEFAULT_LIMIT as usize,
            neigh_age: std::time::Duration::from_secs(u64::from(crate::model::neigh::DEFAULT_AGE)),
            refused: 0,
            events: None,
        })
    }

    /// Tells `events` (Watch) about neighbours learned, changed and forgotten.
    pub fn set_events(&mut self, events: Arc<crate::events::Events>) {
        self.events = Some(events);
    }

    fn tell(&self, kind: &str, i: IfIndex, ip: IpAddr, mac: [u8; 6]) {
        if let Some(e) = &self.events {
            e.neighbor(kind, i, ip, mac);
        }
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

    /// Whether interface `i` is an L3 tunnel (routed, gre l3 or ipip).
    fn l3_tunnel(&self, i: IfIndex) -> bool {
        self.ifaces.get(&i).is_some_and(|x| x.l3_tunnel)
    }

    /// The word of next hop `key` as things stand.
    fn word(&self, key: &NhKey) -> NextHop {
        match key {
            NhKey::Glean(i) if self.l3_tunnel(*i) => NextHop::Tunnel {
                iface: *i,
                remote: None,
            },
            NhKey::Gateway(i, ip) if self.l3_tunnel(*i) => NextHop::Tunnel {
                iface: *i,
                remote: match ip {
                    IpAddr::V4(a) => Some(*a),
                    IpAddr::V6(_) => None,
                },
            },
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
                self.remove_hosts(i, n.1);
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
        self.static_hosts();
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
        // Next hops out of an interface that became or stopped being an L3 tunnel (routed
        // only once a route or address names it) change kind.
        let tunnels = |m: &HashMap<IfIndex, IfaceInfo>| {
            let mut v: Vec<IfIndex> = m
                .iter()
                .filter(|(_, x)| x.l3_tunnel)
                .map(|(i, _)| *i)
                .collect();
            v.sort_unstable();
            v
        };
        let changed = tunnels(&self.ifaces) != tunnels(&ifaces);
        self.ifaces = ifaces;
        for (i, ip) in gone {
            self.forget(i, ip);
        }
        if self.static_hosts() || changed {
            self.rewrite_all();
        }
    }

    /// Gives every static neighbour in a subnet of its routed interface the host route a
    /// learned one gets (else a packet to the neighbour itself would take the connected
    /// route, which resolves in the slow path, where the neighbour is already known and
    /// nothing is asked). One outside its interface's subnets (flannel's onlink gateway)
    /// gets none: as in Linux, a neighbour alone makes no address reachable, and it must
    /// not take over an address of another interface's subnet. Called after a diff and
    /// when the routed interfaces change (an interface's VRF and addresses are known only
    /// then). Returns whether a route was added.
    fn static_hosts(&mut self) -> bool {
        let want: Vec<(u16, IfIndex, IpAddr)> = self
            .statics
            .iter()
            .filter_map(|&(i, ip)| {
                let info = self.ifaces.get(&i)?;
                let on_link = match ip {
                    IpAddr::V4(a) => info.on_link(a),
                    IpAddr::V6(a) => info.on_link6(a),
                };
                on_link.then_some((info.vrf, i, ip))
            })
            .filter(|&(vrf, _, ip)| !self.hosts.contains_key(&(vrf, ip)))
            .collect();
        let mut added = false;
        for (vrf, i, ip) in want {
            added |= self.add_host(vrf, i, ip);
        }
        added
    }

    /// A host route to `ip` through itself as the neighbour on `i`, in `vrf`: none for a
    /// link-local address (the link's own), nor where a configured route holds the prefix
    /// or a host route is there already. Whether one was added.
    fn add_host(&mut self, vrf: u16, i: IfIndex, ip: IpAddr) -> bool {
        let host = Prefix::host(ip);
        let link_local = matches!(ip, IpAddr::V6(a) if is_link_local(a));
        if link_local
            || self.routes.contains_key(&(vrf, host))
            || self.hosts.contains_key(&(vrf, ip))
        {
            return false;
        }
        let Ok(id) = self.acquire(NhKey::Gateway(i, ip)) else {
            return false;
        };
        match self.vrfs.get_mut(&vrf).map(|t| t.insert(&host, id)) {
            Some(Ok(())) => {
                self.hosts.insert((vrf, ip), id);
                true
            }
            _ => {
                self.release(id);
                false
            }
        }
    }

    /// Removes the host routes to `ip` through the neighbour on `i` (in any VRF: the
    /// interface may be gone already).
    fn remove_hosts(&mut self, i: IfIndex, ip: IpAddr) {
        let ours: Vec<u16> = self
            .hosts
            .iter()
            .filter(|((_, a), id)| *a == ip && self.keys.get(id) == Some(&NhKey::Gateway(i, ip)))
            .map(|((v, _), _)| *v)
            .collect();
        for vrf in ours {
            self.drop_host(vrf, ip);
        }
    }

    /// Forgets the host route to `ip` in `vrf` that a neighbour gave, unless a configured
    /// route of the same prefix took the FIB entry over meanwhile, and releases its next hop.
    fn drop_host(&mut self, vrf: u16, ip: IpAddr) {
        if let Some(id) = self.hosts.remove(&(vrf, ip)) {
            if !self.routes.contains_key(&(vrf, Prefix::host(ip))) {
                if let Some(t) = self.vrfs.get_mut(&vrf) {
                    let _ = t.remove(&Prefix::host(ip));
                }
            }
            self.release(id);
        }
    }

    /// An IPv4 address the router has in VRF `vrf` (for ARP requests out of an interface
    /// without one of its own).
    pub fn any_v4(&self, vrf: u16) -> Option<Ipv4Addr> {
        self.ifaces
            .values()
            .filter(|i| i.vrf == vrf)
            .find_map(|i| i.v4.first().map(|&(a, _)| a))
    }

    /// A global IPv6 address the router has in VRF `vrf` (for ICMPv6 errors out of an
    /// interface without one of its own).
    pub fn any_v6(&self, vrf: u16) -> Option<Ipv6Addr> {
        self.ifaces.values().filter(|i| i.vrf == vrf).find_map(|i| {
            i.v6.iter()
                .find(|(a, _)| !is_link_local(*a))
                .map(|&(a, _)| a)
        })
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
            // Nothing to resolve out of an L3 tunnel.
            NhKey::Glean(i) | NhKey::Gateway(i, _) if self.l3_tunnel(*i) => None,
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

    /// A neighbour seen by ARP or Neighbor Discovery: `ip` is at `mac` on interface `i`.
    /// Taken only for an IP in one of the interface's subnets (or IPv6 link-local), and
    /// never over a static entry. Returns whether the table changed. Gateways through it
    /// and its host route (none for a link-local address: it is the link's own) follow at
    /// once.
    pub fn learn(&mut self, i: IfIndex, ip: IpAddr, mac: [u8; 6]) -> bool {
        let Some(info) = self.ifaces.get(&i) else {
            return false;
        };
        // On one of its subnets, or routed out of it (a `dev` route: a Calico pod's /32).
        let routed_here = || {
            let m = self.vrfs.get(&info.vrf).and_then(|v| v.lookup(ip));
            match m.and_then(|m| self.keys.get(&m.next_hop)) {
                Some(NhKey::Glean(x)) => *x == i,
                Some(NhKey::Gateway(x, gw)) => *x == i && *gw == ip,
                _ => false,
            }
        };
        let on_link = match ip {
            IpAddr::V4(a) => info.on_link(a),
            IpAddr::V6(a) => info.on_link6(a),
        };
        if !(on_link || routed_here()) || self.statics.contains(&(i, ip)) {
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
        self.tell(
            if known.is_some() {
                "changed"
            } else {
                "learned"
            },
            i,
            ip,
            mac,
        );
        self.neighbors.insert((i, ip), mac);
        // A host route through the neighbour (unless a configured route holds the prefix).
        self.add_host(vrf, i, ip);
        self.rewrite_all();
        true
    }

    /// Ages learned neighbours: one not heard from for the configured age is probed (the
    /// returned list: interface, IP, MAC, for a unicast ARP request or neighbour
    /// solicitation; it keeps forwarding meanwhile, as Linux's STALE and PROBE states do),
    /// and forgotten once it has been probed for [`PROBE_TIME`] without an answer (then
    /// resolved again when traffic needs it). Returns the neighbours to probe, and how
    /// many went.
    pub fn age(&mut self, now: std::time::Instant) -> (Vec<(IfIndex, IpAddr, [u8; 6])>, usize) {
        let mut probe = Vec::new();
        let mut old = Vec::new();
        for (&k, &t) in &self.heard {
            if now.saturating_duration_since(t) <= self.neigh_age {
                self.probing.remove(&k);
                continue;
            }
            let since = *self.probing.entry(k).or_insert(now);
            if now.saturating_duration_since(since) > PROBE_TIME {
                old.push(k);
            } else if let Some(&mac) = self.neighbors.get(&k) {
                probe.push((k.0, k.1, mac));
            }
        }
        for &(i, ip) in &old {
            self.forget(i, ip);
        }
        (probe, old.len())
    }

    /// Learned neighbours, and how many were refused because the table was full.
    pub fn learned(&self) -> (usize, u64) {
        (self.heard.len(), self.refused)
    }

    /// Forgets a learned neighbour (and its host route).
    pub fn forget(&mut self, i: IfIndex, ip: IpAddr) {
        self.heard.remove(&(i, ip));
        self.probing.remove(&(i, ip));
        if self.statics.contains(&(i, ip)) {
            return;
        }
        let Some(mac) = self.neighbors.remove(&(i, ip)) else {
            return;
        };
        self.tell("forgotten", i, ip, mac);
        let vrfs: Vec<u16> = self
            .hosts
            .keys()
            .filter(|(_, a)| *a == ip)
            .map(|(v, _)| *v)
            .collect();
        for vrf in vrfs {
            self.drop_host(vrf, ip);
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

    /// What /metrics shows of the router.
    pub fn stats(&self) -> RouterStats {
        let mut fibs = Vec::new();
        for (&vrf, t) in &self.vrfs {
            let (g4, _) = t.v4.groups();
            let (g6, _) = t.v6.groups();
            fibs.push((vrf, "ipv4", t.v4.len(), g4));
            fibs.push((vrf, "ipv6", t.v6.len(), g6));
        }
        RouterStats {
            fibs,
            neighbors_static: self.statics.len(),
            neighbors_learned: self.heard.len(),
            neighbors_refused: self.refused,
            nexthops: self.ids.len(),
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
    /// Bridge br0's routed interface.
    const BVI: IfIndex = 3;
    /// A gre mode=l3 tunnel and a point-to-multipoint ipip one.
    const GRE: IfIndex = 4;
    const TUNL: IfIndex = 5;

    fn ifindex(n: &str) -> Option<IfIndex> {
        match n {
            "a" => Some(A),
            "b" => Some(B),
            "bvi:br0" => Some(BVI),
            "gre0" => Some(GRE),
            "tunl0" => Some(TUNL),
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
            attachment: None,
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

    /// A bridge's routed interface is a routed interface like any other: its address's
    /// connected and local routes, neighbours learned on it, routes through it.
    #[test]
    fn a_bridges_routed_interface_routes() {
        let mut m = Model::new();
        let mut r = Router::new().unwrap();
        step(
            &mut m,
            &mut r,
            vec![
                C::AddBridge(pb::AddBridgeRequest {
                    name: "br0".into(),
                    ..Default::default()
                }),
                null("a"),
                addr("a", "10.0.0.1/24"),
                addr("bvi:br0", "10.9.0.1/24"),
                route("10.10.0.0/16", &["10.9.0.254"]),
            ],
        );
        assert_eq!(fwd(&r, "10.9.0.7", 0), NextHop::Resolve { iface: BVI });
        assert_eq!(fwd(&r, "10.9.0.1", 0), NextHop::Local);
        assert_eq!(fwd(&r, "10.10.1.1", 0), NextHop::Resolve { iface: BVI });
        r.set_ifaces(HashMap::from([(
            BVI,
            IfaceInfo {
                vrf: 0,
                mac: crate::model::bridge::bvi_mac("br0"),
                mtu: 1500,
                v4: vec![(Ipv4Addr::new(10, 9, 0, 1), 24)],
                v6: vec![],
                proxy_arp: false,
                l3_tunnel: false,
            },
        )]));
        assert!(r.learn(BVI, ip("10.9.0.254"), MAC_GW));
        let gw = NextHop::Forward {
            iface: BVI,
            mac: MAC_GW,
        };
        assert_eq!(fwd(&r, "10.10.1.1", 0), gw);
        assert_eq!(fwd(&r, "10.9.0.254", 0), gw);
        assert_eq!(r.egress_mtu(0, ip("10.10.1.1")), Some(1500));
    }

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
                    v6: vec![],
                    proxy_arp: false,
                    l3_tunnel: false,
                },
            ),
            (
                B,
                IfaceInfo {
                    vrf: 0,
                    mac: [2, 0, 0, 0, 0, 2],
                    mtu: 1400,
                    v4: vec![(Ipv4Addr::new(10, 0, 1, 1), 24)],
                    v6: vec![],
                    proxy_arp: false,
                    l3_tunnel: false,
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
        // Packets to the static neighbour itself forward through its host route (not the
        // connected route, which would resolve what is already known).
        let static_nh = NextHop::Forward {
            iface: B,
            mac: [2, 0, 0, 0, 1, 0xfe],
        };
        assert_eq!(fwd(&r, "10.0.1.254", 0), static_nh);
        assert_eq!(
            r.lookup(0, ip("10.0.1.254")).unwrap().prefix.to_string(),
            "10.0.1.254/32"
        );
        // The learned table's limit (static entries do not count) and aging.
        r.neigh_limit = 2;
        assert!(r.learn(A, ip("10.0.0.7"), [2, 0, 0, 0, 0, 7]));
        assert!(
            !r.learn(A, ip("10.0.0.8"), [2, 0, 0, 0, 0, 8]),
            "table full"
        );
        assert_eq!(r.learned(), (2, 1));
        r.neigh_age = std::time::Duration::from_secs(1);
        let ms = std::time::Duration::from_millis;
        let t0 = std::time::Instant::now();
        let (probe, gone) = r.age(t0 + ms(2000));
        assert_eq!(
            (probe.len(), gone),
            (2, 0),
            "past the age: probed, still there"
        );
        assert_eq!(
            fwd(&r, "10.9.1.1", 0),
            NextHop::Forward {
                iface: A,
                mac: MAC_GW
            }
        );
        // An answer refreshes it (learn notes the time); silence forgets it.
        assert!(!r.learn(A, ip("10.0.0.254"), MAC_GW));
        assert!(r.heard[&(A, ip("10.0.0.254"))] >= t0);
        r.heard.insert((A, ip("10.0.0.254")), t0 + ms(2000));
        let (probe, gone) = r.age(t0 + ms(2500));
        assert_eq!(probe, vec![(A, ip("10.0.0.7"), [2, 0, 0, 0, 0, 7])]);
        assert_eq!(gone, 0);
        let (probe, gone) = r.age(t0 + ms(4500));
        assert_eq!((probe.len(), gone), (2, 0), "both probed");
        let (probe, gone) = r.age(t0 + ms(5500));
        assert_eq!(
            (probe, gone),
            (vec![(A, ip("10.0.0.254"), MAC_GW)], 1),
            "10.0.0.7 went after 3 s of probes, the gateway is probed"
        );
        let (_, gone) = r.age(t0 + ms(9000));
        assert_eq!(gone, 1);
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

    /// Next hops out of L3 tunnels (gre l3, ipip) need no neighbour: once the interfaces
    /// are known to be such tunnels their words are Tunnel ones, carrying the IPv4 gateway,
    /// and nothing waits to be resolved.
    #[test]
    fn next_hops_out_of_l3_tunnels_are_ready_at_once() {
        let mut m = Model::new();
        let mut r = Router::new().unwrap();
        let tunnel = |name: &str, kind: &str, remotes: &[&str]| {
            C::AddTunnel(pb::AddTunnelRequest {
                name: name.into(),
                kind: kind.into(),
                local: "192.168.44.1".into(),
                remotes: remotes.iter().map(|r| r.to_string()).collect(),
                ..Default::default()
            })
        };
        let onlink = |prefix: &str, via: &str, dev: &str| {
            C::AddRoute(pb::AddRouteRequest {
                prefix: prefix.into(),
                vrf: 0,
                nexthops: vec![pb::NextHop {
                    via: via.into(),
                    iface: dev.into(),
                }],
                onlink: true,
            })
        };
        let dev = |prefix: &str, dev: &str| onlink(prefix, "", dev);
        step(
            &mut m,
            &mut r,
            vec![
                null("a"),
                addr("a", "192.168.44.1/24"),
                tunnel("gre0", "gre", &["192.168.44.9"]),
                tunnel("tunl0", "ipip", &[]),
                onlink("10.250.1.0/24", "192.168.44.2", "tunl0"),
                dev("10.250.3.0/24", "tunl0"),
                dev("10.8.0.0/16", "gre0"),
                onlink("10.7.0.0/16", "10.7.0.1", "gre0"),
            ],
        );
        // Until the switch says which interfaces are L3 tunnels they look like any other.
        assert_eq!(fwd(&r, "10.250.1.5", 0), NextHop::Resolve { iface: TUNL });
        let info = |l3_tunnel| IfaceInfo {
            vrf: 0,
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1480,
            v4: vec![],
            v6: vec![],
            proxy_arp: false,
            l3_tunnel,
        };
        r.set_ifaces(HashMap::from([(GRE, info(true)), (TUNL, info(true))]));
        let tun = |iface, remote: Option<[u8; 4]>| NextHop::Tunnel {
            iface,
            remote: remote.map(Ipv4Addr::from),
        };
        assert_eq!(fwd(&r, "10.250.1.5", 0), tun(TUNL, Some([192, 168, 44, 2])));
        assert_eq!(fwd(&r, "10.250.3.5", 0), tun(TUNL, None));
        assert_eq!(fwd(&r, "10.8.1.1", 0), tun(GRE, None));
        assert_eq!(fwd(&r, "10.7.1.1", 0), tun(GRE, Some([10, 7, 0, 1])));
        for dst in ["10.250.1.5", "10.250.3.5", "10.8.1.1", "10.7.1.1"] {
            assert_eq!(r.unresolved(0, ip(dst)), vec![], "{dst}");
        }
        assert_eq!(r.egress_mtu(0, ip("10.250.1.5")), Some(1480));
        // A route added later through a known tunnel starts as one.
        step(
            &mut m,
            &mut r,
            vec![onlink("10.250.2.0/24", "192.168.44.3", "tunl0")],
        );
        assert_eq!(fwd(&r, "10.250.2.1", 0), tun(TUNL, Some([192, 168, 44, 3])));
        // An interface that stops being one goes back to resolving.
        r.set_ifaces(HashMap::from([(GRE, info(false)), (TUNL, info(true))]));
        assert_eq!(fwd(&r, "10.8.1.1", 0), NextHop::Resolve { iface: GRE });
        assert_eq!(fwd(&r, "10.250.1.5", 0), tun(TUNL, Some([192, 168, 44, 2])));
    }

    /// flannel's layout: a /32 on the interface, an onlink route through a gateway outside
    /// it and a static neighbour for that gateway. The route forwards to the neighbour's
    /// MAC; the neighbour adds no host route of its own, and one on `a` in `b`'s subnet does
    /// not take `b`'s address over.
    #[test]
    fn an_onlink_gateway_resolves_from_a_static_neighbour_off_every_subnet() {
        let mut m = Model::new();
        let mut r = Router::new().unwrap();
        let mac = [2, 0, 0, 0, 1, 1];
        step(
            &mut m,
            &mut r,
            vec![
                null("a"),
                null("b"),
                addr("a", "10.244.0.0/32"),
                addr("b", "10.0.1.1/24"),
                C::AddNeighbor(pb::AddNeighborRequest {
                    iface: "a".into(),
                    ip: "10.244.1.0".into(),
                    mac: "02:00:00:00:01:01".into(),
                }),
                C::AddNeighbor(pb::AddNeighborRequest {
                    iface: "a".into(),
                    ip: "10.0.1.9".into(),
                    mac: "02:00:00:00:01:09".into(),
                }),
                C::AddRoute(pb::AddRouteRequest {
                    prefix: "10.244.1.0/24".into(),
                    vrf: 0,
                    nexthops: vec![pb::NextHop {
                        via: "10.244.1.0".into(),
                        iface: "a".into(),
                    }],
                    onlink: true,
                }),
            ],
        );
        let info = |v4| IfaceInfo {
            vrf: 0,
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1450,
            v4,
            v6: vec![],
            proxy_arp: false,
            l3_tunnel: false,
        };
        r.set_ifaces(HashMap::from([
            (A, info(vec![(Ipv4Addr::new(10, 244, 0, 0), 32)])),
            (B, info(vec![(Ipv4Addr::new(10, 0, 1, 1), 24)])),
        ]));
        let via = NextHop::Forward { iface: A, mac };
        assert_eq!(fwd(&r, "10.244.1.7", 0), via);
        assert_eq!(fwd(&r, "10.244.1.0", 0), via);
        assert!(r.unresolved(0, ip("10.244.1.7")).is_empty());
        let l = r.lookup(0, ip("10.244.1.0")).unwrap();
        assert_eq!(
            l.prefix.to_string(),
            "10.244.1.0/24",
            "no host route of its own"
        );
        assert_eq!(fwd(&r, "10.0.1.9", 0), NextHop::Resolve { iface: B });
        assert_eq!(
            r.lookup(0, ip("10.0.1.9")).unwrap().prefix.to_string(),
            "10.0.1.0/24"
        );
        // Once a's subnets hold it, it gets its host route as any static neighbour does.
        step(&mut m, &mut r, vec![addr("a", "10.244.0.1/16")]);
        r.set_ifaces(HashMap::from([
            (
                A,
                info(vec![
                    (Ipv4Addr::new(10, 244, 0, 0), 32),
                    (Ipv4Addr::new(10, 244, 0, 1), 16),
                ]),
            ),
            (B, info(vec![(Ipv4Addr::new(10, 0, 1, 1), 24)])),
        ]));
        let l = r.lookup(0, ip("10.244.1.0")).unwrap();
        assert_eq!(l.prefix.to_string(), "10.244.1.0/32");
        assert_eq!(fwd(&r, "10.244.1.0", 0), via);
    }
}
