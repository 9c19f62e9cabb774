//! ACLs and their bindings: validation, staging, persisted form, proto form and the plan's
//! part ([`plan`]). One rule's text, checks and dataplane form are in acl_rule.rs.
//!
//! An ACL is a name and 1 to [`MAX_RULES`] rules in match order (the first that matches a
//! packet decides; none: deny). `SetAcl` replaces the rules of an existing ACL, bindings
//! kept: the switch builds the new ACL and publishes it in one plan, so each packet sees
//! the old rules or the new ones (and the new rules' hit counters start at 0).
//!
//! A binding puts an ACL on an interface (a port or a tunnel) in one direction, `in`
//! (frames received) or `out` (frames sent): one ACL per (interface, direction), an ACL on
//! any number of them. A bridge's routed interface (`bvi:BR`) cannot have one yet. An ACL
//! cannot be deleted while bound (the error names a binding); deleting an interface drops
//! its bindings (so the journal, which holds the delete, replays to the same state).
//!
//! Persisted form: every ACL (its rules as the switch holds them), then every binding,
//! after everything else ([`super::Model::changes`]): bindings need their interfaces and
//! ACLs.

use std::collections::BTreeMap;
use std::sync::Arc;

use vswitch_dataplane::acl::{Acl as BuiltAcl, AclBindings, Dir};
use vswitch_dataplane::IfIndex;
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::acl_rule::{self, RuleSpec};
use super::iface::bvi_bridge;
use super::{Model, Staged};
use crate::error::{required, ApiError, ApiResult};
use crate::names::check_name;

/// Most rules in one ACL.
pub const MAX_RULES: usize = 65535;

/// Which way an ACL sees an interface's frames (the model's ordered form of [`Dir`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    /// `in` or `out`, as the API names it.
    pub fn parse(s: &str) -> ApiResult<Direction> {
        match s {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            "" => Err(ApiError::invalid("direction is required (in or out)")),
            d => Err(ApiError::invalid(format!(
                "direction must be in or out, not {d:?}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    /// The dataplane's direction.
    pub fn dir(self) -> Dir {
        match self {
            Direction::In => Dir::In,
            Direction::Out => Dir::Out,
        }
    }
}

/// ACL `name`'s rules, NOT_FOUND if there is none of that name.
pub fn existing<'a>(m: &'a Model, name: &str) -> ApiResult<&'a Arc<[RuleSpec]>> {
    m.acls
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("acl {name:?} not found")))
}

/// The rules of a request: 1 to [`MAX_RULES`], each checked (errors name the rule, from 1).
fn check_rules(rules: &[pb::AclRule]) -> ApiResult<Arc<[RuleSpec]>> {
    if rules.is_empty() {
        return Err(ApiError::invalid(
            "rules: an ACL needs at least one rule (a lone `deny` denies everything)",
        ));
    }
    if rules.len() > MAX_RULES {
        return Err(ApiError::invalid(format!(
            "rules: an ACL has at most {MAX_RULES} rules, not {}",
            rules.len()
        )));
    }
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            acl_rule::check(r).map_err(|e| ApiError {
                code: e.code,
                message: format!("rule {}: {}", i + 1, e.message),
            })
        })
        .collect()
}

/// The bindings of ACL `name`: (interface, direction), by interface then direction.
pub fn bindings_of<'a>(
    m: &'a Model,
    name: &'a str,
) -> impl Iterator<Item = (&'a Arc<str>, Direction)> + 'a {
    m.acl_bindings
        .iter()
        .filter(move |(_, acl)| &***acl == name)
        .map(|((iface, d), _)| (iface, *d))
}

/// `acl add NAME RULE...`.
pub(super) fn add(s: &mut Staged, r: &pb::AddAclRequest) -> ApiResult<String> {
    check_name("name", &r.name).map_err(ApiError::invalid)?;
    if s.model.acls.contains_key(r.name.as_str()) {
        return Err(ApiError::exists(format!(
            "acl {:?} exists already (acl set replaces its rules)",
            r.name
        )));
    }
    let rules = check_rules(&r.rules)?;
    s.model.acls.insert(r.name.clone(), rules);
    s.diff.acls.insert(r.name.clone());
    Ok(r.name.clone())
}

/// `acl set NAME RULE...`: the ACL's rules replaced, its bindings kept.
pub(super) fn set(s: &mut Staged, r: &pb::SetAclRequest) -> ApiResult<String> {
    required("name", &r.name)?;
    existing(&s.model, &r.name)?;
    let rules = check_rules(&r.rules)?;
    s.model.acls.insert(r.name.clone(), rules);
    s.diff.acls.insert(r.name.clone());
    if bindings_of(&s.model, &r.name).next().is_some() {
        s.diff.plan = true;
    }
    Ok(r.name.clone())
}

/// `acl del NAME`: refused while bound.
pub(super) fn delete(s: &mut Staged, r: &pb::DeleteAclRequest) -> ApiResult<String> {
    required("name", &r.name)?;
    existing(&s.model, &r.name)?;
    if let Some((iface, d)) = bindings_of(&s.model, &r.name).next() {
        return Err(ApiError::conflict(format!(
            "acl {:?} is bound to {iface} {} (acl unbind {iface} {} first)",
            r.name,
            d.name(),
            d.name()
        )));
    }
    s.model.acls.remove(r.name.as_str());
    s.diff.acls.insert(r.name.clone());
    Ok(r.name.clone())
}

/// The interface of a binding: a port or a tunnel of the model.
fn bindable(m: &Model, iface: &str) -> ApiResult<()> {
    if bvi_bridge(iface).is_some() {
        return Err(ApiError::invalid(format!(
            "iface {iface}: ACLs on a bridge's routed interface are not supported yet"
        )));
    }
    m.iface(iface).map(|_| ())
}

/// `acl bind IFACE NAME in|out`.
pub(super) fn bind(s: &mut Staged, r: &pb::BindAclRequest) -> ApiResult<String> {
    required("iface", &r.iface)?;
    required("acl", &r.acl)?;
    let d = Direction::parse(&r.direction)?;
    bindable(&s.model, &r.iface)?;
    existing(&s.model, &r.acl)?;
    let key = (Arc::from(r.iface.as_str()), d);
    if let Some(other) = s.model.acl_bindings.get(&key) {
        return Err(ApiError::exists(format!(
            "{} {} has acl {other:?} already: one ACL per interface and direction (acl \
             unbind {} {} first)",
            r.iface,
            d.name(),
            r.iface,
            d.name()
        )));
    }
    s.model.acl_bindings.insert(key, Arc::from(r.acl.as_str()));
    s.diff.plan = true;
    Ok(format!("{}/{}", r.iface, d.name()))
}

/// `acl unbind IFACE in|out`.
pub(super) fn unbind(s: &mut Staged, r: &pb::UnbindAclRequest) -> ApiResult<String> {
    required("iface", &r.iface)?;
    let d = Direction::parse(&r.direction)?;
    bindable(&s.model, &r.iface)?;
    if s.model
        .acl_bindings
        .remove(&(Arc::from(r.iface.as_str()), d))
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "no acl is bound to {} {}",
            r.iface,
            d.name()
        )));
    }
    s.diff.plan = true;
    Ok(format!("{}/{}", r.iface, d.name()))
}

