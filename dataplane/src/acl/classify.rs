//! The classifier: the first rule of an ACL that matches a packet's [`Key`], by a decision
//! tree over the five match fields (HyperSplit's shape: binary splits at rule boundaries).
//!
//! Each rule is a box in a five-dimensional space (source and destination address ranges,
//! source and destination port ranges, protocol range). An inner node splits its region in
//! two at a value of one field; a leaf holds the boxes of the rules that meet its region,
//! in rule order, so the first of them that contains the key is the answer. A rule that
//! covers a leaf's whole region ends its list (the rules after it can never win there).
//! Splits are chosen to keep both halves small and rules copied into both halves few.
//! Building stops splitting where a leaf is short enough ([`LEAF_RULES`]), where no split
//! makes progress, at [`MAX_DEPTH`], or when the copies reach a budget proportional to the
//! rule count, so memory stays bounded whatever the rule set (a pathological set gets
//! longer leaves, not more memory).
//!
//! IPv4 and IPv6 packets search their own tree (32-bit or 128-bit boxes; a rule of no
//! family is in both). A family with more rules than [`TREE_MAX_V4`] / [`TREE_MAX_V6`] is
//! searched by DPDK's rte_acl instead (when an EAL is there to build it): measured, the
//! tree wins on small rule sets and rte_acl's SIMD tries on larger ones (a tree on
//! ClassBench-like sets copies wildcard-heavy rules into many leaves). A later fragment (no L4 header) is matched by a plain scan of the
//! rules ([`first_match`]): such packets are rare and the scan is exact.
//!
//! Built by the control thread; immutable and shared read-only by the workers.

use super::rule::{first_match, Family, Key, Rule};

/// Leaves with at most this many rules are not split further.
const LEAF_RULES: usize = 6;
/// Deepest a leaf may be.
const MAX_DEPTH: usize = 48;
/// Copies of rules in leaves allowed per rule (plus a constant), the tree's memory budget.
const COPIES_PER_RULE: usize = 24;

/// The fields of a rule box and of a key, in one integer type per family.
trait Field: Copy + Ord + std::fmt::Debug {
    fn from_u128(v: u128) -> Self;
    fn from_u16(v: u16) -> Self;
    fn pred(self) -> Self;
    fn succ(self) -> Self;
}

impl Field for u32 {
    #[inline(always)]
    fn from_u128(v: u128) -> u32 {
        v as u32
    }
    #[inline(always)]
    fn from_u16(v: u16) -> u32 {
        u32::from(v)
    }
    #[inline(always)]
    fn pred(self) -> u32 {
        self - 1
    }
    #[inline(always)]
    fn succ(self) -> u32 {
        self + 1
    }
}

impl Field for u128 {
    #[inline(always)]
    fn from_u128(v: u128) -> u128 {
        v
    }
    #[inline(always)]
    fn from_u16(v: u16) -> u128 {
        u128::from(v)
    }
    #[inline(always)]
    fn pred(self) -> u128 {
        self - 1
    }
    #[inline(always)]
    fn succ(self) -> u128 {
        self + 1
    }
}

/// Fields, in box order: source, destination, source port, destination port, protocol.
const DIMS: usize = 5;

/// A rule as a box: inclusive ranges per field, and its index in the ACL.
#[derive(Debug, Clone, Copy)]
struct RuleBox<F> {
    lo: [F; DIMS],
    hi: [F; DIMS],
    rule: u32,
}

impl<F: Field> RuleBox<F> {
    fn of(r: &Rule, rule: u32, bits: u8) -> RuleBox<F> {
        let (s0, s1) = r.src.range(bits);
        let (d0, d1) = r.dst.range(bits);
        let (p0, p1) = r.proto.map_or((0, 255), |p| (p, p));
        RuleBox {
            lo: [
                F::from_u128(s0),
                F::from_u128(d0),
                F::from_u16(r.sport.0),
                F::from_u16(r.dport.0),
                F::from_u16(p0.into()),
            ],
            hi: [
                F::from_u128(s1),
                F::from_u128(d1),
                F::from_u16(r.sport.1),
                F::from_u16(r.dport.1),
                F::from_u16(p1.into()),
            ],
            rule,
        }
    }

