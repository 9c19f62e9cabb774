//! A small rtnetlink (NETLINK_ROUTE) client: create and delete veth pairs (one end straight
//! in another network namespace), set a link's MTU, MAC and up flag, add and list addresses
//! and main-table routes. Made for a CNI plugin wiring a pod's interface.
//!
//! Every request carries `NLM_F_ACK`; the reply is read until the ACK (or, for a dump,
//! `NLMSG_DONE`) of that request's sequence number, and replies of other sequence numbers
//! are skipped. A refusal becomes an [`io::Error`] of the errno's kind whose inner error is a
//! [`NetlinkError`] (operation, object, errno, the kernel's extended-ack text if any).
//!
//! Replies are parsed by pure, bounds-checked functions over byte slices (`messages`,
//! `attrs`, `parse_link`, `parse_addr`, `parse_route`, `parse_error`): malformed input ends
//! the walk or yields `None`, never a panic or a read past the slice.
//! Constants: libc's where it exports them for Linux (`RTM_*`, `RTA_*`, `RTN_*`, `RT_*`),
//! the others spelled here from the uapi headers (linux/netlink.h, if_link.h, if_addr.h,
//! veth.h, rtnetlink.h) as in `sys.rs`.

use std::fmt;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_ACK: u16 = 0x04;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = 0x3fff;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u8 = 0x02;
const RTNH_F_ONLINK: u32 = 4;
/// Bytes of the receive buffer: more than any one rtnetlink datagram of a dump.
const RECV_BUF: usize = 64 << 10;

/// An rtnetlink socket bound in one network namespace; requests act on that namespace.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// One end of a veth pair for [`Netlink::add_veth`]; `None` keeps the kernel's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethEnd {
    pub name: String,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
}

/// A link as [`Netlink::link`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    /// The hardware address if it is 6 bytes long (None for a tun, for instance).
    pub mac: Option<[u8; 6]>,
    /// `IFF_UP` (administratively up).
    pub up: bool,
    /// `IFLA_INFO_KIND`: "veth", "tun", ...; None for a physical device.
    pub kind: Option<String>,
}

/// A unicast route of the main table. `dst` with `prefix_len` 0 is a default route; no
/// `gateway` makes it a scope-link route; `onlink` is `RTNH_F_ONLINK` (the gateway is taken to
/// be on `dev`'s link even if no address of it covers the gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
    pub dev: Option<u32>,
    pub onlink: bool,
}

/// The kernel refused a request: the inner error of the [`io::Error`] every method returns
/// then (its kind is the errno's). `Display`: "add veth a/b: File exists (os error 17)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetlinkError {
    /// The operation and its object, e.g. "add veth vsabc/eth0".
    pub op: String,
    /// The positive errno.
    pub errno: i32,
    /// The kernel's extended-ack message, if it sent one.
    pub detail: Option<String>,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = io::Error::from_raw_os_error(self.errno);
        write!(f, "{}: {os}", self.op)?;
        match &self.detail {
            Some(d) => write!(f, " ({d})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for NetlinkError {}

impl NetlinkError {
    /// The errno of an error that [`Netlink`] returned for a kernel refusal or a system call.
    pub fn errno(e: &io::Error) -> Option<i32> {
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<NetlinkError>());
        inner.map(|n| n.errno).or_else(|| e.raw_os_error())
    }

    fn io(op: String, errno: i32, detail: Option<String>) -> io::Error {
        let kind = io::Error::from_raw_os_error(errno).kind();
        io::Error::new(kind, NetlinkError { op, errno, detail })
    }
}

/// `e` with `op` in front of its message, kind and errno kept.
fn ctx(op: impl Into<String>, e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(errno) => NetlinkError::io(op.into(), errno, None),
        None => io::Error::new(e.kind(), format!("{}: {e}", op.into())),
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A name the kernel takes for a link, checked here so a bad one is not sent.
fn check_name(name: &str) -> io::Result<()> {
    let checked = crate::sys::ifname(name);
    checked.map(drop).map_err(|e| invalid(e.to_string()))
}

/// A request being built: the netlink header, a family header, attributes.
struct Req {
    buf: Vec<u8>,
}

impl Req {
    fn new(ty: u16, flags: u16) -> Req {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        Req { buf }
    }

    /// Appends `b` and pads to 4 bytes.
    fn put(&mut self, b: &[u8]) -> &mut Req {
        self.buf.extend_from_slice(b);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
        self
    }

    fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Req {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.put(data)
    }

    fn u32(&mut self, ty: u16, v: u32) -> &mut Req {
        self.attr(ty, &v.to_ne_bytes())
    }

    fn str(&mut self, ty: u16, s: &str) -> &mut Req {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(ty, &b)
    }

    /// Opens a nested attribute; returns where it starts, for `end`.
    fn nest(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.attr(ty | NLA_F_NESTED, &[]);
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// The finished message with sequence number `seq`.
    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

/// The kernel's netlink address (port 0); bound to, it has the kernel pick the port.
fn nl_addr() -> (libc::sockaddr_nl, libc::socklen_t) {
    // SAFETY: sockaddr_nl is plain data; all zero is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    let len = std::mem::size_of::<libc::sockaddr_nl>();
    (sa, len as libc::socklen_t)
}

fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut m = [0u8; 16]; // family AF_UNSPEC, type 0
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

/// The address family byte and the longest prefix, of IPv4 or IPv6.
fn family(v6: bool) -> (u8, u8) {
    [(libc::AF_INET as u8, 32), (libc::AF_INET6 as u8, 128)][v6 as usize]
}

fn ip_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// One netlink message of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Msg<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    body: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The messages of a datagram; a malformed header yields one `Err` and ends the walk.
fn messages(buf: &[u8]) -> impl Iterator<Item = Result<Msg<'_>, &'static str>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = u32_at(rest, 0).map_or(0, |l| l as usize);
        let (Some(ty), Some(flags), Some(seq)) =
            (u16_at(rest, 4), u16_at(rest, 6), u32_at(rest, 8))
        else {
            rest = &[];
            return Some(Err("truncated netlink header"));
        };
        if len < NLMSG_HDRLEN || len > rest.len() {
            rest = &[];
            return Some(Err("bad netlink message length"));
        }
        let body = &rest[NLMSG_HDRLEN..len];
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some(Ok(Msg {
            ty,
            flags,
            seq,
            body,
        }))
    })
}

/// The attributes in `buf` as (type without the nested / byte-order flags, payload); the
/// walk ends at the first malformed one.
fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let len = u16_at(rest, 0)? as usize;
        let ty = u16_at(rest, 2)? & NLA_TYPE_MASK;
        let data = rest.get(4..len)?;
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some((ty, data))
    })
}

