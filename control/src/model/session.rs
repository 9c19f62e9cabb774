//! The session table of stateful ACLs: its settings (`session set`), a persisted
//! configuration as the neighbour table's is, and flushing its sessions (`sessions flush`),
//! an action that is not persisted (as `fdb flush`). Validation, staging, persisted form,
//! proto form. The table itself is the dataplane's (`vswitch_dataplane::acl::session`); the
//! switch applies these settings to it on commit.
//!
//! Errors name the keys as `vsctl session set` takes them (iface-limit, timeout-tcp, ...:
//! the fields iface_limit, timeout_tcp, ...), as ACL rules' do.
//!
//! Settings: `limit` (1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]), `iface-limit` (1 to
//! the limit; unset, it follows the limit), and four idle timeouts (1 to [`MAX_TIMEOUT`]
//! seconds; defaults those of [`Timeouts::default`]).

use vswitch_dataplane::acl::{SessionConfig, Timeouts};
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::{iface, Model, Staged};
use crate::error::{ApiError, ApiResult};
pub use crate::sessions::{DEFAULT_LIMIT, MAX_LIMIT};

/// The longest timeout: a week.
pub const MAX_TIMEOUT: u32 = 7 * 86_400;

/// The table's settings as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    pub limit: u32,
    /// None: the same as `limit`.
    pub iface_limit: Option<u32>,
    pub timeouts: Timeouts,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            limit: DEFAULT_LIMIT,
            iface_limit: None,
            timeouts: Timeouts::default(),
        }
    }
}

impl SessionSettings {
    /// What the dataplane's table is configured with.
    pub fn dataplane(&self) -> SessionConfig {
        SessionConfig {
            limit: self.limit,
            iface_limit: self.iface_limit.unwrap_or(self.limit),
            timeouts: self.timeouts,
        }
    }
}

/// `session set [limit=N] [iface-limit=N] [timeout-tcp=S] [timeout-tcp-transitory=S]
/// [timeout-udp=S] [timeout-icmp=S]`: at least one; validated whole before anything is set.
pub(super) fn set_config(s: &mut Staged, r: &pb::SetSessionConfigRequest) -> ApiResult<String> {
    let timeouts = [
        ("timeout-tcp", r.timeout_tcp),
        ("timeout-tcp-transitory", r.timeout_tcp_transitory),
        ("timeout-udp", r.timeout_udp),
        ("timeout-icmp", r.timeout_icmp),
    ];
    if r.limit.is_none() && r.iface_limit.is_none() && timeouts.iter().all(|t| t.1.is_none()) {
        return Err(ApiError::invalid(
            "nothing to set: give limit, iface-limit, timeout-tcp, timeout-tcp-transitory, \
             timeout-udp and/or timeout-icmp",
        ));
    }
    if let Some(l) = r.limit.filter(|l| !(1..=MAX_LIMIT).contains(l)) {
        return Err(ApiError::invalid(format!(
            "limit must be from 1 to {MAX_LIMIT}, not {l}"
        )));
    }
    for (key, v) in timeouts {
        if let Some(t) = v.filter(|t| !(1..=MAX_TIMEOUT).contains(t)) {
            return Err(ApiError::invalid(format!(
                "{key} must be from 1 to {MAX_TIMEOUT} seconds, not {t}"
            )));
        }
    }
    let mut c = s.model.session_config;
    c.limit = r.limit.unwrap_or(c.limit);
    if let Some(il) = r.iface_limit {
        c.iface_limit = Some(il);
    }
    if let Some(il) = c.iface_limit.filter(|il| !(1..=c.limit).contains(il)) {
        let why = if r.iface_limit.is_some() {
            format!(
                "iface-limit must be from 1 to the limit ({}), not {il}",
                c.limit
            )
        } else {
            format!(
                "limit {} is below iface-limit {il}: lower iface-limit too",
                c.limit
            )
        };
        return Err(ApiError::invalid(why));
    }
    let t = &mut c.timeouts;
    t.tcp = r.timeout_tcp.unwrap_or(t.tcp);
    t.tcp_transitory = r.timeout_tcp_transitory.unwrap_or(t.tcp_transitory);
    t.udp = r.timeout_udp.unwrap_or(t.udp);
    t.icmp = r.timeout_icmp.unwrap_or(t.icmp);
    s.model.session_config = c;
    s.diff.sessions = true;
    Ok("sessions".to_string())
}

/// `sessions flush [IFACE]`: checked here, done by the switch on commit.
pub(super) fn flush(
    s: &mut Staged,
    index: usize,
    r: &pb::FlushSessionsRequest,
) -> ApiResult<String> {
    let iface = if r.iface.is_empty() {
        None
    } else {
        check_iface(&s.model, &r.iface)?;
        Some(r.iface.clone())
    };
    let object = iface.clone().unwrap_or_else(|| "all".to_string());
    s.diff.session_flushes.push((index, iface));
    Ok(object)
}

/// An interface sessions can be on: any interface (port or tunnel), or a bridge's routed
/// interface `bvi:BR` of an existing bridge. NOT_FOUND otherwise.
pub fn check_iface(m: &Model, name: &str) -> ApiResult<()> {
    match iface::bvi_bridge(name) {
        Some(br) => m.bridge(br).map(|_| ()),
        None => m.iface(name).map(|_| ()),
    }
}

/// The settings in their proto form (the counters are the switch's to fill in).
pub fn config_pb(m: &Model) -> pb::SessionConfig {
    let c = &m.session_config;
    let d = c.dataplane();
    pb::SessionConfig {
        limit: d.limit,
        iface_limit: d.iface_limit,
        iface_limit_set: c.iface_limit.is_some(),
        timeout_tcp: d.timeouts.tcp,
        timeout_tcp_transitory: d.timeouts.tcp_transitory,
        timeout_udp: d.timeouts.udp,
        timeout_icmp: d.timeouts.icmp,
        ..Default::default()
    }
}

/// The change that re-creates the settings, if they are not the defaults.
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    let c = &m.session_config;
    if *c != SessionSettings::default() {
        out.push(C::SetSessionConfig(pb::SetSessionConfigRequest {
            limit: Some(c.limit),
            iface_limit: c.iface_limit,
            timeout_tcp: Some(c.timeouts.tcp),
            timeout_tcp_transitory: Some(c.timeouts.tcp_transitory),
            timeout_udp: Some(c.timeouts.udp),
            timeout_icmp: Some(c.timeouts.icmp),
        }));
    }
}