    #[inline(always)]
    fn contains(&self, k: &[F; DIMS]) -> bool {
        // Non-short-circuit ands: five compares and no branches until the end.
        (self.lo[0] <= k[0])
            & (k[0] <= self.hi[0])
            & (self.lo[1] <= k[1])
            & (k[1] <= self.hi[1])
            & (self.lo[2] <= k[2])
            & (k[2] <= self.hi[2])
            & (self.lo[3] <= k[3])
            & (k[3] <= self.hi[3])
            & (self.lo[4] <= k[4])
            & (k[4] <= self.hi[4])
    }

    /// Whether it covers all of `region`.
    fn covers(&self, region: &Region<F>) -> bool {
        (0..DIMS).all(|d| self.lo[d] <= region.lo[d] && region.hi[d] <= self.hi[d])
    }
}

#[derive(Debug, Clone, Copy)]
struct Region<F> {
    lo: [F; DIMS],
    hi: [F; DIMS],
}

/// A node: a split (`dim` < DIMS: keys with field `dim` <= `at` go to `a`, others to `b`)
/// or a leaf (`dim` == LEAF: boxes `a .. a + b` of the leaf array).
#[derive(Debug, Clone, Copy)]
struct Node<F> {
    at: F,
    dim: u8,
    a: u32,
    b: u32,
}

const LEAF: u8 = u8::MAX;

/// One family's tree.
#[derive(Debug, Clone)]
struct Tree<F> {
    nodes: Vec<Node<F>>,
    leaves: Vec<RuleBox<F>>,
}

impl<F: Field> Tree<F> {
    fn build(boxes: Vec<RuleBox<F>>, width: [F; DIMS]) -> Tree<F> {
        let mut t = Tree {
            nodes: Vec::new(),
            leaves: Vec::new(),
        };
        let region = Region {
            lo: [F::from_u16(0); DIMS],
            hi: width,
        };
        let budget = COPIES_PER_RULE * boxes.len() + 1024;
        t.nodes.push(Node {
            at: F::from_u16(0),
            dim: LEAF,
            a: 0,
            b: 0,
        });
        // Depth-first with an explicit stack: (node slot, boxes, region, depth).
        let mut stack = vec![(0usize, boxes, region, 0usize)];
        let mut copies = 0usize;
        while let Some((slot, mut boxes, region, depth)) = stack.pop() {
            if let Some(i) = boxes.iter().position(|b| b.covers(&region)) {
                boxes.truncate(i + 1);
            }
            let split =
                if boxes.len() <= LEAF_RULES || depth >= MAX_DEPTH || copies + boxes.len() > budget
                {
                    None
                } else {
                    best_split(&boxes, &region)
                };
            let Some((dim, at)) = split else {
                copies += boxes.len();
                t.nodes[slot] = Node {
                    at: F::from_u16(0),
                    dim: LEAF,
                    a: t.leaves.len() as u32,
                    b: boxes.len() as u32,
                };
                t.leaves.extend_from_slice(&boxes);
                continue;
            };
            let (mut left, mut right) = (Vec::new(), Vec::new());
            for b in &boxes {
                if b.lo[dim] <= at {
                    left.push(*b);
                }
                if b.hi[dim] > at {
                    right.push(*b);
                }
            }
            let (mut lr, mut rr) = (region, region);
            lr.hi[dim] = at;
            // at < region.hi[dim] (best_split's choice), so at + 1 does not overflow.
            rr.lo[dim] = at.succ();
            let (a, b) = (t.nodes.len(), t.nodes.len() + 1);
            for _ in 0..2 {
                t.nodes.push(Node {
                    at: F::from_u16(0),
                    dim: LEAF,
                    a: 0,
                    b: 0,
                });
            }
            t.nodes[slot] = Node {
                at,
                dim: dim as u8,
                a: a as u32,
                b: b as u32,
            };
            stack.push((b, right, rr, depth + 1));
            stack.push((a, left, lr, depth + 1));
        }
        t
    }