fn attr_str(b: &[u8]) -> String {
    let b = b.split(|&c| c == 0).next().unwrap_or(b);
    String::from_utf8_lossy(b).into_owned()
}

fn attr_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.try_into().ok()?))
}

fn attr_ip(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))),
        _ => None,
    }
}

/// An `RTM_NEWLINK` body (`ifinfomsg` and attributes); None if too short or nameless.
fn parse_link(body: &[u8]) -> Option<Link> {
    let index = u32_at(body, 4)?;
    let flags = u32_at(body, 8)?;
    let (mut name, mut mtu, mut mac, mut kind) = (None, 0, None, None);
    for (ty, data) in attrs(body.get(16..)?) {
        match ty {
            IFLA_IFNAME => name = Some(attr_str(data)),
            IFLA_MTU => mtu = attr_u32(data).unwrap_or(0),
            IFLA_ADDRESS => mac = data.try_into().ok(),
            IFLA_LINKINFO => {
                kind = attrs(data)
                    .find(|a| a.0 == IFLA_INFO_KIND)
                    .map(|a| attr_str(a.1));
            }
            _ => {}
        }
    }
    let up = flags & libc::IFF_UP as u32 != 0;
    Some(Link {
        index,
        name: name?,
        mtu,
        mac,
        up,
        kind,
    })
}

