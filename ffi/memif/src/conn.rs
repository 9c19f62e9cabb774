//! The handshake of one control connection, both roles, with every value the peer sends
//! checked before use.
//!
//! Order (what DPDK's net_memif and libmemif do): on accept the server sends HELLO; the
//! client answers INIT, then, one per ACK from the server, ADD_REGION (memfd), ADD_RING
//! (eventfd) for each client-to-server then each server-to-client ring, and CONNECT; the
//! server answers CONNECTED. Either side may send DISCONNECT (with a reason) at any time.
//! The client makes the shared memory (one region: the rings, then every ring's buffers);
//! the server maps what it is given.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use crate::msg::{self, AddRing, Hello, Init, Msg, Text};
use crate::queue::{Active, Side, Zc, ZC_REGION};
use crate::ring::{self, Regions, Ring, COOKIE, MAX_LOG2_RING_SIZE, MIN_LOG2_RING_SIZE};
use crate::sys::{self, Mapping};
use crate::{Config, Reason};

/// Regions a server accepts from one client.
pub const MAX_REGIONS: usize = 16;
/// The largest region a server maps (offsets are 32-bit, so more could not be used).
pub const MAX_REGION_SIZE: u64 = 1 << 32;

/// Why a connection is being refused: the counter to bump and the text to log and send.
#[derive(Debug)]
pub struct Refusal {
    pub reason: Reason,
    pub text: String,
}

fn refuse<T>(reason: Reason, text: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        reason,
        text: text.into(),
    })
}

/// A connected link: the queues to install (by queue index) and what keeps them alive.
pub struct Up {
    pub rx: Vec<Active>,
    pub tx: Vec<Active>,
    pub peer: String,
}

/// Where a handshake stands.
pub enum Hs {
    /// Server, INIT received and accepted: collecting regions and rings.
    ServerBuilding {
        regions: Vec<Mapping>,
        c2s: Vec<Option<RingInfo>>,
        s2c: Vec<Option<RingInfo>>,
        peer: String,
    },
    /// Client, waiting for HELLO.
    ClientHello,
    /// Client, sending its messages one per ACK, then waiting for CONNECTED.
    ClientSending {
        queue: VecDeque<(Msg, Option<Arc<OwnedFd>>)>,
        plan: ClientPlan,
    },
    Connected,
}

/// A ring the client announced (server side).
pub struct RingInfo {
    region: u16,
    offset: u32,
    log2: u8,
    eventfd: OwnedFd,
}

/// What a client made for a connection.
pub struct ClientPlan {
    regions: Arc<Regions>,
    _memfd: Arc<OwnedFd>,
    log2: u8,
    c2s: Vec<(u32, Arc<OwnedFd>)>,
    s2c: Vec<(u32, Arc<OwnedFd>)>,
    buffer_size: u32,
    buf_base: u32,
    peer: String,
    /// Bytes of the region.
    size: u64,
}

/// The HELLO a server with `cfg` sends.
pub fn hello(cfg: &Config) -> Msg {
    let q = cfg.queues.saturating_sub(1);
    Msg::Hello(Hello {
        name: Text::new(&cfg.app_name),
        min_version: msg::VERSION,
        max_version: msg::VERSION,
        max_region: (MAX_REGIONS - 1) as u16,
        max_s2c_ring: q,
        max_c2s_ring: q,
        max_log2_ring_size: MAX_LOG2_RING_SIZE,
    })
}

/// Server: judges an INIT for interface `cfg` (its id already matched).
pub fn server_init(cfg: &Config, i: &Init) -> Result<Hs, Refusal> {
    if i.version != msg::VERSION {
        return refuse(
            Reason::BadVersion,
            format!("incompatible memif version {:#x}", i.version),
        );
    }
    if i.mode != msg::MODE_ETHERNET {
        return refuse(Reason::BadMessage, "only ethernet mode supported");
    }
    if let Some(s) = &cfg.secret {
        if i.secret != Text::new(s) {
            return refuse(Reason::BadSecret, "incorrect secret");
        }
    }
    Ok(Hs::ServerBuilding {
        regions: Vec::new(),
        c2s: (0..cfg.queues).map(|_| None).collect(),
        s2c: (0..cfg.queues).map(|_| None).collect(),
        peer: i.name.as_str(),
    })
}

/// What a message does to a connection.
pub enum Next {
    /// Send this reply (and its descriptor), stay.
    Reply(Msg, Option<Arc<OwnedFd>>),
    /// Nothing to send.
    Nothing,
    /// The link is up; send the reply first if there is one.
    Up(Up, Option<Msg>),
    /// The peer disconnected with this reason.
    PeerGone(String),
}