    #[inline(always)]
    fn classify(&self, k: &[F; DIMS]) -> Option<u32> {
        let mut n = self.nodes.first()?;
        while n.dim != LEAF {
            let v = k[usize::from(n.dim) % DIMS];
            let i = if v <= n.at { n.a } else { n.b };
            n = self.nodes.get(i as usize)?;
        }
        let (a, len) = (n.a as usize, n.b as usize);
        self.leaves
            .get(a..a + len)?
            .iter()
            .find(|b| b.contains(k))
            .map(|b| b.rule)
    }
}

/// The split of `region` that keeps the larger half smallest while copying few rules into
/// both halves: (field, value) with keys <= value going left. None if no split puts fewer
/// rules on each side than the node has.
fn best_split<F: Field>(boxes: &[RuleBox<F>], region: &Region<F>) -> Option<(usize, F)> {
    let n = boxes.len();
    let mut best: Option<(usize, usize, F)> = None;
    let mut cuts: Vec<F> = Vec::with_capacity(2 * n);
    for dim in 0..DIMS {
        cuts.clear();
        for b in boxes {
            if b.lo[dim] > region.lo[dim] {
                cuts.push(b.lo[dim].pred());
            }
            if b.hi[dim] < region.hi[dim] {
                cuts.push(b.hi[dim]);
            }
        }
        if cuts.is_empty() {
            continue;
        }
        cuts.sort_unstable();
        cuts.dedup();
        let m = cuts.len();
        for &at in [cuts[m / 2], cuts[m / 4], cuts[(3 * m) / 4]].iter() {
            let l = boxes.iter().filter(|b| b.lo[dim] <= at).count();
            let r = boxes.iter().filter(|b| b.hi[dim] > at).count();
            if l >= n || r >= n {
                continue;
            }
            let cost = l.max(r) + (l + r - n);
            if best.is_none_or(|(c, _, _)| cost < c) {
                best = Some((cost, dim, at));
            }
        }
    }
    best.map(|(_, dim, at)| (dim, at))
}

/// Most rules of one family searched by the tree rather than by rte_acl: below these the
/// tree is faster, above them rte_acl, on ClassBench-like rule sets, with AVX-512 (vswitchd's
/// default `--max-simd-bitwidth`; `perf/aclbench.sh`,
/// perf/results/2026-12-04-aclbench-crossover-512.md, cycles a key, tree against rte_acl's
/// best: IPv4 8 rules 49 against 56, 12 rules 61 against 55, 16 rules 71 against 53; IPv6
/// 16 rules 114 against 131, 24 rules 134 against 133, 32 rules 153 against 150, 48 rules
/// 202 against 169). rte_acl's figures swing between runs (IPv4 12 rules 73 against 73 in
/// another); a tie goes to the tree (far smaller, built in microseconds). With AVX2 the
/// crossover is as high or higher (2026-12-02-aclbench-crossover.md: IPv4 16 rules 84
/// against 97).
pub const TREE_MAX_V4: usize = 10;
pub const TREE_MAX_V6: usize = 32;

/// How one family's rules are searched.
enum Search<F, I: dpdk::acl::AclInput> {
    Tree(Tree<F>),
    /// DPDK's rte_acl (SIMD tries), with the ACL's rule index of each of its rules.
    Dpdk {
        ctx: dpdk::acl::Acl<I>,
        index: Box<[u32]>,
    },
}

impl<F, I: dpdk::acl::AclInput> std::fmt::Debug for Search<F, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Search::Tree(_) => "tree",
            Search::Dpdk { .. } => "rte_acl",
        })
    }
}

