//! A zero-copy buffer pool for tests: fixed 2048-byte slots in one [`ZcMemory`], a free
//! list, and a check on every token given back (a second give-back of one panics).
//! Included by `tests/zero_copy.rs` and by the crate's own `malformed_tests`; the includer
//! has `ZcBuf`, `ZcBuffers` and `ZcMemory` in scope.

// Each includer uses its part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use super::{ZcBuf, ZcBuffers, ZcMemory};

/// Bytes of each buffer.
pub const ROOM: u32 = 2048;

pub struct SlotPool {
    mem: ZcMemory,
    /// Free buffers (index = token); `out[i]` while buffer i is handed out.
    free: Mutex<(Vec<u64>, Vec<bool>)>,
}

impl SlotPool {
    pub fn new(n: usize) -> Arc<SlotPool> {
        let mem = ZcMemory::new("zc-test", n * ROOM as usize).unwrap();
        Arc::new(SlotPool {
            mem,
            free: Mutex::new(((0..n as u64).rev().collect(), vec![false; n])),
        })
    }

    /// Buffers handed out and not given back.
    pub fn outstanding(&self) -> usize {
        self.free.lock().unwrap().1.iter().filter(|o| **o).count()
    }

    /// The bytes of buffer `b` (its `len` of them).
    pub fn bytes(&self, b: &ZcBuf) -> Vec<u8> {
        assert_eq!(
            u64::from(b.offset),
            b.token * u64::from(ROOM),
            "a buffer moved"
        );
        assert!(b.len <= ROOM);
        // SAFETY: offset + len lies inside the pool's memory (checked above).
        unsafe { std::slice::from_raw_parts(self.mem.ptr().add(b.offset as usize), b.len as usize) }
            .to_vec()
    }

    /// Writes `data` at the start of buffer `b`.
    pub fn write(&self, b: &ZcBuf, data: &[u8]) {
        assert!(data.len() <= ROOM as usize);
        // SAFETY: the buffer lies inside the pool's memory and data fits its room.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.mem.ptr().add(b.offset as usize),
                data.len(),
            )
        }
    }
}

impl ZcBuffers for SlotPool {
    fn memory(&self) -> &ZcMemory {
        &self.mem
    }

    fn alloc(&self, out: &mut [ZcBuf]) -> usize {
        let mut g = self.free.lock().unwrap();
        let mut n = 0;
        for o in out.iter_mut() {
            let Some(t) = g.0.pop() else { break };
            g.1[t as usize] = true;
            *o = ZcBuf {
                token: t,
                offset: t as u32 * ROOM,
                len: ROOM,
            };
            n += 1;
        }
        n
    }

    fn free(&self, tokens: &[u64]) {
        let mut g = self.free.lock().unwrap();
        for &t in tokens {
            assert!(g.1[t as usize], "buffer {t} given back twice");
            g.1[t as usize] = false;
            g.0.push(t);
        }
    }
}