/// Handles one message on a connection past INIT (server) or from the start (client).
pub fn handle(cfg: &Config, hs: &mut Hs, m: Msg, mut fds: Vec<OwnedFd>) -> Result<Next, Refusal> {
    if let Msg::Disconnect { reason, .. } = m {
        return Ok(Next::PeerGone(reason.as_str()));
    }
    match hs {
        Hs::ServerBuilding {
            regions,
            c2s,
            s2c,
            peer,
        } => match m {
            Msg::AddRegion { index, size } => {
                let Some(fd) = fds.pop() else {
                    return refuse(Reason::BadRegion, "ADD_REGION without a descriptor");
                };
                if index as usize != regions.len() {
                    return refuse(
                        Reason::BadRegion,
                        format!(
                            "region index {index} out of order ({} so far)",
                            regions.len()
                        ),
                    );
                }
                if regions.len() >= MAX_REGIONS {
                    return refuse(
                        Reason::TooMany,
                        format!("too many regions (at most {MAX_REGIONS})"),
                    );
                }
                if size == 0 || size > MAX_REGION_SIZE {
                    return refuse(
                        Reason::BadRegion,
                        format!("region {index} size {size} (1 to {MAX_REGION_SIZE})"),
                    );
                }
                let (real, sealed) = sys::file_size_and_sealed(&fd).map_err(|e| Refusal {
                    reason: Reason::BadRegion,
                    text: format!("region {index}: fstat: {e}"),
                })?;
                if real < size {
                    return refuse(
                        Reason::BadRegion,
                        format!("region {index} size {size} but its file holds {real} bytes"),
                    );
                }
                if !sealed {
                    return refuse(
                        Reason::BadRegion,
                        format!("region {index} not sealed against shrinking (F_SEAL_SHRINK)"),
                    );
                }
                let map = Mapping::map(&fd, size as usize).map_err(|e| Refusal {
                    reason: Reason::BadRegion,
                    text: format!("region {index}: mmap of {size} bytes: {e}"),
                })?;
                regions.push(map);
                Ok(Next::Reply(Msg::Ack, None))
            }
            Msg::AddRing(r) => {
                let Some(fd) = fds.pop() else {
                    return refuse(Reason::BadRing, "ADD_RING without an eventfd");
                };
                let list = if r.is_c2s() { c2s } else { s2c };
                let Some(slot) = list.get_mut(r.index as usize) else {
                    return refuse(
                        Reason::TooMany,
                        format!(
                            "ring index {} beyond the {} queues offered",
                            r.index, cfg.queues
                        ),
                    );
                };
                if slot.is_some() {
                    return refuse(Reason::BadRing, format!("ring {} announced twice", r.index));
                }
                check_ring(regions, &r)?;
                *slot = Some(RingInfo {
                    region: r.region,
                    offset: r.offset,
                    log2: r.log2_ring_size,
                    eventfd: fd,
                });
                Ok(Next::Reply(Msg::Ack, None))
            }
            Msg::Connect { if_name } => {
                let maps = std::mem::take(regions);
                let regions = Arc::new(Regions::new(maps));
                let n = count_prefix(c2s);
                if n == 0 || n != count_prefix(s2c) {
                    return refuse(
                        Reason::BadRing,
                        format!(
                            "CONNECT with {} client-to-server and {} server-to-client rings",
                            n,
                            count_prefix(s2c)
                        ),
                    );
                }
                let mut up = Up {
                    rx: Vec::new(),
                    tx: Vec::new(),
                    peer: format!("{} ({})", if_name.as_str(), peer),
                };
                for (list, side) in [(c2s, Side::ServerRx), (s2c, Side::ServerTx)] {
                    for info in list.iter_mut().take(n).filter_map(Option::take) {
                        let ring = ring_of(&regions, &info)?;
                        let a = Active {
                            regions: regions.clone(),
                            ring,
                            side,
                            next: 0,
                            given: 0,
                            eventfd: Arc::new(info.eventfd),
                            buf_base: 0,
                            buffer_size: 0,
                            broken: false,
                            zc: None,
                        };
                        if side == Side::ServerRx {
                            up.rx.push(a);
                        } else {
                            up.tx.push(a);
                        }
                    }
                }
                let reply = Msg::Connected {
                    if_name: Text::new(&cfg.if_name),
                };
                *hs = Hs::Connected;
                Ok(Next::Up(up, Some(reply)))
            }
            Msg::Ack => Ok(Next::Nothing),
            other => refuse(
                Reason::BadMessage,
                format!("unexpected message type {} while connecting", other.kind()),
            ),
        },
        Hs::ClientHello => match m {
            Msg::Hello(h) => {
                let plan = client_plan(cfg, &h)?;
                let mut queue = VecDeque::new();
                queue.push_back((
                    Msg::Init(Init {
                        version: msg::VERSION,
                        id: cfg.id,
                        mode: msg::MODE_ETHERNET,
                        secret: cfg.secret.as_deref().map(Text::new).unwrap_or_default(),
                        name: Text::new(&cfg.app_name),
                    }),
                    None,
                ));
                queue.push_back((
                    Msg::AddRegion {
                        index: 0,
                        size: plan.regions_size(),
                    },
                    Some(plan._memfd.clone()),
                ));
                if let Some(z) = &cfg.zero_copy {
                    // Zero-copy: the caller's buffers are region 1.
                    let m = z.memory();
                    queue.push_back((
                        Msg::AddRegion {
                            index: ZC_REGION,
                            size: m.len() as u64,
                        },
                        Some(m.fd.clone()),
                    ));
                }
                for (c2s, list) in [(true, &plan.c2s), (false, &plan.s2c)] {
                    for (i, (off, fd)) in list.iter().enumerate() {
                        queue.push_back((
                            Msg::AddRing(AddRing {
                                flags: if c2s { msg::ADD_RING_FLAG_C2S } else { 0 },
                                index: i as u16,
                                region: 0,
                                offset: *off,
                                log2_ring_size: plan.log2,
                                private_hdr_size: 0,
                            }),
                            Some(fd.clone()),
                        ));
                    }
                }
                queue.push_back((
                    Msg::Connect {
                        if_name: Text::new(&cfg.if_name),
                    },
                    None,
                ));
                let first = queue.pop_front();
                *hs = Hs::ClientSending { queue, plan };
                match first {
                    Some((m, fd)) => Ok(Next::Reply(m, fd)),
                    None => Ok(Next::Nothing),
                }
            }
            other => refuse(
                Reason::BadMessage,
                format!("expected HELLO, got message type {}", other.kind()),
            ),
        },
        Hs::ClientSending { queue, plan } => match m {
            Msg::Ack => match queue.pop_front() {
                Some((m, fd)) => Ok(Next::Reply(m, fd)),
                None => Ok(Next::Nothing),
            },
            Msg::Connected { if_name } if queue.is_empty() => {
                let mut up = Up {
                    rx: Vec::new(),
                    tx: Vec::new(),
                    peer: format!("{} ({})", if_name.as_str(), plan.peer),
                };
                let size = 1u32 << plan.log2;
                let nc2s = plan.c2s.len() as u32;
                for (k, (list, side)) in [(&plan.c2s, Side::ClientTx), (&plan.s2c, Side::ClientRx)]
                    .into_iter()
                    .enumerate()
                {
                    for (i, (off, fd)) in list.iter().enumerate() {
                        let Some(ring) = plan.regions.ring(0, *off, plan.log2) else {
                            return refuse(Reason::BadRing, "own ring outside own region");
                        };
                        let global = i as u32 + if k == 0 { 0 } else { nc2s };
                        let a = Active {
                            regions: plan.regions.clone(),
                            ring,
                            side,
                            next: 0,
                            given: 0,
                            eventfd: fd.clone(),
                            buf_base: plan.buf_base + global * size * plan.buffer_size,
                            buffer_size: plan.buffer_size,
                            broken: false,
                            zc: cfg
                                .zero_copy
                                .as_ref()
                                .map(|z| Zc::new(z.clone(), size as usize)),
                        };
                        if side == Side::ClientRx {
                            up.rx.push(a);
                        } else {
                            up.tx.push(a);
                        }
                    }
                }
                *hs = Hs::Connected;
                Ok(Next::Up(up, None))
            }
            other => refuse(
                Reason::BadMessage,
                format!("unexpected message type {} while connecting", other.kind()),
            ),
        },
        Hs::Connected => match m {
            Msg::Ack => Ok(Next::Nothing),
            other => refuse(
                Reason::BadMessage,
                format!(
                    "unexpected message type {} on a connected link",
                    other.kind()
                ),
            ),
        },
    }
}

