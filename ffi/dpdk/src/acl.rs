//! DPDK's packet classifier (rte_acl): first-match ACLs over the 5-tuple, IPv4 ([`Acl4`])
//! and IPv6 ([`Acl6`]).
//!
//! A context is built once from an ordered list of [`AclRule`]s and is then read-only:
//! rte_acl returns the matching rule of highest priority, so rule `i` of `n` gets priority
//! `n - i` (the first matching rule wins, as in an ACL) and user data `i + 1`. A result is
//! that user data: [`NO_MATCH`] (0) when no rule matches, else the rule's index plus one
//! ([`rule_index`] turns it back).
//!
//! Input: rte_acl reads each field at a byte offset from a per-packet data pointer, in
//! network byte order, 4 bytes at a time per group of fields, and its first field must be
//! one byte long. The layouts here are compact keys, not packet headers: [`Acl4Input`] (16
//! bytes: protocol, 3 bytes of padding, source, destination, source port, destination port)
//! and [`Acl6Input`] (40 bytes, the same with 16-byte addresses, each address as four 4-byte
//! fields). For ICMP the ports hold the type and code, as the dataplane's rules do. A key
//! holds no fragment state: a caller that must not let rules with ports match a later
//! fragment has to keep such packets away from rules with ports itself.
//!
//! Memory: the context, its copy of the rules and its run-time tries live in DPDK's heap
//! (rte_zmalloc, so the EAL must be up); [`Acl::memory`] is how much that heap grew across
//! the build. The build itself also uses plain malloc for temporary structures.
//!
//! Thread safety: building (create, add, build) and [`Acl::set_algorithm`] write the context
//! and take `&mut self` or own it; classifying takes `&self` and only reads it (rte_acl's
//! classify functions take a const context and keep their state on the caller's stack), so
//! the type is `Send` and `Sync` and many workers may classify through one context at once.
//! A changed rule set is a new context, published to the workers by the caller (an `Arc`
//! swapped per burst, or RCU); the old one is dropped when no worker can still read it.

use std::marker::PhantomData;
use std::mem::{offset_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::lpm::heap_allocated;
use crate::Eal;

/// The result of a packet no rule matches.
pub const NO_MATCH: u32 = 0;

/// Data pointers per rte_acl_classify call in [`Acl::classify`] (an array on the stack).
const CLASSIFY_CHUNK: usize = 64;

/// Any NUMA socket (SOCKET_ID_ANY).
const SOCKET_ID_ANY: i32 = -1;

/// The rule index a classify result names: None for [`NO_MATCH`].
#[inline(always)]
pub fn rule_index(result: u32) -> Option<u32> {
    result.checked_sub(1)
}

/// An address prefix; IPv4 addresses are held in the low 32 bits. Host bits are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AclPrefix {
    pub addr: u128,
    pub len: u8,
}

impl AclPrefix {
    /// Every address.
    pub const ANY: AclPrefix = AclPrefix { addr: 0, len: 0 };
}

/// One rule: protocol (None: any), source and destination prefixes, inclusive port ranges
/// (ICMP: type and code ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AclRule {
    pub proto: Option<u8>,
    pub src: AclPrefix,
    pub dst: AclPrefix,
    pub sport: (u16, u16),
    pub dport: (u16, u16),
}

impl AclRule {
    /// A rule that matches every packet.
    pub const ANY: AclRule = AclRule {
        proto: None,
        src: AclPrefix::ANY,
        dst: AclPrefix::ANY,
        sport: (0, u16::MAX),
        dport: (0, u16::MAX),
    };
}

/// A packet's 5-tuple as rte_acl reads it, with `A`-byte addresses: protocol, 3 bytes of
/// padding, source, destination, source port, destination port, all in network byte order
/// ([`Acl4Input`]: 16 bytes, [`Acl6Input`]: 40).
#[repr(C, align(4))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclTuple<const A: usize> {
    proto: u8,
    _pad: [u8; 3],
    src: [u8; A],
    dst: [u8; A],
    sport: [u8; 2],
    dport: [u8; 2],
}

/// The IPv4 input.
pub type Acl4Input = AclTuple<4>;
/// The IPv6 input.
pub type Acl6Input = AclTuple<16>;

impl<const A: usize> AclTuple<A> {
    #[inline(always)]
    fn with(proto: u8, src: [u8; A], dst: [u8; A], sport: u16, dport: u16) -> Self {
        AclTuple {
            proto,
            _pad: [0; 3],
            src,
            dst,
            sport: sport.to_be_bytes(),
            dport: dport.to_be_bytes(),
        }
    }

    /// rte_acl's field definitions of this layout.
    fn defs() -> Vec<dpdk_sys::rte_acl_field_def> {
        field_defs(
            A / 4,
            offset_of!(Self, src),
            offset_of!(Self, dst),
            offset_of!(Self, sport),
        )
    }
}

