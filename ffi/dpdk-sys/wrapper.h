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
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ether.h>
#include <rte_ethdev.h>

/* Macros bindgen cannot see through, and helpers; defined in shim.c. */
int vs_rte_errno(void);
int vs_dev_probe_logged(const char *devargs, char *log, size_t len);
