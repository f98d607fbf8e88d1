/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user-scsi controllers: rte_vhost runs the vhost-user protocol as an
 * external (non-net) backend; we walk the rings ourselves (virtq.h), run the
 * commands through the SCSI target (scsi_cmd.h) and the LUN backends (lun.h).
 *
 * Threads:
 * - the rte_vhost event thread calls our device callbacks and message hooks;
 *   those take dp_lock (never while a PMD could wait for them: PMDs take no
 *   rte_vhost lock except through rte_vhost_vring_call_nonblock()).
 * - the control thread starts queues as the frontend makes them ready (a
 *   vring is polled as soon as it is ready, not when all of them are), and
 *   owns the event queue (LUN hot-plug events).
 * - a PMD thread polls the request queues the snapshot gives it (and the
 *   control queue with request queue 0), executes commands, reaps their I/O
 *   on its own io_uring and returns used buffers in batches.
 */
#ifndef VHOSTD_VHOST_SCSI_H
#define VHOSTD_VHOST_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct scsi_ctrl;
struct dp_snapshot;
struct dp_sq_ref;
struct lun;

/* Register and start the socket of @c; dp_lock held. */
int vhost_scsi_start(struct scsi_ctrl *c, char *err, size_t errlen);
/*
 * Stop the queues, close the socket and forget the frontend. Call WITHOUT
 * dp_lock (rte_vhost may wait for its event thread, which takes it).
 */
void vhost_scsi_stop(struct scsi_ctrl *c);

/*
 * Stop polling every scsi queue (in-flight commands complete first) before
 * the PMD threads are replaced, and restart them after; dp_lock held.
 */
void vhost_scsi_quiesce(bool stop);

/*
 * The same for the vrings (bit per vring) of one controller, when their
 * queues change thread: pause drains and stops them, resume starts every
 * paused vring again (on the PMD c->rxq_pmd names by then); dp_lock held.
 */
void vhost_scsi_pause(struct scsi_ctrl *c, uint64_t vrings);
void vhost_scsi_resume(struct scsi_ctrl *c);

/* Vrings started (bit per vring) of @c; dp_lock held. */
uint64_t vhost_scsi_started_vrings(const struct scsi_ctrl *c);

/* Control thread: vring state changes reported by rte_vhost. */
int vhost_scsi_event_fd(void);
void vhost_scsi_handle_events(void);
/* Control thread, about once a second: retry undelivered hot-plug events. */
void vhost_scsi_tick(void);

/*
 * Tell the guest that a LUN appeared or went away (event queue,
 * VIRTIO_SCSI_T_TRANSPORT_RESET); dp_lock held.
 */
void vhost_scsi_lun_event(struct scsi_ctrl *c, uint16_t target, uint16_t lun_id, bool added);
/* Commands on @l still in flight on @c (after a grace period none start). */
bool vhost_scsi_lun_busy(const struct scsi_ctrl *c, const struct lun *l);
/* Commands in flight on request queue @q of @c. */
uint32_t vhost_scsi_queue_inflight(const struct scsi_ctrl *c, uint16_t q);

/* Per-PMD state: the thread's io_uring and its batch of queues to publish. */
struct vscsi_pmd;
struct vscsi_pmd *vhost_scsi_pmd_create(unsigned int pmd_idx, int numa, char *err, size_t errlen);
void vhost_scsi_pmd_destroy(struct vscsi_pmd *vp);
/* Poll one vring of the plan; returns the requests started. */
unsigned int vhost_scsi_poll(
	struct vscsi_pmd *vp, const struct dp_snapshot *s, const struct dp_sq_ref *ref);
/* Interrupt mode: the kick eventfd of a queue of the plan (-1: none). */
int vhost_scsi_kick_fd(const struct dp_snapshot *s, const struct dp_sq_ref *ref);
/*
 * Ask the guest to kick (@enable) or not for new requests on a queue. After
 * enabling, returns true when the queue has work already (no kick will come).
 */
bool vhost_scsi_arm(const struct dp_snapshot *s, const struct dp_sq_ref *ref, bool enable);
/* The thread's io_uring completion eventfd (-1: none). */
int vhost_scsi_pmd_event_fd(const struct vscsi_pmd *vp);

/*
 * Submit queued I/O, reap completions and publish the used rings (one
 * interrupt per ring at most). Must run before the thread's quiescent state.
 * Returns the requests completed.
 */
unsigned int vhost_scsi_pmd_finish(struct vscsi_pmd *vp);

#endif
