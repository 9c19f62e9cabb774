/* The DPDK API vswitch uses, in one umbrella header for bindgen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_version.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <rte_dev.h>
#include <rte_log.h>
#include <rte_bus_vdev.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_ether.h>
#include <rte_ethdev.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_acl.h>
#include <rte_vhost.h>

/* Macros bindgen cannot see through, and helpers; defined in shim.c. */
int vs_rte_errno(void);
void vs_log_capture_begin(void);
void vs_log_capture_end(char *log, size_t len);
/* rte_lpm_lookupx4 with its four addresses in memory rather than in an xmm_t (a SIMD
 * register type that has no FFI-safe Rust counterpart). */
void vs_lpm_lookupx4(const struct rte_lpm *lpm, const uint32_t ip[4], uint32_t hop[4],
		     uint32_t defv);
