//! The control thread: every listener, every control connection, reconnects, link state.
//! One thread per [`Context`] for all its interfaces, waiting in poll(2); the owner talks to
//! it through a command list and a wake-up eventfd.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::conn::{self, Hs, Next, Refusal};
use crate::msg::{Msg, Text};
use crate::queue::activate;
use crate::sys::{self, Received};
use crate::{Config, Error, Interface, Reason, Role, Shared};

type Logger = Box<dyn Fn(&str) + Send + Sync>;

/// How long a peer has to finish the handshake (from accept or connect to connected).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

enum Cmd {
    Add(Arc<Shared>, mpsc::Sender<Result<(), Error>>),
    Remove(Arc<Shared>),
}

/// What the owner and the control thread share.
pub(crate) struct Inner {
    wake: Arc<OwnedFd>,
    cmds: Mutex<Vec<Cmd>>,
    stop: AtomicBool,
    log: Logger,
}

impl Inner {
    fn send(&self, c: Cmd) {
        self.cmds.lock().unwrap_or_else(|e| e.into_inner()).push(c);
        sys::kick(self.wake.as_raw_fd());
    }

    pub(crate) fn remove(&self, s: &Arc<Shared>) {
        self.send(Cmd::Remove(s.clone()));
    }
}

static GLOBAL: OnceLock<Result<Context, String>> = OnceLock::new();

/// Owns the control thread of a set of interfaces. Dropping it stops the thread, which
/// disconnects every interface still open.
pub struct Context {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("memif::Context")
    }
}

impl Context {
    /// A context logging to stderr (lines start with "memif: ").
    pub fn new() -> std::io::Result<Context> {
        Context::with_logger(|s| eprintln!("memif: {s}"))
    }

    /// A context whose control thread reports refusals and link changes to `log`.
    pub fn with_logger(log: impl Fn(&str) + Send + Sync + 'static) -> std::io::Result<Context> {
        let inner = Arc::new(Inner {
            wake: Arc::new(sys::eventfd()?),
            cmds: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            log: Box::new(log),
        });
        let i2 = inner.clone();
        let thread = std::thread::Builder::new()
            .name("memif-ctl".into())
            .spawn(move || Ctl::new(i2).run())?;
        Ok(Context {
            inner,
            thread: Some(thread),
        })
    }

    /// The process's context (made on first use, logging to stderr unless
    /// [`Context::global_with_logger`] made it first; never stopped).
    pub fn global() -> Result<&'static Context, Error> {
        Context::global_with_logger(|s| eprintln!("memif: {s}"))
    }

    /// The process's context, made with `log` as its logger if it does not exist yet (the
    /// owner calls this once at start-up to route memif's log, e.g. into `tracing`).
    pub fn global_with_logger(
        log: impl Fn(&str) + Send + Sync + 'static,
    ) -> Result<&'static Context, Error> {
        GLOBAL
            .get_or_init(|| Context::with_logger(log).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::Control(e.clone()))
    }

    /// Adds an interface: a server's socket is listening (or the interface joined the
    /// listener already on that path) when this returns; a client starts connecting.
    pub fn open(&self, cfg: Config) -> Result<Interface, Error> {
        cfg.check()?;
        let shared = Arc::new(Shared::new(cfg, self.inner.wake.clone()));
        let (tx, rx) = mpsc::channel();
        self.inner.send(Cmd::Add(shared.clone(), tx));
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| Error::Control("no answer from the control thread".into()))??;
        Ok(Interface {
            shared,
            ctx: self.inner.clone(),
        })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        sys::kick(self.inner.wake.as_raw_fd());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A control connection.
struct Conn {
    fd: OwnedFd,
    hs: Hs,
    /// When the connection was accepted or made (for the handshake time-out).
    since: Instant,
}

/// An interface as the control thread holds it.
struct Iface {
    shared: Arc<Shared>,
    conn: Option<Conn>,
    /// Client: when to try connecting next.
    next_try: Instant,
    /// Client: last connect error logged (to log each kind once, not every retry).
    last_connect_err: Option<std::io::ErrorKind>,
}

struct Listener {
    path: PathBuf,
    fd: OwnedFd,
    /// Accepted connections that have not sent INIT yet, and since when.
    pending: Vec<(OwnedFd, Instant)>,
    ifaces: Vec<Iface>,
}

struct Ctl {
    inner: Arc<Inner>,
    listeners: Vec<Listener>,
    clients: Vec<Iface>,
}