impl<const A: usize> Default for AclTuple<A> {
    fn default() -> Self {
        Self::with(0, [0; A], [0; A], 0, 0)
    }
}

impl Acl4Input {
    /// The input of a packet; addresses in host order (`0x0a000001` is 10.0.0.1).
    #[inline(always)]
    pub fn new(proto: u8, src: u32, dst: u32, sport: u16, dport: u16) -> Self {
        Self::with(proto, src.to_be_bytes(), dst.to_be_bytes(), sport, dport)
    }
}

impl Acl6Input {
    /// The input of a packet; addresses as `u128` (`Ipv6Addr::to_bits` order).
    #[inline(always)]
    pub fn new(proto: u8, src: u128, dst: u128, sport: u16, dport: u16) -> Self {
        Self::with(proto, src.to_be_bytes(), dst.to_be_bytes(), sport, dport)
    }
}

mod sealed {
    /// A rule as rte_acl takes it (RTE_ACL_RULE_DEF with `F` fields).
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct RawRule<const F: usize> {
        pub data: dpdk_sys::rte_acl_rule_data,
        pub field: [dpdk_sys::rte_acl_field; F],
    }

    /// What a family's input layout tells the build.
    pub trait Layout {
        /// The rule type of this layout's field count.
        type Raw: Copy;
        /// Bits in an address.
        const BITS: u8;
        /// rte_acl's field definitions of the layout, in rule field order.
        fn field_defs() -> Vec<dpdk_sys::rte_acl_field_def>;
        /// `rule` in this layout.
        fn raw_rule(rule: &super::AclRule, data: dpdk_sys::rte_acl_rule_data) -> Self::Raw;
    }
}

use sealed::{Layout, RawRule};

/// An input layout: [`Acl4Input`] or [`Acl6Input`].
pub trait AclInput: Layout + Copy {}
impl AclInput for Acl4Input {}
impl AclInput for Acl6Input {}

/// Field definitions of a layout: protocol (a 1-byte bitmask, alone in input group 0), then
/// `words` 4-byte mask fields of the source address, as many of the destination, then the
/// two 2-byte port ranges sharing one group.
fn field_defs(
    words: usize,
    src: usize,
    dst: usize,
    sport: usize,
) -> Vec<dpdk_sys::rte_acl_field_def> {
    let def = |type_: u32, size: usize, field: usize, input: usize, offset: usize| {
        dpdk_sys::rte_acl_field_def {
            type_: type_ as u8,
            size: size as u8,
            field_index: field as u8,
            input_index: input as u8,
            offset: offset as u32,
        }
    };
    let mut defs = vec![def(dpdk_sys::RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, 0, 0)];
    for (base, start) in [(src, 1), (dst, 1 + words)] {
        for w in 0..words {
            let at = start + w;
            defs.push(def(
                dpdk_sys::RTE_ACL_FIELD_TYPE_MASK,
                4,
                at,
                at,
                base + 4 * w,
            ));
        }
    }
    let ports = 1 + 2 * words;
    defs.push(def(
        dpdk_sys::RTE_ACL_FIELD_TYPE_RANGE,
        2,
        ports,
        ports,
        sport,
    ));
    defs.push(def(
        dpdk_sys::RTE_ACL_FIELD_TYPE_RANGE,
        2,
        ports + 1,
        ports,
        sport + 2,
    ));
    defs
}

/// The rule fields of `rule` for a layout of `F` fields (`(F - 3) / 2` address words each).
fn raw_rule<const F: usize>(
    rule: &AclRule,
    data: dpdk_sys::rte_acl_rule_data,
    bits: u8,
) -> RawRule<F> {
    let words = (F - 3) / 2;
    let mut field = [dpdk_sys::rte_acl_field::default(); F];
    field[0].value.u8_ = rule.proto.unwrap_or(0);
    field[0].mask_range.u8_ = if rule.proto.is_some() { u8::MAX } else { 0 };
    for (prefix, start) in [(&rule.src, 1), (&rule.dst, 1 + words)] {
        let len = u32::from(prefix.len.min(bits));
        for w in 0..words {
            // Word w holds address bits [32w, 32w + 32) counted from the top.
            let shift = u32::from(bits) - 32 * (w as u32 + 1);
            let word_len = len.saturating_sub(32 * w as u32).min(32);
            let mask = if word_len == 0 {
                0
            } else {
                u32::MAX << (32 - word_len)
            };
            field[start + w].value.u32_ = (prefix.addr >> shift) as u32 & mask;
            field[start + w].mask_range.u32_ = word_len;
        }
    }
    let ports = 1 + 2 * words;
    field[ports].value.u16_ = rule.sport.0;
    field[ports].mask_range.u16_ = rule.sport.1;
    field[ports + 1].value.u16_ = rule.dport.0;
    field[ports + 1].mask_range.u16_ = rule.dport.1;
    RawRule { data, field }
}

