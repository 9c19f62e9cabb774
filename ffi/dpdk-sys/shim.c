/* Small C helpers for DPDK macros that have no symbol of their own. */
#include <pthread.h>

#include "wrapper.h"

/* rte_errno is a per-lcore (thread-local) macro. */
int vs_rte_errno(void)
{
	return rte_errno;
}

/*
 * DPDK's log of a call kept: drivers mostly fail with a bare -1 (or an errno that says
 * little: ENOMEM for "Reached maximum number of Ethernet ports", EINVAL for a pcap too
 * big for the pool) and say why only in the log. Between vs_log_capture_begin and
 * vs_log_capture_end the log goes to a memory stream; at the end it is written on to the
 * log stream as before (nothing is lost) and its last `len - 1` bytes are copied to `log`,
 * NUL-terminated. Other threads' log lines in that window land in `log` too; the caller
 * picks out what concerns it. The log stream is process-wide, so captures take turns
 * (capture_lock, held from begin to end): two at once would swap or close each other's
 * streams. Every begin must be followed by one end on the same thread.
 */
static pthread_mutex_t capture_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *capture_mem;
static char *capture_text;
static size_t capture_size;

void vs_log_capture_begin(void)
{
	pthread_mutex_lock(&capture_lock);
	capture_text = NULL;
	capture_size = 0;
	capture_mem = open_memstream(&capture_text, &capture_size);
	if (capture_mem != NULL)
		rte_openlog_stream(capture_mem);
}

void vs_log_capture_end(char *log, size_t len)
{
	if (len > 0)
		log[0] = '\0';
	if (capture_mem != NULL) {
		rte_openlog_stream(NULL);
		fclose(capture_mem);
		capture_mem = NULL;
	}
	if (capture_text != NULL) {
		FILE *out = rte_log_get_stream();
		size_t size = capture_size;
		size_t from = size >= len ? size - (len - 1) : 0;

		if (size > 0) {
			fwrite(capture_text, 1, size, out);
			fflush(out);
		}
		if (len > 0) {
			memcpy(log, capture_text + from, size - from);
			log[size - from] = '\0';
		}
		free(capture_text);
		capture_text = NULL;
	}
	pthread_mutex_unlock(&capture_lock);
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