/// How many entries from the start are present.
fn count_prefix(list: &[Option<RingInfo>]) -> usize {
    list.iter().take_while(|r| r.is_some()).count()
}

/// Server: checks an announced ring against the regions mapped so far.
fn check_ring(regions: &[Mapping], r: &AddRing) -> Result<(), Refusal> {
    if !(MIN_LOG2_RING_SIZE..=MAX_LOG2_RING_SIZE).contains(&r.log2_ring_size) {
        return refuse(
            Reason::BadLog2,
            format!(
                "ring {} log2 size {} (from {MIN_LOG2_RING_SIZE} to {MAX_LOG2_RING_SIZE})",
                r.index, r.log2_ring_size
            ),
        );
    }
    let Some(m) = regions.get(r.region as usize) else {
        return refuse(
            Reason::BadRing,
            format!(
                "ring {} in region {} which was not added",
                r.index, r.region
            ),
        );
    };
    let end = r.offset as u64 + ring::ring_bytes(r.log2_ring_size) as u64;
    if end > m.len() as u64 || r.offset % 16 != 0 {
        return refuse(
            Reason::BadRing,
            format!(
                "ring {} at offset {} ({} bytes) outside region {} of {} bytes or unaligned",
                r.index,
                r.offset,
                ring::ring_bytes(r.log2_ring_size),
                r.region,
                m.len()
            ),
        );
    }
    Ok(())
}