impl Layout for Acl4Input {
    type Raw = RawRule<5>;
    const BITS: u8 = 32;
    fn field_defs() -> Vec<dpdk_sys::rte_acl_field_def> {
        Self::defs()
    }
    fn raw_rule(rule: &AclRule, data: dpdk_sys::rte_acl_rule_data) -> Self::Raw {
        raw_rule(rule, data, Self::BITS)
    }
}

impl Layout for Acl6Input {
    type Raw = RawRule<11>;
    const BITS: u8 = 128;
    fn field_defs() -> Vec<dpdk_sys::rte_acl_field_def> {
        Self::defs()
    }
    fn raw_rule(rule: &AclRule, data: dpdk_sys::rte_acl_rule_data) -> Self::Raw {
        raw_rule(rule, data, Self::BITS)
    }
}

/// rte_acl's classify implementations (`enum rte_acl_classify_alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclAlgorithm {
    Scalar,
    /// 8 flows in parallel; SSE 4.1.
    Sse,
    /// 16 flows in parallel; AVX2.
    Avx2,
    Neon,
    Altivec,
    /// AVX-512, 16 flows; needs the EAL's max SIMD width at 512
    /// (`--force-max-simd-bitwidth=512`).
    Avx512x16,
    /// AVX-512, 32 flows; as [`AclAlgorithm::Avx512x16`].
    Avx512x32,
}

impl AclAlgorithm {
    /// In DPDK's order of preference (acl_get_best_alg), so the first one a context takes
    /// is the one rte_acl_create chose.
    pub const PREFERENCE: [AclAlgorithm; 7] = [
        AclAlgorithm::Avx512x32,
        AclAlgorithm::Avx512x16,
        AclAlgorithm::Avx2,
        AclAlgorithm::Sse,
        AclAlgorithm::Neon,
        AclAlgorithm::Altivec,
        AclAlgorithm::Scalar,
    ];

    fn raw(self) -> dpdk_sys::rte_acl_classify_alg {
        match self {
            AclAlgorithm::Scalar => dpdk_sys::rte_acl_classify_alg_RTE_ACL_CLASSIFY_SCALAR,
            AclAlgorithm::Sse => dpdk_sys::rte_acl_classify_alg_RTE_ACL_CLASSIFY_SSE,
            AclAlgorithm::Avx2 => dpdk_sys::rte_acl_classify_alg_RTE_ACL_CLASSIFY_AVX2,
            AclAlgorithm::Neon => dpdk_sys::rte_acl_classify_alg_RTE_ACL_CLASSIFY_NEON,
            AclAlgorithm::Altivec => dpdk_sys::rte_acl_classify_alg_RTE_ACL_CLASSIFY_ALTIVEC,
            AclAlgorithm::Avx512x16 => dpdk_sys::rte_acl_classify_alg_RTE_ACL_CLASSIFY_AVX512X16,
            AclAlgorithm::Avx512x32 => dpdk_sys::rte_acl_classify_alg_RTE_ACL_CLASSIFY_AVX512X32,
        }
    }

    /// The name benchmarks print and parse.
    pub const fn name(self) -> &'static str {
        match self {
            AclAlgorithm::Scalar => "scalar",
            AclAlgorithm::Sse => "sse",
            AclAlgorithm::Avx2 => "avx2",
            AclAlgorithm::Neon => "neon",
            AclAlgorithm::Altivec => "altivec",
            AclAlgorithm::Avx512x16 => "avx512x16",
            AclAlgorithm::Avx512x32 => "avx512x32",
        }
    }

    /// The algorithm called `name` (as [`AclAlgorithm::name`] prints it).
    pub fn from_name(name: &str) -> Option<AclAlgorithm> {
        Self::PREFERENCE.into_iter().find(|a| a.name() == name)
    }
}

/// Contexts made so far, for unique names: rte_acl_create hands back the existing context
/// of a name instead of a new one.
static CONTEXTS: AtomicU64 = AtomicU64::new(0);

/// A built rte_acl context of one family (`I`: [`Acl4Input`] or [`Acl6Input`]); see the
/// module notes for results, memory and threads.
#[derive(Debug)]
pub struct Acl<I: AclInput> {
    raw: NonNull<dpdk_sys::rte_acl_ctx>,
    rules: usize,
    algorithm: AclAlgorithm,
    build_time: Duration,
    memory: u64,
    _input: PhantomData<fn(&I)>,
}

/// An IPv4 ACL.
pub type Acl4 = Acl<Acl4Input>;
/// An IPv6 ACL.
pub type Acl6 = Acl<Acl6Input>;

// SAFETY: the context lives in DPDK's shared heap and has no tie to the creating thread.
unsafe impl<I: AclInput> Send for Acl<I> {}
// SAFETY: &self methods only read the context (rte_acl_classify takes it const and keeps
// its state on the stack); writes need &mut self.
unsafe impl<I: AclInput> Sync for Acl<I> {}