/// Which descriptor a pollfd entry is.
#[derive(Clone, Copy)]
enum Who {
    Wake,
    Listener(usize),
    Pending(usize, usize),
    Server(usize, usize),
    Client(usize),
}

impl Ctl {
    fn new(inner: Arc<Inner>) -> Ctl {
        Ctl {
            inner,
            listeners: Vec::new(),
            clients: Vec::new(),
        }
    }

    fn log(&self, s: &str) {
        (self.inner.log)(s);
    }

    fn run(mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut who: Vec<Who> = Vec::new();
        loop {
            if self.inner.stop.load(Ordering::SeqCst) {
                self.shutdown();
                return;
            }
            let cmds =
                std::mem::take(&mut *self.inner.cmds.lock().unwrap_or_else(|e| e.into_inner()));
            for c in cmds {
                match c {
                    Cmd::Add(s, reply) => {
                        let r = self.add(s);
                        let _ = reply.send(r);
                    }
                    Cmd::Remove(s) => self.remove(&s),
                }
            }
            self.check_broken();
            self.check_timeouts();
            let timeout = self.connect_clients();
            fds.clear();
            who.clear();
            let mut push = |fd: &OwnedFd, w: Who| {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                who.push(w);
            };
            push(&self.inner.wake, Who::Wake);
            for (li, l) in self.listeners.iter().enumerate() {
                push(&l.fd, Who::Listener(li));
                for (pi, (p, _)) in l.pending.iter().enumerate() {
                    push(p, Who::Pending(li, pi));
                }
                for (ii, i) in l.ifaces.iter().enumerate() {
                    if let Some(c) = &i.conn {
                        push(&c.fd, Who::Server(li, ii));
                    }
                }
            }
            for (ci, i) in self.clients.iter().enumerate() {
                if let Some(c) = &i.conn {
                    push(&c.fd, Who::Client(ci));
                }
            }
            if sys::poll(&mut fds, timeout).is_err() {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            // Handle in reverse so removing a pending connection keeps earlier indices.
            for k in (0..fds.len()).rev() {
                if fds[k].revents == 0 {
                    continue;
                }
                match who[k] {
                    Who::Wake => {
                        sys::drain(self.inner.wake.as_raw_fd());
                    }
                    Who::Listener(li) => self.accept(li),
                    Who::Pending(li, pi) => self.pending(li, pi),
                    Who::Server(li, ii) => {
                        if let Some(i) = self
                            .listeners
                            .get_mut(li)
                            .and_then(|l| l.ifaces.get_mut(ii))
                        {
                            service(&self.inner, i);
                        }
                    }
                    Who::Client(ci) => {
                        if let Some(i) = self.clients.get_mut(ci) {
                            service(&self.inner, i);
                        }
                    }
                }
            }
        }
    }

    fn add(&mut self, s: Arc<Shared>) -> Result<(), Error> {
        let iface = Iface {
            shared: s.clone(),
            conn: None,
            next_try: Instant::now(),
            last_connect_err: None,
        };
        match s.cfg.role {
            Role::Client => self.clients.push(iface),
            Role::Server => {
                let path = &s.cfg.socket;
                if let Some(l) = self.listeners.iter_mut().find(|l| &l.path == path) {
                    if l.ifaces.iter().any(|i| i.shared.cfg.id == s.cfg.id) {
                        return Err(Error::DuplicateId {
                            path: path.display().to_string(),
                            id: s.cfg.id,
                        });
                    }
                    l.ifaces.push(iface);
                } else {
                    let fd = bind(path, s.cfg.socket_mode).map_err(|e| Error::Socket {
                        path: path.display().to_string(),
                        source: e,
                    })?;
                    self.listeners.push(Listener {
                        path: path.clone(),
                        fd,
                        pending: Vec::new(),
                        ifaces: vec![iface],
                    });
                }
            }
        }
        Ok(())
    }

    fn remove(&mut self, s: &Arc<Shared>) {
        let log = |i: &mut Iface| down(&self.inner, i, Some("interface removed"), None);
        if let Some(k) = self.clients.iter().position(|i| Arc::ptr_eq(&i.shared, s)) {
            let mut i = self.clients.remove(k);
            log(&mut i);
            return;
        }
        for li in 0..self.listeners.len() {
            let l = &mut self.listeners[li];
            if let Some(k) = l.ifaces.iter().position(|i| Arc::ptr_eq(&i.shared, s)) {
                let mut i = l.ifaces.remove(k);
                log(&mut i);
                if l.ifaces.is_empty() {
                    let l = self.listeners.remove(li);
                    let _ = std::fs::remove_file(&l.path);
                }
                return;
            }
        }
    }

    fn shutdown(&mut self) {
        for mut i in std::mem::take(&mut self.clients) {
            down(&self.inner, &mut i, Some("shutting down"), None);
        }
        for mut l in std::mem::take(&mut self.listeners) {
            for i in l.ifaces.iter_mut() {
                down(&self.inner, i, Some("shutting down"), None);
            }
            let _ = std::fs::remove_file(&l.path);
        }
    }

    /// Disconnects every interface whose data path found a broken ring.
    fn check_broken(&mut self) {
        let inner = self.inner.clone();
        let all = self
            .clients
            .iter_mut()
            .chain(self.listeners.iter_mut().flat_map(|l| l.ifaces.iter_mut()));
        for i in all {
            if i.shared.notify.broken.swap(false, Ordering::SeqCst) && i.conn.is_some() {
                let text = "ring broken: head or tail moved by more than the ring size, or an unusable descriptor";
                down(&inner, i, Some(text), Some(Reason::RingBroken));
            }
        }
    }

    /// Drops connections whose handshake is taking longer than [`HANDSHAKE_TIMEOUT`].
    fn check_timeouts(&mut self) {
        let now = Instant::now();
        let late = |since: Instant| now.duration_since(since) > HANDSHAKE_TIMEOUT;
        let inner = self.inner.clone();
        for l in self.listeners.iter_mut() {
            let before = l.pending.len();
            l.pending.retain(|(_, since)| !late(*since));
            if l.pending.len() < before {
                (inner.log)(&format!(
                    "{}: dropped {} connection(s) that sent no INIT within {HANDSHAKE_TIMEOUT:?}",
                    l.path.display(),
                    before - l.pending.len()
                ));
            }
        }
        let all = self
            .clients
            .iter_mut()
            .chain(self.listeners.iter_mut().flat_map(|l| l.ifaces.iter_mut()));
        for i in all {
            let stalled = i
                .conn
                .as_ref()
                .is_some_and(|c| !matches!(c.hs, Hs::Connected) && late(c.since));
            if stalled {
                let text = format!("handshake not finished within {HANDSHAKE_TIMEOUT:?}");
                down(&inner, i, Some(&text), Some(Reason::Timeout));
            }
        }
    }

    /// Starts connecting the clients that are due; returns the poll timeout until the next.
    fn connect_clients(&mut self) -> i32 {
        let now = Instant::now();
        let mut wait = Duration::from_millis(1000);
        let inner = self.inner.clone();
        for i in self.clients.iter_mut().filter(|i| i.conn.is_none()) {
            if i.next_try <= now {
                i.next_try = now + i.shared.cfg.retry;
                match sys::connect(&i.shared.cfg.socket) {
                    Ok(fd) => {
                        i.last_connect_err = None;
                        i.conn = Some(Conn {
                            fd,
                            hs: Hs::ClientHello,
                            since: now,
                        });
                    }
                    Err(e) => {
                        if i.last_connect_err != Some(e.kind()) {
                            (inner.log)(&format!(
                                "{}: cannot connect to {} ({e}); retrying every {:?}",
                                name(&i.shared),
                                i.shared.cfg.socket.display(),
                                i.shared.cfg.retry
                            ));
                            i.last_connect_err = Some(e.kind());
                        }
                    }
                }
            }
            wait = wait.min(i.next_try.saturating_duration_since(now));
        }
        wait.as_millis().clamp(1, 1000) as i32
    }

    fn accept(&mut self, li: usize) {
        let Some(l) = self.listeners.get_mut(li) else {
            return;
        };
        loop {
            match sys::accept(&l.fd) {
                Ok(Some(fd)) => {
                    // HELLO offers what the first interface on the socket offers; every
                    // interface of a socket is checked against its own config at INIT.
                    let Some(first) = l.ifaces.first() else {
                        return;
                    };
                    let hello = conn::hello(&first.shared.cfg);
                    let hello = match hello {
                        Msg::Hello(mut h) => {
                            h.max_c2s_ring = max_queues(l) - 1;
                            h.max_s2c_ring = h.max_c2s_ring;
                            Msg::Hello(h)
                        }
                        m => m,
                    };
                    if conn::send(&fd, &hello, None).is_ok() {
                        l.pending.push((fd, Instant::now()));
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let text = format!("{}: accept: {e}", l.path.display());
                    self.log(&text);
                    // Out of descriptors, say: the listener stays readable; do not spin.
                    std::thread::sleep(Duration::from_millis(50));
                    return;
                }
            }
        }
    }

    /// A message on a connection that has not said which interface it wants.
    fn pending(&mut self, li: usize, pi: usize) {
        let inner = self.inner.clone();
        let Some(l) = self.listeners.get_mut(li) else {
            return;
        };
        if pi >= l.pending.len() {
            return;
        }
        let r = sys::recv_msg(&l.pending[pi].0);
        let (buf, _fds) = match r {
            Ok(Received::Msg(b, f)) => (b, f),
            Ok(Received::Empty) => return,
            Ok(Received::Closed) | Err(_) => {
                l.pending.swap_remove(pi);
                return;
            }
            Ok(Received::BadLength(n)) => {
                let (fd, _) = l.pending.swap_remove(pi);
                let text = format!("message of {n} bytes");
                refuse_socket(&inner, &l.path, &fd, &text);
                return;
            }
        };
        let (fd, since) = l.pending.swap_remove(pi);
        let init = match Msg::parse(&buf[..]) {
            Ok(Msg::Init(i)) => i,
            Ok(m) => {
                let text = format!("expected INIT, got message type {}", m.kind());
                refuse_socket(&inner, &l.path, &fd, &text);
                return;
            }
            Err(e) => {
                refuse_socket(&inner, &l.path, &fd, &e.to_string());
                return;
            }
        };
        let Some(i) = l.ifaces.iter_mut().find(|i| i.shared.cfg.id == init.id) else {
            let text = format!("ID not found ({})", init.id);
            refuse_socket(&inner, &l.path, &fd, &text);
            return;
        };
        if i.conn.is_some() {
            refuse_socket(&inner, &l.path, &fd, "Already connected");
            return;
        }
        match conn::server_init(&i.shared.cfg, &init) {
            Ok(hs) => {
                if conn::send(&fd, &Msg::Ack, None).is_ok() {
                    i.conn = Some(Conn { fd, hs, since });
                }
            }
            Err(r) => {
                i.conn = Some(Conn {
                    fd,
                    hs: Hs::Connected,
                    since,
                });
                down(&inner, i, Some(&r.text), Some(r.reason));
            }
        }
    }
}

/// The most queues any interface on a listener offers.
fn max_queues(l: &Listener) -> u16 {
    l.ifaces
        .iter()
        .map(|i| i.shared.cfg.queues)
        .max()
        .unwrap_or(1)
}

fn name(s: &Shared) -> String {
    format!(
        "{} ({} id {})",
        s.cfg.if_name,
        s.cfg.socket.display(),
        s.cfg.id
    )
}

/// Refuses a connection that belongs to no interface yet: DISCONNECT with `text`, logged.
fn refuse_socket(inner: &Inner, path: &Path, fd: &OwnedFd, text: &str) {
    (inner.log)(&format!("{}: refused a peer: {text}", path.display()));
    let _ = conn::send(
        fd,
        &Msg::Disconnect {
            code: 0,
            reason: Text::new(text),
        },
        None,
    );
}

/// Binds a listener at `path`, replacing a stale socket file (one nobody listens on).
fn bind(path: &Path, mode: u32) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if md.file_type().is_socket() && sys::connect(path).is_err() {
            std::fs::remove_file(path)?;
        }
    }
    sys::listen(path, mode)
}

