/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logical units and their backends: `file` (a regular file or block device,
 * asynchronous I/O through io_uring), `ram` (hugepage memory) and `null`
 * (completes at once, reads return no data: for benchmarking the path).
 *
 * I/O is submitted on a per-PMD-thread context (struct lun_io_ctx, one
 * io_uring each: rings are single-threaded); completions are reaped by
 * lun_io_ctx_poll() from the same thread, which calls the tasks' done().
 * Counters are kept per PMD slot, so the hot path shares no cache line.
 */
#ifndef VHOSTD_LUN_H
#define VHOSTD_LUN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct scsi_task;

enum lun_backend_type {
	LUN_BACKEND_NULL,
	LUN_BACKEND_RAM,
	LUN_BACKEND_FILE,
};

enum lun_cache_mode {
	LUN_CACHE_NONE,         /* O_DIRECT; the disk's cache flushed by SYNCHRONIZE CACHE */
	LUN_CACHE_WRITEBACK,    /* page cache; SYNCHRONIZE CACHE = fdatasync */
	LUN_CACHE_WRITETHROUGH, /* page cache, every write RWF_DSYNC */
	LUN_CACHE_DIRECTSYNC,   /* O_DIRECT and every write RWF_DSYNC */
};

#define LUN_NAME_MAX 32

struct lun_conf {
	char name[LUN_NAME_MAX];
	enum lun_backend_type backend;
	char path[PATH_MAX];  /* file backend */
	uint64_t size;        /* bytes; null/ram: required; file: 0 = the file's size */
	uint32_t block_size;  /* logical block size: 512 or 4096 */
	enum lun_cache_mode cache;
	bool readonly;
	char vendor[9];   /* INQUIRY T10 vendor id, space padded on the wire */
	char product[17]; /* INQUIRY product id */
	char revision[5]; /* INQUIRY product revision */
	char serial[33];  /* VPD 0x80; default derived from the name */
};

/* Fill @c with defaults (512-byte blocks, cache none, "VHOSTD" ...). */
void lun_conf_init(struct lun_conf *c);

struct lun;

/*
 * Open the backend (file: open + size + O_DIRECT alignment probe; ram: map
 * hugepages, falling back to normal pages with a warning). Returns 0 or a
 * negative errno with a message naming the LUN and the fix in @err.
 */
int lun_open(const struct lun_conf *c, struct lun **out, char *err, size_t errlen);
/* No I/O may be in flight (the caller waited for its queues to drain). */
void lun_close(struct lun *l);

const struct lun_conf *lun_get_conf(const struct lun *l);
uint64_t lun_num_blocks(const struct lun *l);

/* Per-PMD-thread I/O context. @slot is the PMD index (counter slot). */
struct lun_io_ctx;
#define LUN_MAX_SLOTS 33 /* PMD threads + 1 for the control thread */
struct lun_io_ctx *lun_io_ctx_create(unsigned int slot, unsigned int depth, char *err,
	size_t errlen);
void lun_io_ctx_destroy(struct lun_io_ctx *io);
/*
 * Submit what the tasks queued since the last call (one io_uring_submit for
 * the batch) and reap completions without blocking; calls done() of every
 * task that finished. Returns the number of completed tasks.
 */
unsigned int lun_io_ctx_poll(struct lun_io_ctx *io);
/* Tasks submitted and not completed yet. */
unsigned int lun_io_ctx_inflight(const struct lun_io_ctx *io);
/* eventfd signalled on completions (for the interrupt mode), or -1. */
int lun_io_ctx_event_fd(const struct lun_io_ctx *io);
/*
 * The transport took a burst of requests off a queue now (@begin) or is done
 * with it (!@begin). The latency of the burst's commands counts from its
 * start, which is when the driver's requests stopped waiting for us: it
 * includes the wait behind the burst's earlier commands, which the driver
 * sees too, and saves a clock read per command.
 */
void lun_io_ctx_burst(struct lun_io_ctx *io, bool begin);

/* Latency histogram: log-linear, 8 sub-buckets per power of two of ns. */
#define LUN_HIST_BUCKETS 512

/* The shape of `virsh domblkstat`, plus what a benchmark wants. */
struct lun_stats {
	uint64_t rd_req, rd_bytes, rd_total_ns;
	uint64_t wr_req, wr_bytes, wr_total_ns;
	uint64_t flush_req, flush_total_ns;
	uint64_t unmap_req, unmap_blocks;
	uint64_t errors; /* commands that ended in CHECK CONDITION */
	uint64_t hist[LUN_HIST_BUCKETS]; /* read + write latencies */
};

/* Sum of all slots minus the clear baseline. */
void lun_stats_read(const struct lun *l, struct lun_stats *out);
void lun_stats_clear(struct lun *l);
/* Latency in ns below which @pct percent (0..100) of the samples fall; 0 if none. */
uint64_t lun_stats_percentile_ns(const struct lun_stats *s, double pct);

/*
 * Unit attention to report on the next command (e.g. after a LUN reset):
 * sense key UNIT ATTENTION with @asc/@ascq. Safe from any thread.
 */
void lun_set_unit_attention(struct lun *l, uint8_t asc, uint8_t ascq);

#endif