impl<I: AclInput> Acl<I> {
    /// The most rules a context takes (rte_acl's highest priority: rule 0 gets `n`).
    pub const MAX_RULES: usize = dpdk_sys::RTE_ACL_MAX_PRIORITY as usize;

    /// Builds the context of `rules`, in match order (the first matching rule wins).
    /// Refuses a prefix longer than the family's addresses, an empty port range or more
    /// than [`Acl::MAX_RULES`] rules; fails if DPDK's heap cannot hold the tries.
    pub fn build(eal: &Eal, rules: &[AclRule]) -> Result<Acl<I>> {
        Self::build_with_max_size(eal, rules, 0)
    }

    /// [`Acl::build`] with rte_acl's `max_size`: 0 (what `build` passes) splits the rules
    /// into tries of at most 2048 nodes each, which keeps memory low; a limit in bytes
    /// starts from tries 8 times as large (fewer tries to walk per packet, more memory)
    /// and halves that while the run-time structures exceed the limit (failing with
    /// ERANGE when even the smallest do). Either way a build that needs more than 8 tries
    /// fails (ENOMEM, "Exceeded max number of tries" in DPDK's log).
    pub fn build_with_max_size(eal: &Eal, rules: &[AclRule], max_size: usize) -> Result<Acl<I>> {
        let bits = I::BITS;
        let op = format!(
            "rte_acl build (IPv{}, {} rules)",
            if bits == 32 { 4 } else { 6 },
            rules.len()
        );
        if rules.len() > Self::MAX_RULES {
            return Err(Error::msg(
                op,
                format!("more than {} rules", Self::MAX_RULES),
            ));
        }
        if let Some((i, _)) = rules.iter().enumerate().find(|(_, r)| {
            r.src.len > bits || r.dst.len > bits || r.sport.0 > r.sport.1 || r.dport.0 > r.dport.1
        }) {
            return Err(Error::msg(
                op,
                format!("rule {i}: a prefix longer than {bits} bits or an empty port range"),
            ));
        }
        let n = rules.len();
        let raw_rules: Vec<I::Raw> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let data = dpdk_sys::rte_acl_rule_data {
                    category_mask: 1,
                    priority: (n - i) as i32,
                    userdata: i as u32 + 1,
                };
                I::raw_rule(r, data)
            })
            .collect();

        let started = Instant::now();
        let heap_before = heap_allocated(eal);
        let name = format!(
            "vs_acl{}_{}",
            if bits == 32 { 4 } else { 6 },
            CONTEXTS.fetch_add(1, Ordering::Relaxed)
        );
        let cname = std::ffi::CString::new(name).map_err(|_| Error::msg(&op, "bad name"))?;
        let param = dpdk_sys::rte_acl_param {
            name: cname.as_ptr(),
            socket_id: SOCKET_ID_ANY,
            rule_size: size_of::<I::Raw>() as u32,
            max_rule_num: n.max(1) as u32,
        };
        // SAFETY: the EAL is initialised (&Eal); param and the name it points to are valid
        // for the call, and DPDK copies the name.
        let raw = unsafe { dpdk_sys::rte_acl_create(&param) };
        let raw =
            NonNull::new(raw).ok_or_else(|| Error::from_errno(format!("{op}: rte_acl_create")))?;
        let mut acl = Acl {
            raw,
            rules: n,
            algorithm: AclAlgorithm::Scalar,
            build_time: Duration::ZERO,
            memory: 0,
            _input: PhantomData,
        };
        // The context's default is the first of DPDK's preference list that this CPU and
        // EAL allow; setting them in that order finds which it is.
        for alg in AclAlgorithm::PREFERENCE {
            if acl.set_algorithm(alg).is_ok() {
                break;
            }
        }
        if n == 0 {
            // rte_acl_build refuses a context without rules (EINVAL); classify answers
            // NO_MATCH for it without asking DPDK.
            acl.build_time = started.elapsed();
            acl.memory = heap_allocated(eal).saturating_sub(heap_before);
            return Ok(acl);
        }
        // SAFETY: raw is a live context we alone hold; raw_rules holds n rules of the
        // rule_size given at create, laid out as RTE_ACL_RULE_DEF; n <= max_rule_num.
        let ret = unsafe {
            dpdk_sys::rte_acl_add_rules(
                raw.as_ptr(),
                raw_rules.as_ptr().cast::<dpdk_sys::rte_acl_rule>(),
                n as u32,
            )
        };
        if ret != 0 {
            return Err(Error::from_ret(format!("{op}: rte_acl_add_rules"), ret));
        }
        let defs = I::field_defs();
        let mut cfg = dpdk_sys::rte_acl_config {
            num_categories: 1,
            num_fields: defs.len() as u32,
            max_size,
            ..Default::default()
        };
        cfg.defs[..defs.len()].copy_from_slice(&defs);
        // SAFETY: raw is a live context we alone hold; cfg is a valid config for the call.
        let ret = unsafe { dpdk_sys::rte_acl_build(raw.as_ptr(), &cfg) };
        if ret != 0 {
            return Err(Error::from_ret(format!("{op}: rte_acl_build"), ret));
        }
        acl.build_time = started.elapsed();
        acl.memory = heap_allocated(eal).saturating_sub(heap_before);
        Ok(acl)
    }

    /// Rules in the context.
    pub fn rules(&self) -> usize {
        self.rules
    }

    /// How long create, add and build took.
    pub fn build_time(&self) -> Duration {
        self.build_time
    }

    /// Bytes DPDK's heap grew by across the build (context, rules, tries). Other threads'
    /// DPDK allocations meanwhile would count too.
    pub fn memory(&self) -> u64 {
        self.memory
    }

    /// The classify implementation in use.
    pub fn algorithm(&self) -> AclAlgorithm {
        self.algorithm
    }

    /// Makes `alg` the classify implementation; an error (and no change) when this CPU or
    /// the EAL's max SIMD width does not allow it.
    pub fn set_algorithm(&mut self, alg: AclAlgorithm) -> Result<()> {
        // SAFETY: raw is a live context; &mut self: no classify runs meanwhile.
        let ret = unsafe { dpdk_sys::rte_acl_set_ctx_classify(self.raw.as_ptr(), alg.raw()) };
        if ret != 0 {
            return Err(Error::from_ret(
                format!("rte_acl_set_ctx_classify({})", alg.name()),
                ret,
            ));
        }
        self.algorithm = alg;
        Ok(())
    }

    /// Classifies `inputs[i]` into `results[i]` (for `i` below the shorter length): the
    /// matching rule's index plus one, or [`NO_MATCH`].
    #[inline]
    pub fn classify(&self, inputs: &[I], results: &mut [u32]) {
        let n = inputs.len().min(results.len());
        let mut data = [std::ptr::null::<u8>(); CLASSIFY_CHUNK];
        for (inputs, results) in inputs[..n]
            .chunks(CLASSIFY_CHUNK)
            .zip(results[..n].chunks_mut(CLASSIFY_CHUNK))
        {
            for (d, input) in data.iter_mut().zip(inputs) {
                *d = (input as *const I).cast::<u8>();
            }
            // SAFETY: each pointer is to a whole `I`, the layout this context was built for.
            unsafe { self.classify_raw(&data[..inputs.len()], results) };
        }
    }

    /// Classifies the inputs `data` points to (for `i` below the shorter length), as
    /// [`Acl::classify`]: for callers that keep their inputs elsewhere (beside each packet).
    ///
    /// # Safety
    ///
    /// Every pointer must point to readable memory holding an `I` (its size, in its layout),
    /// valid for the call.
    #[inline]
    pub unsafe fn classify_raw(&self, data: &[*const u8], results: &mut [u32]) {
        let n = data.len().min(results.len());
        if self.rules == 0 {
            results[..n].fill(NO_MATCH);
            return;
        }
        for (data, results) in data[..n]
            .chunks(u32::MAX as usize)
            .zip(results[..n].chunks_mut(u32::MAX as usize))
        {
            // SAFETY: raw is a live context, built (it has rules), that classify only reads; data holds
            // `len` pointers to inputs of its layout (the caller's contract) and DPDK does
            // not write them; results has room for `len` results of one category each.
            // With one category rte_acl_classify cannot fail (its only error is a bad
            // category count).
            unsafe {
                dpdk_sys::rte_acl_classify(
                    self.raw.as_ptr(),
                    data.as_ptr().cast_mut(),
                    results.as_mut_ptr(),
                    data.len() as u32,
                    1,
                );
            }
        }
    }

    /// Prints DPDK's summary of the context (rte_acl_dump: algorithm, rules, tries) on
    /// stdout.
    pub fn dump(&self) {
        // SAFETY: raw is a live context; rte_acl_dump only reads it. fflush(NULL) flushes
        // C's stdio buffers (so the dump comes out before what Rust prints next).
        unsafe {
            dpdk_sys::rte_acl_dump(self.raw.as_ptr());
            libc::fflush(std::ptr::null_mut());
        }
    }
}

