/* Small C helpers for DPDK macros that have no symbol of their own. */
#include <pthread.h>

#include "wrapper.h"

/* rte_errno is a per-lcore (thread-local) macro. */
int vs_rte_errno(void)
{
	return rte_errno;
}

/*
 * rte_dev_probe with DPDK's log of the attempt kept: drivers mostly fail with a bare -1 and
 * say why only in the log ("EAL: failed to parse device ...", "ioctl failed
 * (SIOCGIFINDEX):No such device"). While the probe runs, the log goes to a memory stream;
 * afterwards it is written on to the log stream as before (nothing is lost) and its last
 * `len - 1` bytes are copied to `log`, NUL-terminated. Other threads' log lines in that
 * window land in `log` too; the caller picks out what concerns the device. The log stream
 * is process-wide, so probes through here take turns (probe_log_lock): two at once would
 * swap or close each other's streams.
 */
static pthread_mutex_t probe_log_lock = PTHREAD_MUTEX_INITIALIZER;

int vs_dev_probe_logged(const char *devargs, char *log, size_t len)
{
	char *text = NULL;
	size_t size = 0;
	FILE *mem;
	int ret;

	if (len > 0)
		log[0] = '\0';
	pthread_mutex_lock(&probe_log_lock);
	mem = open_memstream(&text, &size);
	if (mem == NULL) {
		ret = rte_dev_probe(devargs);
		pthread_mutex_unlock(&probe_log_lock);
		return ret;
	}
	rte_openlog_stream(mem);
	ret = rte_dev_probe(devargs);
	rte_openlog_stream(NULL);
	fclose(mem);
	pthread_mutex_unlock(&probe_log_lock);
	if (text != NULL) {
		FILE *out = rte_log_get_stream();
		size_t from = size >= len ? size - (len - 1) : 0;

		if (size > 0) {
			fwrite(text, 1, size, out);
			fflush(out);
		}
		if (len > 0) {
			memcpy(log, text + from, size - from);
			log[size - from] = '\0';
		}
		free(text);
	}
	return ret;
}

/*
 * rte_lpm_lookupx4 takes its four addresses as an xmm_t by value; Rust has no FFI-safe
 * spelling of a SIMD register argument, so the addresses come in memory and are loaded here.
 */
void vs_lpm_lookupx4(const struct rte_lpm *lpm, const uint32_t ip[4], uint32_t hop[4],
		     uint32_t defv)
{
	rte_xmm_t v;

	memcpy(v.u32, ip, sizeof(v.u32));
	rte_lpm_lookupx4(lpm, v.x, hop, defv);
}