/// An `RTM_NEWADDR` body: (interface index, address, prefix length).
fn parse_addr(body: &[u8]) -> Option<(u32, IpAddr, u8)> {
    let prefix = *body.get(1)?;
    let index = u32_at(body, 4)?;
    let (mut local, mut address) = (None, None);
    for (ty, data) in attrs(body.get(8..)?) {
        match ty {
            IFA_LOCAL => local = attr_ip(data),
            IFA_ADDRESS => address = attr_ip(data),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on a point-to-point
    // link, and the only one IPv6 usually sends.
    Some((index, local.or(address)?, prefix))
}

/// An `RTM_NEWROUTE` body: Some((table, route)) for a unicast route.
fn parse_route(body: &[u8]) -> Option<(u32, Route)> {
    let (fam, prefix_len, table, ty) =
        (*body.first()?, *body.get(1)?, *body.get(4)?, *body.get(7)?);
    let flags = u32_at(body, 8)?;
    let v6 = match fam as i32 {
        libc::AF_INET => false,
        libc::AF_INET6 => true,
        _ => return None,
    };
    if ty != libc::RTN_UNICAST {
        return None;
    }
    let dst = [Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()][v6 as usize];
    let onlink = flags & RTNH_F_ONLINK != 0;
    let (gateway, dev) = (None, None);
    let mut r = Route {
        dst,
        prefix_len,
        gateway,
        dev,
        onlink,
    };
    let mut table = u32::from(table);
    for (ty, data) in attrs(body.get(12..)?) {
        match ty {
            libc::RTA_DST => r.dst = attr_ip(data)?,
            libc::RTA_GATEWAY => r.gateway = attr_ip(data),
            libc::RTA_OIF => r.dev = attr_u32(data),
            libc::RTA_TABLE => table = attr_u32(data).unwrap_or(table),
            _ => {}
        }
    }
    Some((table, r))
}

/// An `NLMSG_ERROR` message: (errno, 0 for an ACK, and the extended-ack text if any).
fn parse_error(m: &Msg<'_>) -> Option<(i32, Option<String>)> {
    let errno = (u32_at(m.body, 0)? as i32)
        .checked_neg()
        .filter(|&e| e >= 0)?;
    // The request's header follows, alone if the kernel capped it, else the whole request.
    let echoed = match m.flags & NLM_F_CAPPED {
        0 => (u32_at(m.body, 4)? as usize).checked_next_multiple_of(4)?,
        _ => NLMSG_HDRLEN,
    };
    let tlvs = match m.flags & NLM_F_ACK_TLVS {
        0 => &[][..],
        _ => m.body.get(echoed.checked_add(4)?..).unwrap_or(&[]),
    };
    let detail = attrs(tlvs).find(|a| a.0 == NLMSGERR_ATTR_MSG);
    Some((errno, detail.map(|a| attr_str(a.1))))
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let (ty, proto) = (libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE);
        // SAFETY: plain socket(2); the returned descriptor is owned by nothing else yet.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, ty, proto) };
        if fd < 0 {
            return Err(ctx("socket(NETLINK_ROUTE)", io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor that only this OwnedFd will close.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let (sa, len) = nl_addr();
        let sa = (&sa as *const libc::sockaddr_nl).cast();
        // SAFETY: `sa` is a valid sockaddr_nl of `len` bytes, read during the call only.
        if unsafe { libc::bind(fd.as_raw_fd(), sa, len) } < 0 {
            return Err(ctx("bind(NETLINK_ROUTE)", io::Error::last_os_error()));
        }
        // Error ACKs without the echoed request, with the kernel's message; both optional
        // (kernels before 4.12 lack extended ACKs), so failures are ignored.
        let _ = crate::sys::setsockopt(fd.as_raw_fd(), libc::SOL_NETLINK, NETLINK_CAP_ACK, &1i32);
        let _ = crate::sys::setsockopt(fd.as_raw_fd(), libc::SOL_NETLINK, NETLINK_EXT_ACK, &1i32);
        let buf = vec![0; RECV_BUF];
        Ok(Netlink { fd, seq: 0, buf })
    }

    /// A socket in the network namespace of the file `netns` (`/run/netns/X`,
    /// `/proc/PID/ns/net`). A short-lived thread enters the namespace and creates the socket
    /// there; the socket keeps acting on that namespace, and the caller's thread never moves.
    /// Needs CAP_SYS_ADMIN; a file that is no network namespace is `InvalidInput`.
    pub fn open_in(netns: &Path) -> io::Result<Netlink> {
        let shown = netns.display();
        let ns = File::open(netns).map_err(|e| ctx(format!("open netns {shown}"), e))?;
        let spawned = std::thread::scope(|s| {
            let t = std::thread::Builder::new()
                .name("netns-netlink".into())
                .spawn_scoped(s, || {
                    // SAFETY: setns(2) on this thread only, with a descriptor open for the call;
                    // the thread ends after creating the socket, nothing else runs in it.
                    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        let e = io::Error::last_os_error();
                        if e.raw_os_error() == Some(libc::EINVAL) {
                            return Err(invalid(format!("{shown} is not a network namespace")));
                        }
                        return Err(ctx(format!("setns {shown}"), e));
                    }
                    Netlink::open()
                })?;
            t.join()
                .map_err(|_| io::Error::other("netns thread panicked"))
        });
        spawned?
    }

    fn request(
        &mut self,
        req: &mut Req,
        op: &dyn Fn() -> String,
        each: &mut dyn FnMut(u16, &[u8]),
    ) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let msg = req.finish(seq);
        let (fd, (sa, len)) = (self.fd.as_raw_fd(), nl_addr());
        let sa = (&sa as *const libc::sockaddr_nl).cast();
        // SAFETY: `msg` and `sa` are valid for reads for the call; the kernel keeps no pointer.
        if unsafe { libc::sendto(fd, msg.as_ptr().cast(), msg.len(), 0, sa, len) } < 0 {
            return Err(ctx(format!("{}: send", op()), io::Error::last_os_error()));
        }
        loop {
            let (p, cap) = (self.buf.as_mut_ptr().cast(), self.buf.len());
            // SAFETY: `p` is valid for writes of `cap` bytes; with MSG_TRUNC recv returns the
            // datagram's real length (checked below) but never writes past `cap`.
            let n = unsafe { libc::recv(fd, p, cap, libc::MSG_TRUNC) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ctx(format!("{}: recv", op()), e));
            }
            let n = n as usize;
            if n > cap {
                return Err(io::Error::other(format!("{}: {n}-byte reply cut", op())));
            }
            for m in messages(&self.buf[..n]) {
                let bad =
                    |why| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", op()));
                let m = m.map_err(bad)?;
                if m.seq != seq {
                    continue; // a late reply to an earlier request
                }
                let fail = |errno, detail| Err(NetlinkError::io(op(), errno, detail));
                if m.flags & NLM_F_DUMP_INTR != 0 {
                    return fail(libc::EINTR, Some("dump interrupted by a change".into()));
                }
                match m.ty {
                    NLMSG_ERROR => match parse_error(&m) {
                        Some((0, _)) => return Ok(()),
                        Some((errno, detail)) => return fail(errno, detail),
                        None => return Err(bad("malformed NLMSG_ERROR")),
                    },
                    NLMSG_DONE => match u32_at(m.body, 0).map(|e| (e as i32).wrapping_neg()) {
                        Some(errno) if errno > 0 => return fail(errno, None),
                        _ => return Ok(()),
                    },
                    NLMSG_OVERRUN => return Err(bad("NLMSG_OVERRUN")),
                    NLMSG_NOOP => {}
                    ty => each(ty, m.body),
                }
            }
        }
    }

    /// A dump (retried while a concurrent change interrupts it), each message through `parse`.
    fn dump<T>(
        &mut self,
        ty: u16,
        fam: &[u8],
        op: &str,
        parse: impl Fn(&[u8]) -> Option<T>,
    ) -> io::Result<Vec<T>> {
        let mut tries = 0;
        loop {
            let mut out = Vec::new();
            let r = self.request(
                Req::new(ty, NLM_F_DUMP).put(fam),
                &|| op.to_string(),
                &mut |_, b| out.extend(parse(b)),
            );
            match r {
                Err(e) if NetlinkError::errno(&e) == Some(libc::EINTR) && tries < 5 => tries += 1,
                r => return r.map(|()| out),
            }
        }
    }

    /// The link called `name`; None if there is none (ENODEV).
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        check_name(name)?;
        let mut req = Req::new(libc::RTM_GETLINK, 0);
        req.put(&ifinfomsg(0, 0, 0)).str(IFLA_IFNAME, name);
        let mut link = None;
        let r = self.request(&mut req, &|| format!("get link {name}"), &mut |ty, b| {
            if ty == libc::RTM_NEWLINK {
                link = link.take().or_else(|| parse_link(b));
            }
        });
        match r {
            Err(e) if NetlinkError::errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
            Ok(()) => Ok(link),
        }
    }

    /// Creates the veth pair `host`–`peer`: `host` in this socket's namespace, `peer` in
    /// `peer_netns` (a namespace file's descriptor) or here too. Either name taken gives
    /// `AlreadyExists`. Both ends are left down.
    pub fn add_veth(
        &mut self,
        host: &VethEnd,
        peer: &VethEnd,
        peer_netns: Option<BorrowedFd<'_>>,
    ) -> io::Result<()> {
        check_name(&host.name)?;
        check_name(&peer.name)?;
        let end = |req: &mut Req, e: &VethEnd| {
            req.str(IFLA_IFNAME, &e.name);
            if let Some(mtu) = e.mtu {
                req.u32(IFLA_MTU, mtu);
            }
            if let Some(mac) = e.mac {
                req.attr(IFLA_ADDRESS, &mac);
            }
        };
        let mut req = Req::new(libc::RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        req.put(&ifinfomsg(0, 0, 0));
        end(&mut req, host);
        let info = req.nest(IFLA_LINKINFO);
        req.str(IFLA_INFO_KIND, "veth");
        let data = req.nest(IFLA_INFO_DATA);
        let p = req.nest(VETH_INFO_PEER);
        req.put(&ifinfomsg(0, 0, 0));
        end(&mut req, peer);
        if let Some(fd) = peer_netns {
            req.u32(IFLA_NET_NS_FD, fd.as_raw_fd() as u32);
        }
        req.end(p);
        req.end(data);
        req.end(info);
        let op = || format!("add veth {}/{}", host.name, peer.name);
        self.request(&mut req, &op, &mut |_, _| {})
    }

    fn set_link(
        &mut self,
        index: u32,
        flags: u32,
        change: u32,
        what: &str,
        attr: Option<(u16, &[u8])>,
    ) -> io::Result<()> {
        let mut req = Req::new(libc::RTM_NEWLINK, 0);
        req.put(&ifinfomsg(index, flags, change));
        if let Some((ty, data)) = attr {
            req.attr(ty, data);
        }
        let op = || format!("{what} of link {index}");
        self.request(&mut req, &op, &mut |_, _| {})
    }

    /// Sets link `index` administratively up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let up = libc::IFF_UP as u32;
        self.set_link(index, up, up, "set up", None)
    }

    /// Sets the MTU of link `index`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> io::Result<()> {
        self.set_link(index, 0, 0, "set mtu", Some((IFLA_MTU, &mtu.to_ne_bytes())))
    }

    /// Sets the MAC address of link `index`.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> io::Result<()> {
        self.set_link(index, 0, 0, "set mac", Some((IFLA_ADDRESS, &mac)))
    }

    /// Deletes link `name` (and a veth's peer with it); false if there was none.
    pub fn del_link(&mut self, name: &str) -> io::Result<bool> {
        check_name(name)?;
        let mut req = Req::new(libc::RTM_DELLINK, 0);
        req.put(&ifinfomsg(0, 0, 0)).str(IFLA_IFNAME, name);
        match self.request(&mut req, &|| format!("delete link {name}"), &mut |_, _| {}) {
            Err(e) if NetlinkError::errno(&e) == Some(libc::ENODEV) => Ok(false),
            r => r.map(|()| true),
        }
    }

    /// Adds `addr/prefix_len` to link `index`; IPv6 without duplicate address detection
    /// (`IFA_F_NODAD`), so it is usable at once (with DAD it stays "tentative", unusable as a
    /// source, while the link is down and for a second or two after it comes up). An address
    /// already there: `AlreadyExists`.
    pub fn add_addr(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        let v6 = addr.is_ipv6();
        let op = || format!("add address {addr}/{prefix_len} to link {index}");
        if prefix_len > family(v6).1 {
            return Err(invalid(format!("{}: prefix too long", op())));
        }
        let nodad = if v6 { IFA_F_NODAD } else { 0 };
        let hdr = [family(v6).0, prefix_len, nodad, libc::RT_SCOPE_UNIVERSE];
        let mut req = Req::new(libc::RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        req.put(&hdr).put(&index.to_ne_bytes());
        req.attr(IFA_ADDRESS, &ip_bytes(&addr));
        if v6 {
            req.u32(IFA_FLAGS, u32::from(nodad));
        } else {
            req.attr(IFA_LOCAL, &ip_bytes(&addr));
        }
        self.request(&mut req, &op, &mut |_, _| {})
    }

    /// The addresses (IPv4 and IPv6) of link `index`.
    pub fn addrs(&mut self, index: u32) -> io::Result<Vec<(IpAddr, u8)>> {
        let mut msg = [0u8; 8];
        msg[4..8].copy_from_slice(&index.to_ne_bytes());
        let mine = |b: &[u8]| parse_addr(b).and_then(|(i, a, p)| (i == index).then_some((a, p)));
        self.dump(libc::RTM_GETADDR, &msg, "list addresses", mine)
    }

    /// Adds `r` to the main table, protocol boot; scope link if it has no gateway. Bring the
    /// link up first: a down link has no prefix routes, so the kernel refuses a gateway on it
    /// (IPv4: ENETUNREACH "Nexthop has invalid gateway"; IPv6: EHOSTUNREACH), as it does a
    /// gateway outside the link's subnets without `onlink`. The same route twice:
    /// `AlreadyExists`; host bits set in an IPv4 `dst`: EINVAL.
    pub fn add_route(&mut self, r: &Route) -> io::Result<()> {
        let v6 = r.dst.is_ipv6();
        let (dst, len) = (r.dst, r.prefix_len);
        let op = || format!("add route {dst}/{len} via {:?} dev {:?}", r.gateway, r.dev);
        if len > family(v6).1 || r.gateway.is_some_and(|g| g.is_ipv6() != v6) {
            return Err(invalid(format!("{}: bad prefix or gateway family", op())));
        }
        use libc::{RTN_UNICAST as UNICAST, RTPROT_BOOT as BOOT, RT_TABLE_MAIN as MAIN};
        let scope = [libc::RT_SCOPE_LINK, libc::RT_SCOPE_UNIVERSE][r.gateway.is_some() as usize];
        let hdr = [family(v6).0, len, 0, 0, MAIN, BOOT, scope, UNICAST];
        let flags = r.onlink as u32 * RTNH_F_ONLINK;
        let mut req = Req::new(libc::RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        req.put(&hdr).put(&flags.to_ne_bytes());
        if r.prefix_len > 0 {
            req.attr(libc::RTA_DST, &ip_bytes(&r.dst));
        }
        if let Some(g) = &r.gateway {
            req.attr(libc::RTA_GATEWAY, &ip_bytes(g));
        }
        if let Some(dev) = r.dev {
            req.u32(libc::RTA_OIF, dev);
        }
        self.request(&mut req, &op, &mut |_, _| {})
    }

    /// Deletes the main table's route to `dst/prefix_len` out of `dev` (any gateway); false
    /// if there was none.
    pub fn del_route(&mut self, dst: IpAddr, prefix_len: u8, dev: Option<u32>) -> io::Result<bool> {
        let v6 = dst.is_ipv6();
        let op = || format!("delete route {dst}/{prefix_len} dev {dev:?}");
        if prefix_len > family(v6).1 {
            return Err(invalid(format!("{}: prefix too long", op())));
        }
        // Scope "nowhere" matches a route of any scope (as `ip route del`): a scope-link
        // route is not found with scope 0.
        let hdr = [
            family(v6).0,
            prefix_len,
            0,
            0,
            libc::RT_TABLE_MAIN,
            0,
            libc::RT_SCOPE_NOWHERE,
            0,
        ];
        let mut req = Req::new(libc::RTM_DELROUTE, 0);
        req.put(&hdr).put(&0u32.to_ne_bytes());
        if prefix_len > 0 {
            req.attr(libc::RTA_DST, &ip_bytes(&dst));
        }
        if let Some(dev) = dev {
            req.u32(libc::RTA_OIF, dev);
        }
        match self.request(&mut req, &op, &mut |_, _| {}) {
            Ok(()) => Ok(true),
            Err(e) if NetlinkError::errno(&e) == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The unicast routes of the main table, IPv6 or IPv4 (multipath routes come without
    /// gateway and device).
    pub fn routes(&mut self, v6: bool) -> io::Result<Vec<Route>> {
        let mut msg = [0u8; 12];
        msg[0] = family(v6).0;
        let main = u32::from(libc::RT_TABLE_MAIN);
        let in_main = |b: &[u8]| parse_route(b).and_then(|(t, r)| (t == main).then_some(r));
        self.dump(libc::RTM_GETROUTE, &msg, "list routes", in_main)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::fd::AsFd;
    use std::process::{Command, Stdio};

    /// A hand-built netlink message (port id 7).
    fn nl(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend([ty.to_ne_bytes(), flags.to_ne_bytes()].concat());
        m.extend([seq.to_ne_bytes(), 7u32.to_ne_bytes()].concat());
        m.extend(body);
        m.resize(m.len().next_multiple_of(4), 0);
        m
    }

    /// A hand-built attribute, padded.
    fn rta(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut a = [((4 + data.len()) as u16).to_ne_bytes(), ty.to_ne_bytes()].concat();
        a.extend(data);
        a.resize(a.len().next_multiple_of(4), 0);
        a
    }

    /// A datagram of a link, a route (table 252 in the header, 254 in RTA_TABLE) and a
    /// capped error with an extended-ack message.
    fn datagram() -> Vec<u8> {
        let mut l = ifinfomsg(9, libc::IFF_UP as u32, 0).to_vec();
        l.extend(rta(IFLA_IFNAME, b"eth0\0"));
        l.extend(rta(IFLA_MTU, &1450u32.to_ne_bytes()));
        l.extend(rta(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]));
        l.extend(rta(
            IFLA_LINKINFO | NLA_F_NESTED,
            &rta(IFLA_INFO_KIND, b"veth\0"),
        ));
        let mut r = vec![libc::AF_INET as u8, 16, 0, 0, 252, 3, 0, libc::RTN_UNICAST];
        r.extend(RTNH_F_ONLINK.to_ne_bytes());
        r.extend(rta(libc::RTA_TABLE, &254u32.to_ne_bytes()));
        r.extend(rta(libc::RTA_DST, &[10, 100, 0, 0]));
        r.extend(rta(libc::RTA_GATEWAY, &[169, 254, 1, 1]));
        r.extend(rta(libc::RTA_OIF, &3u32.to_ne_bytes()));
        let mut e = (-libc::EEXIST).to_ne_bytes().to_vec();
        e.extend(&nl(libc::RTM_NEWLINK, 5, 5, &[])[..16]);
        e.extend(rta(NLMSGERR_ATTR_MSG, b"it is there\0"));
        let mut d = nl(libc::RTM_NEWLINK, 0, 5, &l);
        d.extend(nl(libc::RTM_NEWROUTE, 2, 5, &r));
        d.extend(nl(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 5, &e));
        d
    }

    fn route(dst: &str, prefix_len: u8, gw: Option<&str>, dev: Option<u32>, onlink: bool) -> Route {
        let (dst, gateway) = (dst.parse().unwrap(), gw.map(|g| g.parse().unwrap()));
        Route {
            dst,
            prefix_len,
            gateway,
            dev,
            onlink,
        }
    }

    #[test]
    fn parses_hand_built_replies() {
        let d = datagram();
        let ms: Vec<_> = messages(&d).collect::<Result<_, _>>().unwrap();
        let types: Vec<_> = ms.iter().map(|m| m.ty).collect();
        assert_eq!(types, [libc::RTM_NEWLINK, libc::RTM_NEWROUTE, NLMSG_ERROR]);
        let l = parse_link(ms[0].body).unwrap();
        assert_eq!(
            (l.index, l.name.as_str(), l.mtu, l.up),
            (9, "eth0", 1450, true)
        );
        assert_eq!(
            (l.mac, l.kind.as_deref()),
            (Some([2, 0, 0, 0, 0, 1]), Some("veth"))
        );
        let want = route("10.100.0.0", 16, Some("169.254.1.1"), Some(3), true);
        assert_eq!(parse_route(ms[1].body), Some((254, want)), "RTA_TABLE wins");
        assert_eq!(
            parse_error(&ms[2]),
            Some((libc::EEXIST, Some("it is there".into())))
        );
        // An ACK: error 0, the whole request echoed (not capped), no TLVs.
        let ack = nl(
            NLMSG_ERROR,
            0,
            5,
            &[&0i32.to_ne_bytes()[..], &d[..40]].concat(),
        );
        let m = messages(&ack).next().unwrap().unwrap();
        assert_eq!(parse_error(&m), Some((0, None)));
        // A point-to-point IPv4 address: IFA_LOCAL is ours, IFA_ADDRESS the peer's.
        let mut a = vec![libc::AF_INET as u8, 32, 0, 0, 4, 0, 0, 0];
        a[4..8].copy_from_slice(&4u32.to_ne_bytes());
        a.extend(rta(IFA_ADDRESS, &[10, 0, 0, 1]));
        a.extend(rta(IFA_LOCAL, &[10, 0, 0, 2]));
        assert_eq!(parse_addr(&a), Some((4, IpAddr::from([10, 0, 0, 2]), 32)));
        // Too short, bad lengths, a local (not unicast) route.
        assert_eq!(parse_link(&ms[0].body[..14]), None);
        assert_eq!(
            messages(&[1, 0, 0, 0]).next(),
            Some(Err("truncated netlink header"))
        );
        let cut = messages(&d[..40]).next();
        assert_eq!(cut, Some(Err("bad netlink message length")));
        let mut local = ms[1].body.to_vec();
        local[7] = libc::RTN_LOCAL;
        assert_eq!(parse_route(&local), None);
    }

    #[test]
    fn builds_nested_requests() {
        let mut req = Req::new(libc::RTM_NEWLINK, NLM_F_CREATE);
        req.put(&ifinfomsg(0, 0, 0)).str(IFLA_IFNAME, "a");
        let info = req.nest(IFLA_LINKINFO);
        req.str(IFLA_INFO_KIND, "veth");
        req.end(info);
        let buf = req.finish(42).to_vec();
        let m = messages(&buf).next().unwrap().unwrap();
        let flags = NLM_F_CREATE | NLM_F_REQUEST | NLM_F_ACK;
        assert_eq!((m.ty, m.seq, m.flags), (libc::RTM_NEWLINK, 42, flags));
        let l = parse_link(m.body).unwrap();
        assert_eq!((l.name.as_str(), l.kind.as_deref()), ("a", Some("veth")));
        assert_eq!(
            u16_at(&buf, 16 + 16 + 8 + 2),
            Some(IFLA_LINKINFO | NLA_F_NESTED)
        );
    }

    #[test]
    fn errors_carry_errno_and_context() {
        let e = NetlinkError::io("add veth a/b".into(), libc::EEXIST, None);
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(NetlinkError::errno(&e), Some(libc::EEXIST));
        assert!(
            e.to_string().starts_with("add veth a/b: File exists"),
            "{e}"
        );
        for not_netns in ["/etc/hostname", "/proc/self/ns/uts"] {
            let e = Netlink::open_in(Path::new(not_netns)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        }
        let e = Netlink::open_in(Path::new("/run/netns/no-such-ns-kport")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    }

    /// Every parser over `buf`, reading message bodies and error messages with `flags`.
    fn parse_all(buf: &[u8], flags: u16) {
        let body_parsers = |b: &[u8]| (parse_link(b), parse_addr(b), parse_route(b));
        for m in messages(buf).flatten() {
            assert!(m.body.len() <= buf.len());
            let _ = (body_parsers(m.body), parse_error(&Msg { flags, ..m }));
        }
        let _ = body_parsers(buf);
        let _ = parse_error(&Msg {
            ty: NLMSG_ERROR,
            flags,
            seq: 0,
            body: buf,
        });
        assert!(attrs(buf).all(|(_, d)| d.len() <= buf.len()));
    }

    fn attr_lists() -> impl Strategy<Value = Vec<(u16, Vec<u8>)>> {
        let data = prop::collection::vec(any::<u8>(), 0..40);
        prop::collection::vec((0u16..0x3fff, data), 0..8)
    }

    proptest! {
        #[test]
        fn random_input_never_panics(buf in prop::collection::vec(any::<u8>(), 0..512), f: u16) {
            parse_all(&buf, f);
        }

        #[test]
        fn truncated_input_yields_a_prefix(cut in 0usize..300, f: u16) {
            let d = datagram();
            let cut = cut.min(d.len());
            let full: Vec<_> = messages(&d).flatten().collect();
            let part: Vec<_> = messages(&d[..cut]).flatten().collect();
            prop_assert!(full.starts_with(&part));
            parse_all(&d[..cut], f);
            for m in &full {
                parse_all(&m.body[..cut.min(m.body.len())], f);
            }
        }

        #[test]
        fn attributes_round_trip(
            list in attr_lists(),
            cut in 0usize..400,
        ) {
            let mut req = Req::new(1, 0);
            for (ty, d) in &list {
                req.attr(*ty, d);
            }
            let body = req.finish(1)[16..].to_vec();
            let walk = |b| attrs(b).map(|(t, d)| (t, d.to_vec())).collect::<Vec<_>>();
            prop_assert_eq!(&walk(&body), &list);
            prop_assert!(list.starts_with(&walk(&body[..cut.min(body.len())])));
        }
    }

    /// Deletes what the integration test made, even if it fails half-way.
    struct Cleanup {
        netns: String,
        host: String,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let ip = |args: &[&str]| Command::new("ip").args(args).stderr(Stdio::null()).status();
            let _ = ip(&["link", "del", &self.host]);
            let _ = ip(&["netns", "del", &self.netns]);
        }
    }

    #[test]
    fn veth_into_a_netns_as_root() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("netlink integration test skipped: needs root");
            return;
        }
        let pid = std::process::id();
        let g = Cleanup {
            netns: format!("kport-nl-{pid}"),
            host: format!("knl{pid}h"),
        };
        let added = Command::new("ip").args(["netns", "add", &g.netns]).status();
        assert!(added.is_ok_and(|s| s.success()), "ip netns add {}", g.netns);
        let ns_path = format!("/run/netns/{}", g.netns);
        let my_ns = || std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let before = my_ns();
        let mut pod = Netlink::open_in(Path::new(&ns_path)).unwrap();
        assert_eq!(my_ns(), before, "the calling thread's namespace changed");
        let mut host = Netlink::open().unwrap();
        let mut also_host = Netlink::open_in(Path::new("/proc/self/ns/net")).unwrap();
        let ns_file = File::open(&ns_path).unwrap();

        let (mac, mac2) = ([2, 0x42, 0xac, 0x11, 0, 2], [2, 0x42, 0xac, 0x11, 0, 3]);
        let h = VethEnd {
            name: g.host.clone(),
            mtu: Some(1400),
            mac: None,
        };
        let p = VethEnd {
            name: "eth0".into(),
            mtu: Some(1450),
            mac: Some(mac),
        };
        host.add_veth(&h, &p, Some(ns_file.as_fd())).unwrap();
        let e = host.add_veth(&h, &p, Some(ns_file.as_fd())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("add veth {}/eth0: ", g.host)),
            "{e}"
        );

        let hl = host.link(&g.host).unwrap().unwrap();
        assert_eq!(also_host.link(&g.host).unwrap().as_ref(), Some(&hl));
        assert_eq!(
            (hl.mtu, hl.kind.as_deref(), hl.up),
            (1400, Some("veth"), false)
        );
        let pl = pod.link("eth0").unwrap().unwrap();
        let got = (pl.mtu, pl.mac, pl.kind.as_deref(), pl.up);
        assert_eq!(got, (1450, Some(mac), Some("veth"), false));
        assert_eq!(
            pod.link(&g.host).unwrap(),
            None,
            "the host end is not in the pod"
        );
        pod.set_mac(pl.index, mac2).unwrap();
        pod.set_mtu(pl.index, 1480).unwrap();
        pod.set_up(pl.index).unwrap();
        host.set_up(hl.index).unwrap();
        let pl = pod.link("eth0").unwrap().unwrap();
        assert_eq!((pl.mtu, pl.mac, pl.up), (1480, Some(mac2), true));
        let e = pod.set_mtu(pl.index, 100_000).unwrap_err();
        let inner = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<NetlinkError>())
            .unwrap();
        assert_eq!(
            (inner.errno, inner.op.clone()),
            (libc::EINVAL, format!("set mtu of link {}", pl.index))
        );
        assert!(inner.detail.is_some(), "an extended ACK message: {e}");

        let (v4, v6): (IpAddr, IpAddr) =
            ("10.99.0.2".parse().unwrap(), "fd00:99::2".parse().unwrap());
        pod.add_addr(pl.index, v4, 24).unwrap();
        pod.add_addr(pl.index, v6, 64).unwrap();
        let e = pod.add_addr(pl.index, v4, 24).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        let addrs = pod.addrs(pl.index).unwrap();
        assert!(
            addrs.contains(&(v4, 24)) && addrs.contains(&(v6, 64)),
            "{addrs:?}"
        );

        let dev = Some(pl.index);
        let v4_routes = [
            route("0.0.0.0", 0, Some("10.99.0.1"), dev, false),
            route("10.100.0.0", 16, Some("169.254.1.1"), dev, true),
            route("10.98.0.0", 16, None, dev, false),
        ];
        let v6_routes = [
            route("::", 0, Some("fd00:99::1"), dev, false),
            route("fd00:100::", 64, Some("fd00:200::1"), dev, true),
        ];
        for r in v4_routes.iter().chain(&v6_routes) {
            pod.add_route(r).unwrap();
        }
        let e = pod.add_route(&v4_routes[0]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        let (r4, r6) = (pod.routes(false).unwrap(), pod.routes(true).unwrap());
        assert!(
            v4_routes.iter().all(|r| r4.contains(r)),
            "{v4_routes:?} in {r4:?}"
        );
        assert!(
            v6_routes.iter().all(|r| r6.contains(r)),
            "{v6_routes:?} in {r6:?}"
        );
        let prefix_route = route("10.99.0.0", 24, None, dev, false);
        assert!(
            r4.contains(&prefix_route),
            "the kernel's prefix route in {r4:?}"
        );
        // Without `onlink`, a gateway outside every subnet of the link is refused.
        let off_link = route("fd00:101::", 64, Some("fd00:200::1"), dev, false);
        let e = pod.add_route(&off_link).unwrap_err();
        assert_eq!(NetlinkError::errno(&e), Some(libc::EHOSTUNREACH), "{e}");
        // Deleted by destination and device, whatever its gateway; a second time: false.
        let v4: IpAddr = "10.100.0.0".parse().unwrap();
        assert!(pod.del_route(v4, 16, dev).unwrap());
        assert!(!pod.routes(false).unwrap().contains(&v4_routes[1]));
        assert!(!pod.del_route(v4, 16, dev).unwrap());
        // A scope-link route (no gateway) too.
        let link: IpAddr = "10.98.0.0".parse().unwrap();
        assert!(pod.del_route(link, 16, dev).unwrap());
        assert!(!pod.routes(false).unwrap().contains(&v4_routes[2]));

        assert!(host.del_link(&g.host).unwrap());
        assert_eq!(host.link(&g.host).unwrap(), None);
        assert_eq!(pod.link("eth0").unwrap(), None, "the peer goes with it");
        assert!(!host.del_link(&g.host).unwrap());
    }
}