/// Server at CONNECT: the ring, its cookie checked.
fn ring_of(regions: &Regions, info: &RingInfo) -> Result<Ring, Refusal> {
    let Some(ring) = regions.ring(info.region, info.offset, info.log2) else {
        return refuse(Reason::BadRing, "ring outside its region");
    };
    if ring.cookie() != COOKIE {
        return refuse(
            Reason::BadCookie,
            format!(
                "ring at offset {} has cookie {:#x}, not {COOKIE:#x}",
                info.offset,
                ring.cookie()
            ),
        );
    }
    Ok(ring)
}

impl ClientPlan {
    fn regions_size(&self) -> u64 {
        self.size
    }
}

/// Client: makes the region, rings and eventfds for the server's HELLO.
fn client_plan(cfg: &Config, h: &Hello) -> Result<ClientPlan, Refusal> {
    if h.min_version > msg::VERSION || h.max_version < msg::VERSION {
        return refuse(
            Reason::BadVersion,
            format!(
                "server speaks memif {:#x}..{:#x}, not {:#x}",
                h.min_version,
                h.max_version,
                msg::VERSION
            ),
        );
    }
    let nc2s = (h.max_c2s_ring as usize + 1).min(cfg.queues as usize);
    let ns2c = (h.max_s2c_ring as usize + 1).min(cfg.queues as usize);
    let log2 = cfg.log2_ring_size.min(h.max_log2_ring_size);
    if log2 < MIN_LOG2_RING_SIZE {
        return refuse(
            Reason::BadLog2,
            format!("server allows rings of 2^{log2} at most"),
        );
    }
    let rb = ring::ring_bytes(log2) as u64;
    let rings = (nc2s + ns2c) as u64;
    let buf_base = rings * rb;
    // Zero-copy: region 0 holds the rings only (the buffers are the caller's, region 1).
    let bufs = if cfg.zero_copy.is_some() {
        0
    } else {
        rings * (1u64 << log2) * cfg.buffer_size as u64
    };
    let size = buf_base + bufs;
    let err = |e: std::io::Error| Refusal {
        reason: Reason::Local,
        text: format!("making the shared region of {size} bytes: {e}"),
    };
    let fd = sys::memfd("memif_region_0", size).map_err(err)?;
    let map = Mapping::map(&fd, size as usize).map_err(err)?;
    let regions = Arc::new(Regions::new(vec![map]));
    let mut mk = |idx: u64| -> Result<(u32, Arc<OwnedFd>), Refusal> {
        let off = (idx * rb) as u32;
        let Some(r) = regions.ring(0, off, log2) else {
            return refuse(Reason::Local, "own ring outside own region");
        };
        r.set_cookie(COOKIE);
        r.set_flags(0);
        r.set_head(0);
        r.set_tail(0);
        Ok((off, Arc::new(sys::eventfd().map_err(err)?)))
    };
    let c2s = (0..nc2s as u64)
        .map(&mut mk)
        .collect::<Result<Vec<_>, _>>()?;
    let s2c = (nc2s as u64..rings)
        .map(&mut mk)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClientPlan {
        regions,
        _memfd: Arc::new(fd),
        log2,
        c2s,
        s2c,
        buffer_size: cfg.buffer_size,
        buf_base: buf_base as u32,
        peer: h.name.as_str(),
        size,
    })
}

/// Sends `m` (with `fd`) on `sock`.
pub fn send(sock: &OwnedFd, m: &Msg, fd: Option<&Arc<OwnedFd>>) -> std::io::Result<()> {
    sys::send_msg(sock, &m.emit(), fd.map(|f| f.as_raw_fd()))
}