/// Reads every waiting message of an interface's connection and acts on it.
fn service(inner: &Inner, i: &mut Iface) {
    loop {
        let Some(c) = i.conn.as_mut() else {
            return;
        };
        let (buf, fds) = match sys::recv_msg(&c.fd) {
            Ok(Received::Msg(b, f)) => (b, f),
            Ok(Received::Empty) => return,
            Ok(Received::Closed) | Err(_) => {
                i.shared
                    .errors
                    .socket_closed
                    .fetch_add(1, Ordering::Relaxed);
                down(inner, i, None, None);
                let text = "peer closed the connection";
                (inner.log)(&format!("{}: {text}", name(&i.shared)));
                set_last(&i.shared, text);
                return;
            }
            Ok(Received::BadLength(n)) => {
                let text = format!("message of {n} bytes");
                down(inner, i, Some(&text), Some(Reason::BadMessage));
                return;
            }
        };
        let m = match Msg::parse(&buf[..]) {
            Ok(m) => m,
            Err(e) => {
                down(inner, i, Some(&e.to_string()), Some(Reason::BadMessage));
                return;
            }
        };
        match conn::handle(&i.shared.cfg, &mut c.hs, m, fds) {
            Ok(Next::Nothing) => {}
            Ok(Next::Reply(m, fd)) => {
                if let Err(e) = conn::send(&c.fd, &m, fd.as_ref()) {
                    let text = format!("send: {e}");
                    down(inner, i, Some(&text), Some(Reason::Local));
                    return;
                }
            }
            Ok(Next::Up(up, reply)) => {
                if let Some(m) = reply {
                    if let Err(e) = conn::send(&c.fd, &m, None) {
                        let text = format!("send: {e}");
                        down(inner, i, Some(&text), Some(Reason::Local));
                        return;
                    }
                }
                link_up(inner, i, up);
            }
            Ok(Next::PeerGone(reason)) => {
                i.shared
                    .errors
                    .peer_disconnects
                    .fetch_add(1, Ordering::Relaxed);
                let text = format!("peer disconnected: {reason}");
                (inner.log)(&format!("{}: {text}", name(&i.shared)));
                set_last(&i.shared, &text);
                down(inner, i, None, None);
                return;
            }
            Err(Refusal { reason, text }) => {
                down(inner, i, Some(&text), Some(reason));
                return;
            }
        }
    }
}