impl<F: Field, I: dpdk::acl::AclInput> Search<F, I> {
    /// The search of one family's `rules` (each with its ACL index): the tree up to `tree_max`
    /// rules or without an EAL; rte_acl above (the tree if rte_acl's build fails: more than
    /// its 8 tries, or DPDK's heap full).
    fn build(
        rules: &[(u32, &Rule)],
        bits: u8,
        width: [F; DIMS],
        tree_max: usize,
        eal: Option<&dpdk::Eal>,
    ) -> Search<F, I> {
        if let (Some(eal), true) = (eal, rules.len() > tree_max) {
            let dr: Vec<dpdk::AclRule> = rules.iter().map(|(_, r)| dpdk_rule(r)).collect();
            if let Ok(ctx) = dpdk::acl::Acl::<I>::build(eal, &dr) {
                return Search::Dpdk {
                    ctx,
                    index: rules.iter().map(|(i, _)| *i).collect(),
                };
            }
        }
        let boxes = rules
            .iter()
            .map(|(i, r)| RuleBox::<F>::of(r, *i, bits))
            .collect();
        Search::Tree(Tree::build(boxes, width))
    }

    fn size(&self) -> (usize, usize) {
        match self {
            Search::Tree(t) => (t.nodes.len(), t.leaves.len()),
            Search::Dpdk { ctx, .. } => (0, ctx.rules()),
        }
    }
}

fn dpdk_rule(r: &Rule) -> dpdk::AclRule {
    let p = |n: &super::rule::Net| dpdk::AclPrefix {
        addr: n.addr,
        len: n.len,
    };
    dpdk::AclRule {
        proto: r.proto,
        src: p(&r.src),
        dst: p(&r.dst),
        sport: r.sport,
        dport: r.dport,
    }
}

/// Finds the first matching rule of an ACL.
#[derive(Debug)]
pub struct Classifier {
    v4: Search<u32, dpdk::Acl4Input>,
    v6: Search<u128, dpdk::Acl6Input>,
    /// Every rule, for later fragments.
    rules: Box<[Rule]>,
}

impl Classifier {
    /// Builds the classifier of `rules` (in match order); with an EAL, families with many
    /// rules are searched by rte_acl.
    pub fn build(rules: &[Rule], eal: Option<&dpdk::Eal>) -> Classifier {
        let of = |f: Family| -> Vec<(u32, &Rule)> {
            rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.family != Some(f))
                .map(|(i, r)| (i as u32, r))
                .collect()
        };
        Classifier {
            v4: Search::build(
                &of(Family::V6),
                32,
                [u32::MAX, u32::MAX, 0xffff, 0xffff, 0xff],
                TREE_MAX_V4,
                eal,
            ),
            v6: Search::build(
                &of(Family::V4),
                128,
                [u128::MAX, u128::MAX, 0xffff, 0xffff, 0xff],
                TREE_MAX_V6,
                eal,
            ),
            rules: rules.into(),
        }
    }

    /// The index of the first rule that matches `k`.
    #[inline]
    pub fn classify(&self, k: &Key) -> Option<u32> {
        let mut out = [None];
        self.classify_many(std::slice::from_ref(k), &mut out);
        out[0]
    }

    /// The index of the first rule that matches each key (for `i` below the shorter
    /// length): rte_acl's families in one call per family.
    #[inline]
    pub fn classify_many(&self, keys: &[Key], out: &mut [Option<u32>]) {
        let n = keys.len().min(out.len());
        let (keys, out) = (&keys[..n], &mut out[..n]);
        let mut dpdk4 = false;
        let mut dpdk6 = false;
        for (k, o) in keys.iter().zip(out.iter_mut()) {
            if k.later_fragment {
                *o = self.fragment(k);
                continue;
            }
            let (sp, dp, p) = (k.sport, k.dport, k.proto);
            match (k.family, &self.v4, &self.v6) {
                (Family::V4, Search::Tree(t), _) => {
                    *o = t.classify(&[k.src as u32, k.dst as u32, sp.into(), dp.into(), p.into()])
                }
                (Family::V6, _, Search::Tree(t)) => {
                    *o = t.classify(&[k.src, k.dst, sp.into(), dp.into(), p.into()])
                }
                (Family::V4, _, _) => dpdk4 = true,
                (Family::V6, _, _) => dpdk6 = true,
            }
        }
        if dpdk4 {
            if let Search::Dpdk { ctx, index } = &self.v4 {
                dpdk_batch(ctx, index, keys, out, Family::V4, |k| {
                    dpdk::Acl4Input::new(k.proto, k.src as u32, k.dst as u32, k.sport, k.dport)
                });
            }
        }
        if dpdk6 {
            if let Search::Dpdk { ctx, index } = &self.v6 {
                dpdk_batch(ctx, index, keys, out, Family::V6, |k| {
                    dpdk::Acl6Input::new(k.proto, k.src, k.dst, k.sport, k.dport)
                });
            }
        }
    }

    #[cold]
    fn fragment(&self, k: &Key) -> Option<u32> {
        first_match(&self.rules, k).map(|i| i as u32)
    }

    /// How each family is searched ("tree" or "rte_acl").
    pub fn engines(&self) -> (String, String) {
        (format!("{:?}", self.v4), format!("{:?}", self.v6))
    }

    /// Tree nodes and leaf entries (or rte_acl rules) of both families.
    pub fn size(&self) -> (usize, usize) {
        let (a, b) = (self.v4.size(), self.v6.size());
        (a.0 + b.0, a.1 + b.1)
    }
}

