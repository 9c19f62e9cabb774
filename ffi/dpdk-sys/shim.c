/* Small C helpers for DPDK macros that have no symbol of their own. */
#include "wrapper.h"

/* rte_errno is a per-lcore (thread-local) macro. */
int vs_rte_errno(void)
{
	return rte_errno;
}