fn set_last(s: &Shared, text: &str) {
    *s.last_error.lock().unwrap_or_else(|e| e.into_inner()) = text.to_string();
}

/// Installs a connected link's queues and raises the link.
fn link_up(inner: &Inner, i: &mut Iface, up: conn::Up) {
    let s = &i.shared;
    let mask = !s.cfg.rx_interrupts;
    let nq = up.rx.len();
    let mut fds = s.rx_fds.lock().unwrap_or_else(|e| e.into_inner());
    for (q, mut a) in up.rx.into_iter().enumerate() {
        let Some(slot) = s.rx.get(q) else { break };
        activate(&mut a, mask);
        if let Some(f) = fds.get_mut(q) {
            *f = Some(a.eventfd.clone());
        }
        *slot.lock().state() = Some(a);
    }
    drop(fds);
    let ntx = up.tx.len().min(s.tx.len());
    for (q, mut a) in up.tx.into_iter().enumerate() {
        let Some(slot) = s.tx.get(q) else { break };
        activate(&mut a, mask);
        *slot.lock().state() = Some(a);
    }
    s.tx_up.store(ntx, Ordering::Relaxed);
    s.notify.broken.store(false, Ordering::SeqCst);
    *s.peer.lock().unwrap_or_else(|e| e.into_inner()) = up.peer.clone();
    s.up.store(true, Ordering::Release);
    s.link_events.fetch_add(1, Ordering::AcqRel);
    (inner.log)(&format!(
        "{}: connected to {} with {nq} queue(s)",
        name(s),
        up.peer
    ));
}