impl<I: AclInput> Drop for Acl<I> {
    fn drop(&mut self) {
        // SAFETY: raw came from rte_acl_create and is freed once; nothing borrows it now.
        unsafe { dpdk_sys::rte_acl_free(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::test_eal::{eal, require_eal};

    const TCP: u8 = 6;
    const UDP: u8 = 17;
    const ICMP: u8 = 1;

    /// A packet's fields, IPv4 addresses in the low 32 bits.
    #[derive(Debug, Clone, Copy)]
    struct Packet {
        proto: u8,
        src: u128,
        dst: u128,
        sport: u16,
        dport: u16,
    }

    /// The plain definition: whether `r` matches `p` in a family of `bits`-bit addresses.
    fn matches(r: &AclRule, bits: u8, p: &Packet) -> bool {
        let in_prefix = |n: &AclPrefix, a: u128| {
            let len = u32::from(n.len.min(bits));
            len == 0 || (a ^ n.addr) >> (u32::from(bits) - len) == 0
        };
        r.proto.is_none_or(|x| x == p.proto)
            && in_prefix(&r.src, p.src)
            && in_prefix(&r.dst, p.dst)
            && (r.sport.0..=r.sport.1).contains(&p.sport)
            && (r.dport.0..=r.dport.1).contains(&p.dport)
    }

    /// The linear first match, as a classify result.
    fn reference(rules: &[AclRule], bits: u8, p: &Packet) -> u32 {
        rules
            .iter()
            .position(|r| matches(r, bits, p))
            .map_or(NO_MATCH, |i| i as u32 + 1)
    }

    fn input4(p: &Packet) -> Acl4Input {
        Acl4Input::new(p.proto, p.src as u32, p.dst as u32, p.sport, p.dport)
    }

    fn input6(p: &Packet) -> Acl6Input {
        Acl6Input::new(p.proto, p.src, p.dst, p.sport, p.dport)
    }

    fn v4(s: &str) -> u128 {
        u32::from(s.parse::<Ipv4Addr>().unwrap()).into()
    }

    fn v6(s: &str) -> u128 {
        s.parse::<Ipv6Addr>().unwrap().to_bits()
    }

    fn prefix(addr: u128, len: u8) -> AclPrefix {
        AclPrefix { addr, len }
    }

    /// Every algorithm this CPU and EAL allow.
    fn algorithms<I: AclInput>(acl: &mut Acl<I>) -> Vec<AclAlgorithm> {
        let default = acl.algorithm();
        let algs = AclAlgorithm::PREFERENCE
            .into_iter()
            .filter(|&a| acl.set_algorithm(a).is_ok())
            .collect();
        acl.set_algorithm(default).unwrap();
        algs
    }

    /// Classifies `packets` with every algorithm and compares with the reference; returns
    /// how many packets match a rule.
    fn check<I: AclInput>(
        acl: &mut Acl<I>,
        rules: &[AclRule],
        packets: &[Packet],
        input: fn(&Packet) -> I,
    ) -> usize {
        let bits = I::BITS;
        let want: Vec<u32> = packets.iter().map(|p| reference(rules, bits, p)).collect();
        let inputs: Vec<I> = packets.iter().map(input).collect();
        let algs = algorithms(acl);
        assert!(algs.contains(&AclAlgorithm::Scalar));
        for alg in algs {
            acl.set_algorithm(alg).unwrap();
            let mut got = vec![u32::MAX; inputs.len()];
            acl.classify(&inputs, &mut got);
            for (i, p) in packets.iter().enumerate() {
                assert_eq!(got[i], want[i], "{}: {p:?}", alg.name());
            }
        }
        want.iter().filter(|&&w| w != NO_MATCH).count()
    }

    /// Checks that each case's packet matches the rule it names (None: no rule), then
    /// [`check`]s them all; returns how many match.
    fn expect<I: AclInput>(
        acl: &mut Acl<I>,
        rules: &[AclRule],
        cases: &[(Packet, Option<u32>)],
        input: fn(&Packet) -> I,
    ) -> usize {
        let packets: Vec<Packet> = cases.iter().map(|c| c.0).collect();
        let inputs: Vec<I> = packets.iter().map(input).collect();
        let mut got = vec![0; inputs.len()];
        acl.classify(&inputs, &mut got);
        for (i, (p, want)) in cases.iter().enumerate() {
            assert_eq!(rule_index(got[i]), *want, "{p:?}");
        }
        check(acl, rules, &packets, input)
    }

    fn packet(proto: u8, src: u128, dst: u128, sport: u16, dport: u16) -> Packet {
        Packet {
            proto,
            src,
            dst,
            sport,
            dport,
        }
    }

    #[test]
    fn ipv4_first_match_wins() {
        require_eal!();
        let rules = [
            AclRule {
                proto: Some(TCP),
                src: prefix(v4("10.0.0.0"), 8),
                dport: (22, 22),
                ..AclRule::ANY
            },
            AclRule {
                proto: Some(UDP),
                dst: prefix(v4("192.168.1.0"), 24),
                dport: (53, 53),
                ..AclRule::ANY
            },
            AclRule {
                proto: Some(ICMP),
                sport: (8, 8),
                ..AclRule::ANY
            },
            AclRule {
                src: prefix(v4("10.1.0.0"), 16),
                sport: (1024, u16::MAX),
                ..AclRule::ANY
            },
            AclRule {
                dst: prefix(v4("172.16.5.5"), 32),
                ..AclRule::ANY
            },
        ];
        let mut acl = Acl4::build(eal(), &rules).unwrap();
        assert_eq!(acl.rules(), 5);
        assert!(acl.memory() > 0);
        let cases = [
            (
                packet(TCP, v4("10.1.2.3"), v4("1.1.1.1"), 40000, 22),
                Some(0),
            ),
            (
                packet(TCP, v4("10.1.2.3"), v4("1.1.1.1"), 40000, 23),
                Some(3),
            ),
            (packet(TCP, v4("10.1.2.3"), v4("1.1.1.1"), 1000, 23), None),
            (
                packet(UDP, v4("8.8.8.8"), v4("192.168.1.77"), 5353, 53),
                Some(1),
            ),
            (
                packet(UDP, v4("8.8.8.8"), v4("192.168.2.77"), 5353, 53),
                None,
            ),
            (packet(ICMP, v4("8.8.8.8"), v4("9.9.9.9"), 8, 0), Some(2)),
            (packet(ICMP, v4("8.8.8.8"), v4("172.16.5.5"), 0, 0), Some(4)),
            (packet(47, v4("10.1.0.1"), v4("172.16.5.4"), 0, 0), None),
        ];
        assert_eq!(expect(&mut acl, &rules, &cases, input4), 5);
    }

    #[test]
    fn ipv6_prefixes_across_word_boundaries() {
        require_eal!();
        let rules = [
            AclRule {
                src: prefix(v6("2001:db8::1"), 128),
                ..AclRule::ANY
            },
            AclRule {
                proto: Some(TCP),
                dst: prefix(v6("2001:db8:1234:5000::"), 36 + 16),
                dport: (80, 443),
                ..AclRule::ANY
            },
            AclRule {
                src: prefix(v6("fd00::"), 8),
                dst: prefix(v6("2001:db8:aaaa:bbbb:cccc::"), 80),
                ..AclRule::ANY
            },
            AclRule {
                proto: Some(58),
                sport: (128, 129),
                ..AclRule::ANY
            },
        ];
        let mut acl = Acl6::build(eal(), &rules).unwrap();
        let cases = [
            (packet(UDP, v6("2001:db8::1"), v6("::1"), 1, 2), Some(0)),
            (packet(UDP, v6("2001:db8::2"), v6("::1"), 1, 2), None),
            (
                packet(TCP, v6("::9"), v6("2001:db8:1234:5fff::1"), 1, 443),
                Some(1),
            ),
            (
                packet(TCP, v6("::9"), v6("2001:db8:1234:6000::1"), 1, 443),
                None,
            ),
            (
                packet(TCP, v6("::9"), v6("2001:db8:1234:5000::1"), 1, 444),
                None,
            ),
            (
                packet(UDP, v6("fdff::1"), v6("2001:db8:aaaa:bbbb:cccc::7"), 1, 2),
                Some(2),
            ),
            (
                packet(UDP, v6("fdff::1"), v6("2001:db8:aaaa:bbbb:cccd::7"), 1, 2),
                None,
            ),
            (packet(58, v6("fe80::1"), v6("ff02::1"), 128, 0), Some(3)),
            (packet(58, v6("fe80::1"), v6("ff02::1"), 135, 0), None),
        ];
        assert_eq!(expect(&mut acl, &rules, &cases, input6), 4);
    }

    #[test]
    fn inputs_have_the_documented_layout() {
        assert_eq!(size_of::<Acl4Input>(), 16);
        assert_eq!(size_of::<Acl6Input>(), 40);
        let i = Acl4Input::new(TCP, 0x0a00_0001, 0xc0a8_0101, 1234, 80);
        // SAFETY: Acl4Input is 16 bytes of plain data without padding bytes left unset.
        let bytes: [u8; 16] = unsafe { std::mem::transmute(i) };
        assert_eq!(
            bytes,
            [6, 0, 0, 0, 10, 0, 0, 1, 192, 168, 1, 1, 0x04, 0xd2, 0, 80]
        );
        let defs = Acl6Input::field_defs();
        assert_eq!(defs.len(), 11);
        assert_eq!(defs[1].offset, 4);
        assert_eq!(defs[5].offset, 20);
        assert_eq!((defs[9].offset, defs[10].offset), (36, 38));
        assert_eq!((defs[9].input_index, defs[10].input_index), (9, 9));
    }

    #[test]
    fn no_rules_match_nothing() {
        require_eal!();
        let acl = Acl4::build(eal(), &[]).unwrap();
        let mut got = [7u32; 3];
        acl.classify(&[Acl4Input::default(); 3], &mut got);
        assert_eq!(got, [NO_MATCH; 3]);
    }

    #[test]
    fn bad_rules_are_refused() {
        require_eal!();
        let long = AclRule {
            src: prefix(0, 33),
            ..AclRule::ANY
        };
        assert!(Acl4::build(eal(), &[long]).is_err());
        assert!(Acl6::build(eal(), &[long]).is_ok());
        let empty = AclRule {
            dport: (10, 9),
            ..AclRule::ANY
        };
        assert!(Acl6::build(eal(), &[empty]).is_err());
    }

    /// xorshift64*: the tests' own deterministic random numbers.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn addr(&mut self, bits: u8) -> u128 {
            let a = (u128::from(self.next()) << 64) | u128::from(self.next());
            if bits == 128 {
                a
            } else {
                a & ((1 << bits) - 1)
            }
        }

        fn range(&mut self) -> (u16, u16) {
            match self.below(4) {
                0 => (0, u16::MAX),
                1 => {
                    let p = self.below(1 << 16) as u16;
                    (p, p)
                }
                2 => (1024, u16::MAX),
                _ => {
                    let lo = self.below(1 << 16) as u16;
                    (lo, lo.saturating_add(self.below(300) as u16))
                }
            }
        }

        /// A value inside `(lo, hi)`.
        fn within(&mut self, (lo, hi): (u16, u16)) -> u16 {
            lo + self.below(u64::from(hi - lo) + 1) as u16
        }

        /// An address inside `n` (a random one for its host bits).
        fn inside(&mut self, n: &AclPrefix, bits: u8) -> u128 {
            let host = u32::from(bits - n.len.min(bits));
            let mask = if host == 0 {
                0
            } else if host >= 128 {
                u128::MAX
            } else {
                (1u128 << host) - 1
            };
            (n.addr & !mask) | (self.addr(bits) & mask)
        }
    }

    fn random_rules(rng: &mut Rng, n: usize, bits: u8) -> Vec<AclRule> {
        // Few distinct prefixes, so that rules overlap and keys hit several.
        let pool: Vec<u128> = (0..8).map(|_| rng.addr(bits)).collect();
        let net = |rng: &mut Rng| {
            let len = match rng.below(4) {
                0 => 0,
                1 => bits,
                _ => rng.below(u64::from(bits) + 1) as u8,
            };
            let addr = pool[rng.below(pool.len() as u64) as usize];
            prefix(addr, len)
        };
        (0..n)
            .map(|_| AclRule {
                proto: match rng.below(4) {
                    0 => None,
                    1 => Some(TCP),
                    2 => Some(UDP),
                    _ => Some(rng.below(256) as u8),
                },
                src: net(rng),
                dst: net(rng),
                sport: rng.range(),
                dport: rng.range(),
            })
            .collect()
    }

    fn random_packets(rng: &mut Rng, rules: &[AclRule], n: usize, bits: u8) -> Vec<Packet> {
        (0..n)
            .map(|_| {
                if rng.below(4) == 0 {
                    packet(
                        [TCP, UDP, ICMP, rng.below(256) as u8][rng.below(4) as usize],
                        rng.addr(bits),
                        rng.addr(bits),
                        rng.below(1 << 16) as u16,
                        rng.below(1 << 16) as u16,
                    )
                } else {
                    let r = &rules[rng.below(rules.len() as u64) as usize];
                    packet(
                        r.proto.unwrap_or(rng.below(256) as u8),
                        rng.inside(&r.src, bits),
                        rng.inside(&r.dst, bits),
                        rng.within(r.sport),
                        rng.within(r.dport),
                    )
                }
            })
            .collect()
    }

    /// `n` random rules and 4000 packets biased to hit them, classified by a context
    /// built without and with a memory limit (larger tries first), against the reference.
    fn random_case<I: AclInput>(rng: &mut Rng, n: usize, input: fn(&Packet) -> I) {
        let rules = random_rules(rng, n, I::BITS);
        let packets = random_packets(rng, &rules, 4000, I::BITS);
        let mut acl = Acl::<I>::build(eal(), &rules).unwrap();
        let matched = check(&mut acl, &rules, &packets, input);
        assert!(
            matched > packets.len() / 2,
            "{matched} of {}",
            packets.len()
        );
        let mut acl = Acl::<I>::build_with_max_size(eal(), &rules, 16 << 20).unwrap();
        check(&mut acl, &rules, &packets, input);
    }

    #[test]
    fn random_rules_agree_with_a_linear_scan() {
        require_eal!();
        for seed in 1..=6u64 {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
            let n = [1, 10, 100, 300][seed as usize % 4];
            random_case(&mut rng, n, input4);
            random_case(&mut rng, n, input6);
        }
    }

    #[test]
    fn concurrent_readers_share_a_context() {
        require_eal!();
        let mut rng = Rng(77);
        let rules = random_rules(&mut rng, 50, 32);
        let packets = random_packets(&mut rng, &rules, 2000, 32);
        let acl = Acl4::build(eal(), &rules).unwrap();
        let inputs: Vec<Acl4Input> = packets.iter().map(input4).collect();
        let want: Vec<u32> = packets.iter().map(|p| reference(&rules, 32, p)).collect();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut got = vec![0; inputs.len()];
                    for _ in 0..20 {
                        acl.classify(&inputs, &mut got);
                        assert_eq!(got, want);
                    }
                });
            }
        });
    }
}