/// Drops the bindings of interface `name` (it is being deleted).
pub(super) fn forget_iface(s: &mut Staged, name: &str) {
    for d in [Direction::In, Direction::Out] {
        if s.model.acl_bindings.remove(&(Arc::from(name), d)).is_some() {
            s.diff.plan = true;
        }
    }
}

/// ACL `name`'s proto form, with the hits of its built form (`None`: all 0).
pub fn to_pb(m: &Model, name: &str, built: Option<&BuiltAcl>) -> ApiResult<pb::Acl> {
    let rules = existing(m, name)?;
    let mut hits = built.map(BuiltAcl::hits).unwrap_or_default();
    hits.resize(rules.len() + 1, 0);
    let default_hits = hits.pop().unwrap_or_default();
    Ok(pb::Acl {
        name: name.to_string(),
        rules: rules.iter().map(RuleSpec::to_pb).collect(),
        hits,
        default_hits,
        bindings: bindings_of(m, name)
            .map(|(iface, d)| pb::AclBinding {
                iface: iface.to_string(),
                acl: name.to_string(),
                direction: d.name().to_string(),
            })
            .collect(),
    })
}

/// Every ACL's name, in order.
pub fn names(m: &Model) -> impl Iterator<Item = &String> {
    m.acls.keys()
}

/// Bindings in all.
pub fn bindings_len(m: &Model) -> usize {
    m.acl_bindings.len()
}

/// ACL `name` built for the dataplane, for `workers` workers (its classifier: done once
/// per change of its rules, on the control thread).
/// With the EAL, large rule sets are searched by rte_acl (the dataplane's classifier
/// chooses by size).
pub fn build(
    m: &Model,
    name: &str,
    workers: usize,
    eal: Option<&dpdk::Eal>,
) -> Option<Arc<BuiltAcl>> {
    let rules = m.acls.get(name)?;
    Some(Arc::new(BuiltAcl::new(
        name,
        rules.iter().map(RuleSpec::to_rule).collect(),
        workers,
        eal,
    )))
}

/// The plan's part: every binding whose interface has an index (`index`) and whose ACL is
/// built (`built`), with the session table their permit-reflect rules fill.
pub fn plan(
    m: &Model,
    index: &dyn Fn(&str) -> Option<IfIndex>,
    built: &BTreeMap<String, Arc<BuiltAcl>>,
    sessions: &Arc<vswitch_dataplane::acl::Sessions>,
) -> AclBindings {
    let mut out = AclBindings::new(Some(sessions.clone()));
    for ((iface, d), acl) in &m.acl_bindings {
        if let (Some(i), Some(a)) = (index(iface), built.get(&**acl)) {
            out.bind(i, d.dir(), a.clone());
        }
    }
    out
}

/// The changes that re-create every ACL, then every binding.
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    for (name, rules) in &m.acls {
        out.push(C::AddAcl(pb::AddAclRequest {
            name: name.clone(),
            rules: rules.iter().map(RuleSpec::to_pb).collect(),
        }));
    }
    for ((iface, d), acl) in &m.acl_bindings {
        out.push(C::BindAcl(pb::BindAclRequest {
            iface: iface.to_string(),
            acl: acl.to_string(),
            direction: d.name().to_string(),
        }));
    }
}