/// Ends an interface's connection: optionally tells the peer why (logged and counted
/// under `reason`), removes every queue's state (waiting for bursts in progress), closes
/// the socket, lowers the link; a client retries after its retry interval.
fn down(inner: &Inner, i: &mut Iface, text: Option<&str>, reason: Option<Reason>) {
    let s = &i.shared;
    if let (Some(text), Some(r)) = (text, reason) {
        s.errors.counter(r).fetch_add(1, Ordering::Relaxed);
        (inner.log)(&format!("{}: refused the peer: {text}", name(s)));
        set_last(s, text);
    }
    let Some(c) = i.conn.take() else {
        return;
    };
    if let Some(text) = text {
        let _ = conn::send(
            &c.fd,
            &Msg::Disconnect {
                code: 0,
                reason: Text::new(text),
            },
            None,
        );
    }
    s.tx_up.store(0, Ordering::Relaxed);
    for slot in s.rx.iter().chain(s.tx.iter()) {
        let old = slot.lock().state().take();
        drop(old);
    }
    for f in s
        .rx_fds
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter_mut()
    {
        *f = None;
    }
    s.peer.lock().unwrap_or_else(|e| e.into_inner()).clear();
    if s.up.swap(false, Ordering::AcqRel) {
        s.link_events.fetch_add(1, Ordering::AcqRel);
        (inner.log)(&format!("{}: link down", name(s)));
    }
    i.next_try = Instant::now() + s.cfg.retry;
    drop(c);
}