/// Classifies the keys of `family` (not later fragments) by rte_acl, `CHUNK` at a time.
#[inline]
fn dpdk_batch<I: dpdk::acl::AclInput + Default>(
    ctx: &dpdk::acl::Acl<I>,
    index: &[u32],
    keys: &[Key],
    out: &mut [Option<u32>],
    family: Family,
    input: impl Fn(&Key) -> I,
) {
    const CHUNK: usize = 64;
    let mut inputs = [I::default(); CHUNK];
    let mut at = [0usize; CHUNK];
    let mut results = [0u32; CHUNK];
    let mut n = 0;
    let flush = |inputs: &[I], at: &[usize], results: &mut [u32], out: &mut [Option<u32>]| {
        ctx.classify(inputs, results);
        for (&i, &r) in at.iter().zip(results.iter()) {
            out[i] = dpdk::acl::rule_index(r).and_then(|x| index.get(x as usize).copied());
        }
    };
    for (i, k) in keys.iter().enumerate() {
        if k.family != family || k.later_fragment {
            continue;
        }
        inputs[n] = input(k);
        at[n] = i;
        n += 1;
        if n == CHUNK {
            flush(&inputs, &at, &mut results, out);
            n = 0;
        }
    }
    if n > 0 {
        flush(&inputs[..n], &at[..n], &mut results[..n], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::rule::{Action, Net};
    use proptest::prelude::*;

    /// A random rule: family, protocol, prefixes and port ranges drawn from small pools
    /// so that rules overlap and keys hit them.
    fn rule() -> impl Strategy<Value = Rule> {
        (
            0u8..3,
            prop_oneof![
                Just(None),
                Just(Some(6u8)),
                Just(Some(17u8)),
                Just(Some(1u8)),
                Just(Some(58u8))
            ],
            (any::<u32>(), 0u8..=32, any::<u32>(), 0u8..=32),
            (
                0u16..8,
                0u16..8,
                0u16..8,
                0u16..8,
                any::<bool>(),
                any::<bool>(),
            ),
            prop_oneof![
                Just(Action::Permit),
                Just(Action::Deny),
                Just(Action::PermitReflect)
            ],
        )
            .prop_map(
                |(fam, proto, (s, sl, d, dl), (a, b, c, e, sp, dp), action)| {
                    let family = match fam {
                        0 => None,
                        1 => Some(Family::V4),
                        _ => Some(Family::V6),
                    };
                    // Addresses from a small pool (the top bits vary little) so that prefixes nest.
                    let addr = |x: u32, len: u8| match family {
                        Some(Family::V6) => Net {
                            addr: (u128::from(x & 0xff00_00ff) << 96) | u128::from(x & 0xf),
                            len: len * 4,
                        },
                        Some(Family::V4) => Net {
                            addr: u128::from(x & 0xff00_00ff),
                            len,
                        },
                        None => Net::ANY,
                    };
                    let range = |x: u16, y: u16, on: bool| {
                        if on {
                            (x.min(y) * 1000, x.max(y) * 1000 + 999)
                        } else {
                            Rule::ANY_PORT
                        }
                    };
                    Rule {
                        action,
                        family,
                        proto,
                        src: addr(s, sl),
                        dst: addr(d, dl),
                        sport: range(a, b, sp),
                        dport: range(c, e, dp),
                    }
                },
            )
    }

    fn key() -> impl Strategy<Value = Key> {
        (
            any::<bool>(),
            prop_oneof![Just(6u8), Just(17u8), Just(1u8), Just(58u8), any::<u8>()],
            any::<u32>(),
            any::<u32>(),
            0u16..9000,
            0u16..9000,
            0u8..20,
        )
            .prop_map(|(v6, proto, s, d, sport, dport, f)| {
                let a = |x: u32| {
                    if v6 {
                        (u128::from(x & 0xff00_00ff) << 96) | u128::from(x & 0xf)
                    } else {
                        u128::from(x & 0xff00_00ff)
                    }
                };
                Key {
                    family: if v6 { Family::V6 } else { Family::V4 },
                    proto,
                    src: a(s),
                    dst: a(d),
                    sport,
                    dport,
                    later_fragment: f == 0,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The tree finds the rule a plain scan finds, for rule sets large enough to be
        /// split many times.
        #[test]
        fn the_tree_agrees_with_a_plain_scan(
            rules in proptest::collection::vec(rule(), 0..300),
            keys in proptest::collection::vec(key(), 200),
        ) {
            let c = Classifier::build(&rules, None);
            for k in &keys {
                prop_assert_eq!(c.classify(k), first_match(&rules, k).map(|i| i as u32), "{:?}", k);
            }
            // Keys inside rules (the corners of their boxes), which random keys rarely hit.
            for r in &rules {
                let fam = r.family.unwrap_or(Family::V4);
                let bits = if fam == Family::V4 { 32 } else { 128 };
                for corner in [false, true] {
                    let pick = |n: &Net| { let (lo, hi) = n.range(bits); if corner { hi } else { lo } };
                    let k = Key {
                        family: fam,
                        proto: r.proto.unwrap_or(6),
                        src: pick(&r.src),
                        dst: pick(&r.dst),
                        sport: if corner { r.sport.1 } else { r.sport.0 },
                        dport: if corner { r.dport.1 } else { r.dport.0 },
                        later_fragment: false,
                    };
                    prop_assert_eq!(c.classify(&k), first_match(&rules, &k).map(|i| i as u32), "{:?}", k);
                }
            }
        }
    }

    #[test]
    fn an_empty_acl_matches_nothing() {
        let c = Classifier::build(&[], None);
        assert_eq!(c.classify(&Key::default()), None);
    }

    #[test]
    fn a_thousand_disjoint_rules_make_a_shallow_tree() {
        let rules: Vec<Rule> = (0..1000u32)
            .map(|j| Rule {
                family: Some(Family::V4),
                proto: Some(17),
                src: Net {
                    addr: u128::from(0x0a00_0000 | (j << 8)),
                    len: 24,
                },
                dst: Net {
                    addr: u128::from(0xc612_0000u32),
                    len: 15,
                },
                dport: (1000, 1999),
                ..Rule::any(Action::Permit)
            })
            .collect();
        let c = Classifier::build(&rules, None);
        let (nodes, leaves) = c.size();
        assert!(leaves <= 2 * rules.len(), "{leaves} leaf entries");
        assert!(nodes <= rules.len(), "{nodes} nodes");
        for j in [0u32, 1, 500, 999] {
            let k = Key {
                proto: 17,
                src: u128::from(0x0a00_0000 | (j << 8) | 7),
                dst: u128::from(0xc613_0102u32),
                dport: 1500,
                ..Key::default()
            };
            assert_eq!(c.classify(&k), Some(j));
        }
    }
}
