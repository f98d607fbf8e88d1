/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The datapath registry (ports, bridges, cross-connects, PMD threads) and the
 * snapshot published to the PMD threads.
 *
 * The control thread and the rte_vhost event thread change the registry under
 * dp_lock(); every change ends with dp_publish(), which builds an immutable
 * struct dp_snapshot and swaps it in with liburcu (QSBR). PMD threads only
 * ever read the current snapshot and the long-lived objects it points to, so
 * the hot path takes no lock. Objects removed from the registry are freed
 * after a grace period (synchronize_rcu()).
 */
#ifndef VHOSTD_DATAPATH_H
#define VHOSTD_DATAPATH_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu-qsbr.h>

#include <rte_common.h>
#include <rte_spinlock.h>

#include "lun.h"
#include "pmd.h"

struct ctl_error;
struct rte_mempool;

#define DP_NAME_MAX 32
#define DP_SOCK_MAX 108 /* sizeof(sun_path) */
#define DP_MAX_PORTS 256
#define DP_MAX_BRIDGES 64
#define DP_MAX_XCONNECTS 128
#define DP_MAX_PMDS 32
#define DP_MAX_QUEUES 16 /* queue pairs per port */
#define DP_MAX_RXQ_PER_PMD 512
#define DP_BURST 32
#define DP_NONE 0xffff
#define DP_MAX_SCSI 64         /* vhost-user-scsi controllers */
#define DP_MAX_LUNS 256        /* LUNs, all controllers together */
#define DP_SCSI_MAX_LUNS 64    /* LUNs per controller */
#define DP_SCSI_MAX_TARGET 255 /* target ids 0..255 (virtio-scsi: one byte) */
#define DP_SCSI_MAX_LUN 255    /* LUN ids 0..255 per target */
/* Load is measured over the last DP_SCHED_WINDOW_S one-second ticks. */
#define DP_SCHED_WINDOW_S 10
#define DP_SCHED_SAMPLES (DP_SCHED_WINDOW_S + 1)
#define DP_PARKED 0xfffe /* rxq_pmd: polled by nobody while it moves */

enum port_type {
	PORT_VHOST_USER,
	PORT_SINK,      /* drops everything sent to it (counted) */
	PORT_REFLECTOR, /* sends every frame back with MACs swapped */
	PORT_ETHDEV,    /* a DPDK ethdev from devargs: net_tap, net_virtio_user, NIC... */
	PORT_TYPE_MAX,
};

/*
 * Port option "single-copy": whether frames may go guest to guest without an
 * mbuf (vhost_net.h, net_copy.h). "auto" measures both paths on each rx queue
 * now and then and keeps the cheaper one (forward.h).
 */
enum port_single_copy {
	PORT_SC_OFF,
	PORT_SC_ON,
	PORT_SC_AUTO,
};

enum port_vlan_mode {
	VLAN_MODE_TRUNK_ALL, /* no tag, no trunks: every VLAN, untagged is VLAN 0 */
	VLAN_MODE_ACCESS,    /* "tag": untagged frames in that VLAN only */
	VLAN_MODE_TRUNK,     /* "trunks": tagged frames of those VLANs + untagged */
};

enum dp_drop {
	DROP_NO_MBUF,
	DROP_FILTERED,
	DROP_VLAN,
	DROP_MTU,
	DROP_NO_DEST,
	DROP_DOWN,
	DROP_QUEUE_FULL,
	DROP_MAX,
};
extern const char *const dp_drop_names[DROP_MAX];

struct port_conf {
	char name[DP_NAME_MAX];
	enum port_type type;
	char socket[DP_SOCK_MAX]; /* absolute after config resolution */
	bool client;              /* vhostd connects (QEMU/DPDK is the server) */
	uint16_t queues;          /* queue pairs offered, 1..DP_MAX_QUEUES */
	char devargs[256];        /* ethdev: "net_tap0,iface=x" (name first) */
	char bridge[DP_NAME_MAX]; /* "" when not on a bridge */
	uint16_t tag;             /* access VLAN, 0 = none */
	bool has_trunks;
	uint64_t trunks[64]; /* bitmap of VLANs 0..4095 */
	bool has_mac;
	uint8_t mac[6]; /* the guest's MAC: installed as a static entry */
	uint16_t mtu;   /* largest L3 payload forwarded, 68..9600 */
	bool csum;      /* virtio-net checksum offload */
	bool mrg_rxbuf; /* mergeable receive buffers */
	uint8_t single_copy; /* enum port_single_copy; not PORT_SC_OFF: a single-copy port */
	bool admin_up;
	/* "rxq-affinity": CPU + 1 per rx queue, 0: not pinned (zeroed = none). */
	uint16_t rxq_pin[DP_MAX_QUEUES];
};

struct bridge_conf {
	char name[DP_NAME_MAX];
	uint32_t mac_aging_s;
	uint32_t mac_table_size;
};

struct xconnect_conf {
	char name[DP_NAME_MAX];
	char ports[2][DP_NAME_MAX];
};

/* A vhost-user-scsi controller (one socket, one virtio-scsi device). */
struct scsi_conf {
	char name[DP_NAME_MAX];
	char socket[DP_SOCK_MAX]; /* absolute after config resolution */
	bool client;              /* vhostd connects (QEMU is the server) */
	uint16_t queues;          /* request queues offered (config num_queues) */
	uint32_t max_sectors;     /* config space: 512-byte sectors per command */
	uint32_t cmd_per_lun;     /* config space: queue depth per LUN */
	uint16_t rxq_pin[DP_MAX_QUEUES]; /* "rxq-affinity": CPU + 1, 0: not pinned */
};

/* A LUN: a backend placed at controller/target/lun (libvirt's bus is 0). */
struct scsi_lun_conf {
	struct lun_conf lun; /* name, backend, path, size, cache, ... */
	char controller[DP_NAME_MAX];
	uint16_t target; /* 0..DP_SCSI_MAX_TARGET */
	uint16_t lun_id; /* 0..DP_SCSI_MAX_LUN */
};

/* Governor settings of one PMD thread that differ from the default. */
struct pmd_thread_conf {
	int cpu;
	int8_t mode;          /* enum pmd_mode, -1: the default */
	int64_t halt_poll_ns; /* -1: the default */
};

struct pmd_conf {
	char cpus_text[256]; /* as given ("auto" or a cpuset) */
	cpu_set_t cpus;
	struct pmd_gov gov; /* every thread's, unless overridden below */
	uint16_t n_threads;
	struct pmd_thread_conf threads[DP_MAX_PMDS];
	/* Queue scheduler (dataplane/queue_sched.h). */
	bool isolate;                      /* PMDs with pinned queues poll nothing else */
	bool auto_rebalance;               /* rebalance from the 1 s tick */
	uint32_t rebalance_interval_s;     /* auto: at most this often */
	uint32_t rebalance_improvement;    /* % of variance a rebalance must remove */
	uint32_t rebalance_load_threshold; /* auto: only when a PMD is this busy (%) */
};

/* Counters of one queue, written by one PMD thread only. */
struct dp_counters {
	uint64_t packets;
	uint64_t bytes;
	uint64_t errors;
	uint64_t drops[DROP_MAX];
	uint64_t cycles; /* rx: TSC cycles of polls that got frames, tx flush included */
	uint64_t single_copy; /* tx: frames copied guest to guest (also in packets) */
} __rte_cache_aligned;

struct port_stats {
	struct dp_counters rx[DP_MAX_QUEUES];
	/* tx is per sending PMD so that several PMDs never share a line. */
	struct dp_counters tx[DP_MAX_PMDS][DP_MAX_QUEUES];
};

/*
 * "single-copy": "auto" on one rx queue, written by its PMD only. A probe is
 * FWD_SC_AUTO_STEPS windows, single copy and the mbuf path in turn; the
 * queue's rx cycles and frames over each window add up per path, and the
 * path with fewer cycles per frame is kept until the next probe. The
 * control thread reads the fields marked (shown) for "port show".
 */
struct sc_auto {
	uint64_t until;   /* TSC at which the current step ends */
	uint64_t cycles0; /* the queue's rx cycles and frames at the step's start */
	uint64_t frames0;
	uint64_t cycles[2]; /* this probe so far: [0] the mbuf path, [1] single copy */
	uint64_t frames[2];
	uint64_t probes;     /* (shown) probes decided */
	uint64_t chose_mbuf; /* (shown) of them, won by the mbuf path */
	/* (shown) Sums over the probes with enough frames, [0] mbuf, [1] single copy. */
	uint64_t judged_cycles[2];
	uint64_t judged_frames[2];
	uint32_t cpf[2]; /* (shown) last probe's cycles per frame, 0: too few frames */
	uint8_t step;    /* 0: keeping the choice, 1..FWD_SC_AUTO_STEPS: probing */
	uint8_t sc;      /* (shown) single copy in use now */
};

/*
 * Who works on one vring of a single-copy port (vhost_net.c): nobody, a
 * single-copy burst, or rte_vhost's own enqueue/dequeue. One line each: the
 * two vrings of a burst are usually written by different PMDs over time.
 */
struct vring_owner {
	uint32_t owner;
} __rte_cache_aligned;

struct port {
	struct port_conf conf;
	uint16_t idx;
	bool deleting;
	/* vhost-user device state, changed by the rte_vhost event thread. */
	int vid; /* -1: no frontend */
	uint16_t nr_vring;
	uint64_t vring_enabled; /* bit per vring */
	uint64_t features;      /* negotiated virtio features */
	uint64_t connects;
	uint64_t disconnects;
	/*
	 * Single copy (vhost_net.c): per-vring owners [2 * DP_MAX_QUEUES] in
	 * hugepage memory (vhost ports only), state bits (atomic, 0: usable)
	 * and the guest memory table, replaced only while blocked.
	 */
	struct vring_owner *sc_vring;
	uint32_t sc_state;
	struct rte_vhost_memory *sc_mem;
	int sc_mem_vid; /* the connection sc_mem belongs to */
	/*
	 * Single copy, per rx queue (written by its PMD only): TSC before which
	 * not to try again, and how many tries in a row found nothing to take
	 * (the back-off doubles with each, forward.h).
	 */
	uint64_t sc_retry_at[DP_MAX_QUEUES];
	uint8_t sc_misses[DP_MAX_QUEUES];
	/* "single-copy": "auto": each rx queue's probes and choice (forward.h). */
	struct sc_auto sc_auto[DP_MAX_QUEUES];
	/* Stable rx queue placement: PMD index per queue, DP_NONE unassigned. */
	uint16_t rxq_pmd[DP_MAX_QUEUES];
	/* ethdev state (ethdev.c), set up by dp_port_add. */
	uint16_t eth_port;
	uint16_t eth_nrxq;
	uint16_t eth_ntxq;
	bool eth_open;
	bool eth_hotplugged; /* we created it with rte_dev_probe: remove it on delete */
	bool eth_rx_intr;    /* configured with rx interrupts */
	rte_spinlock_t *eth_txlock; /* one per tx queue, taken only when PMDs share it */
	struct port_stats *stats;   /* hugepage memory, freed after a grace period */
	struct port_stats *cleared; /* baseline of stats.clear, control thread only */
	/* rx cycles per queue at the last ticks (datapath_sched.c). */
	uint64_t cyc_hist[DP_SCHED_SAMPLES][DP_MAX_QUEUES];
};

/* Counters of one scsi request queue, written by one PMD thread only. */
struct scsi_queue_counters {
	uint64_t requests;   /* commands completed */
	uint64_t tmf;        /* task management functions */
	uint64_t bad_chains; /* requests failed for a malformed descriptor chain */
	uint64_t errors;     /* commands that ended in CHECK CONDITION */
	uint64_t inflight;   /* started - completed (for show) */
	uint64_t cycles;     /* TSC cycles of polls that started work (see pmd.c) */
} __rte_cache_aligned;

struct vhost_scsi_dev; /* vhost_scsi.c private state of a connection */

struct scsi_ctrl {
	struct scsi_conf conf;
	uint16_t idx;
	bool deleting;
	int vid; /* -1: no frontend */
	uint16_t nr_vring;
	uint64_t vring_ready; /* bit per vring: started by vhost_scsi */
	uint64_t features;
	uint64_t connects;
	uint64_t disconnects;
	bool broken; /* the frontend broke a ring: device needs reset */
	char broken_why[128];
	uint16_t rxq_pmd[DP_MAX_QUEUES];    /* request queue -> PMD */
	struct scsi_queue_counters *qstats; /* [DP_MAX_QUEUES], hugepage memory */
	struct vhost_scsi_dev *dev;
	uint64_t cyc_hist[DP_SCHED_SAMPLES][DP_MAX_QUEUES];
};

struct scsi_lun {
	struct scsi_lun_conf conf;
	uint16_t idx;
	struct lun *lun;
};

struct bridge {
	struct bridge_conf conf;
	uint16_t idx;
	struct mac_table *macs;
};

struct xconnect {
	struct xconnect_conf conf;
	uint16_t ports[2];
};

/* Per-port state in a snapshot: everything the hot path needs, by value. */
struct dp_port_view {
	struct port *port; /* NULL: free slot */
	int vid;
	uint8_t type;
	uint8_t up; /* admin up and (for vhost) a frontend is connected */
	uint8_t vlan_mode;
	uint8_t guest_csum; /* the frontend accepts partial checksums */
	uint8_t sc;         /* single-copy port: rte_vhost calls go through vring owners */
	uint8_t sc_peer;    /* cross-connected to a single-copy vhost port it can copy to */
	uint8_t sc_ok;      /* single copy can take from / deliver to it now (features) */
	uint8_t sc_auto;    /* "single-copy": "auto": fwd_sc_auto_pick() chooses per queue */
	uint8_t host_csum;  /* the frontend may leave checksums to us (VIRTIO_NET_F_CSUM) */
	uint16_t tag;
	uint16_t bridge;    /* bridge index or DP_NONE */
	uint16_t peer;      /* cross-connect peer or DP_NONE */
	uint16_t max_frame; /* mtu + Ethernet header + one VLAN tag */
	uint16_t n_txq;     /* enabled guest rx queues */
	uint8_t txq[DP_MAX_QUEUES];
	uint16_t eth_port;
	uint16_t eth_ntxq;
	uint8_t eth_tx_shared; /* fewer tx queues than PMD threads: lock */
	uint8_t eth_rx_intr;   /* rx interrupts configured: a halted PMD can arm them */
	rte_spinlock_t *eth_txlock;
	const uint64_t *trunks; /* owned by the snapshot */
};

struct dp_bridge_view {
	struct bridge *br; /* NULL: free slot */
	uint16_t n_ports;
	uint16_t ports[DP_MAX_PORTS];
};

struct dp_rxq_ref {
	uint16_t port;
	uint16_t queue;
};

/* A vring of a scsi controller polled by a PMD (0 = control, 2.. = requests). */
struct dp_sq_ref {
	uint16_t ctrl;
	uint16_t vring;
};

struct dp_pmd_plan {
	uint16_t n_rxq;
	uint16_t n_sq;
	struct dp_rxq_ref rxq[DP_MAX_RXQ_PER_PMD];
	struct dp_sq_ref sq[DP_MAX_RXQ_PER_PMD];
};

/* A LUN as the hot path finds it: sorted by (target, lun). */
struct dp_lun_ref {
	uint16_t target;
	uint16_t lun_id;
	struct lun *lun;
};

struct dp_scsi_view {
	struct scsi_ctrl *ctrl; /* NULL: free slot */
	struct vhost_scsi_dev *dev;
	uint16_t n_luns;
	struct dp_lun_ref luns[DP_SCSI_MAX_LUNS];
	uint16_t lun_ids[DP_SCSI_MAX_LUNS]; /* lun_id of luns[i], for REPORT LUNS */
};

struct dp_snapshot {
	struct rcu_head rcu; /* deferred free */
	uint64_t generation;
	uint16_t n_pmd;
	struct dp_port_view ports[DP_MAX_PORTS];
	struct dp_bridge_view bridges[DP_MAX_BRIDGES];
	struct dp_pmd_plan pmds[DP_MAX_PMDS];
	struct dp_scsi_view scsi[DP_MAX_SCSI];
	uint64_t trunk_store[][64];
};

/* The registry; read it only under dp_lock(). */
struct dp_registry {
	struct port *ports[DP_MAX_PORTS];
	struct bridge *bridges[DP_MAX_BRIDGES];
	struct xconnect *xconnects[DP_MAX_XCONNECTS];
	/* PMD threads by index; NULL slots are holes (indices are stable). */
	struct pmd *pmds[DP_MAX_PMDS];
	struct scsi_ctrl *scsi[DP_MAX_SCSI];
	struct scsi_lun *luns[DP_MAX_LUNS];
	uint16_t n_pmd; /* highest used index + 1 */
	struct pmd_conf pmd_conf;
	bool pmd_configured;
};
extern struct dp_registry dp;

/* The snapshot PMD threads read (rcu_dereference() it). */
extern struct dp_snapshot *dp_current;

int dp_init(void);
/* Stops PMDs and removes every port (guests see the socket go away). */
void dp_shutdown(void);

void dp_lock(void);
void dp_unlock(void);

/*
 * Rebuild and publish the snapshot; caller holds dp_lock. Does not wait for
 * the PMDs: the old snapshot is freed after a grace period.
 */
void dp_publish(void);
/* Wait until no PMD uses an older snapshot; caller must NOT be a PMD. */
void dp_wait_grace(void);
/* Sleep between polls of a drain (control and rte_vhost threads only). */
void dp_sleep_ms(unsigned int ms);

/* All of these take dp_lock themselves and fill @err on failure. */
int dp_port_add(const struct port_conf *c, struct ctl_error *err);
int dp_port_update(const char *name, const struct port_conf *c, struct ctl_error *err);
int dp_port_del(const char *name, struct ctl_error *err);
int dp_bridge_add(const struct bridge_conf *c, struct ctl_error *err);
int dp_bridge_update(const char *name, const struct bridge_conf *c, struct ctl_error *err);
int dp_bridge_del(const char *name, struct ctl_error *err);
int dp_xconnect_add(const struct xconnect_conf *c, struct ctl_error *err);
int dp_xconnect_del(const char *name, struct ctl_error *err);
int dp_pmd_set(const struct pmd_conf *c, struct ctl_error *err);
/* The governor settings of the thread on @cpu under @c. */
void dp_pmd_gov_of(const struct pmd_conf *c, int cpu, struct pmd_gov *out);

/* ---- queue scheduler (datapath_sched.c) ---- */

/* A queue the rebalance moves (or would move). */
struct dp_sched_move {
	bool scsi;     /* scsi request queue, else net rx queue */
	uint16_t obj;  /* port or controller index */
	uint16_t queue;
	uint16_t from; /* PMD index, DP_NONE: not polled */
	uint16_t to;
};

struct dp_sched_result {
	double var_before; /* variance of the PMD loads (in % of a CPU), now */
	double var_after;  /* and with the new assignment */
	bool applied;
	uint32_t window_s; /* seconds of load history used */
	uint16_t n_moves;
	struct dp_sched_move *moves; /* malloc'ed: free() it */
};

/* Control thread, once a second: sample loads; auto-rebalance. */
void dp_sched_tick(void);
/*
 * Compute an assignment by measured load; apply it when not @dry_run and
 * (@force or it beats the improvement threshold). Takes dp_lock.
 */
int dp_sched_rebalance(bool dry_run, bool force, struct dp_sched_result *out,
	struct ctl_error *err);
/* Seconds of load history; dp_lock held. */
uint32_t dp_sched_window(void);
/* Load of queue @q in % of a CPU over the window; dp_lock held. */
double dp_sched_queue_load(const uint64_t (*hist)[DP_MAX_QUEUES], uint16_t q);
/* Busy % of PMD slot @i over the window (-1: no history); dp_lock held. */
double dp_sched_pmd_busy(uint16_t i);
/* NUMA node of the guest memory of a vhost device, -1: unknown. */
int dp_sched_numa(int vid);
/*
 * Internal to the registry, at dp_publish() time: the PMD of one queue.
 * @cur its PMD now, @pin CPU + 1 (0: not pinned), @sticky: keep @cur when
 * allowed. Returns DP_NONE when it cannot be polled (reported).
 */
enum dp_place {
	DP_PLACE_NEW,    /* no PMD yet */
	DP_PLACE_STICKY, /* keep @cur unless pins or isolation say otherwise */
	DP_PLACE_KEEP,   /* keep @cur whenever it runs (scsi: moves need a drain) */
};
void dp_sched_begin(const struct dp_snapshot *s);
uint16_t dp_sched_place(uint16_t cur, int numa, uint16_t pin, enum dp_place how);
/* PMD slot @i gets a new thread (forget the load history) / is being removed. */
void dp_sched_pmd_reset(uint16_t i);
void dp_sched_pmd_leaving(uint16_t i, bool leaving);
bool dp_sched_pmd_is_leaving(uint16_t i);
void dp_stats_clear(struct port *p);

int dp_scsi_add(const struct scsi_conf *c, struct ctl_error *err);
/* Deletes the controller's LUNs too. */
int dp_scsi_del(const char *name, struct ctl_error *err);
/* Hot-add/remove: a connected guest is told through the event queue. */
int dp_lun_add(const struct scsi_lun_conf *c, struct ctl_error *err);
int dp_lun_del(const char *name, struct ctl_error *err);

/* Lookups; caller holds dp_lock. */
struct scsi_ctrl *dp_scsi_find(const char *name);
struct scsi_ctrl *dp_scsi_find_by_socket(const char *path);
struct scsi_lun *dp_lun_find(const char *name);
/* Sum of a controller's queue counters; @q < 0: all queues. */
void dp_scsi_counters(const struct scsi_ctrl *c, int q, struct scsi_queue_counters *out);
/* Internal to the registry: the scsi part of dp_publish() and dp_shutdown(). */
void dp_publish_scsi(struct dp_snapshot *s);
void dp_scsi_shutdown(void);
struct port *dp_port_find(const char *name);
struct port *dp_port_find_by_socket(const char *path);
struct bridge *dp_bridge_find(const char *name);
struct xconnect *dp_xconnect_find(const char *name);
/* The cross-connect a port belongs to, or NULL. */
struct xconnect *dp_port_xconnect(const struct port *p);

/* Sum a port's counters (minus the clear baseline). @q < 0: all queues. */
void dp_port_counters(const struct port *p, int q, struct dp_counters *rx, struct dp_counters *tx);

/* The mbuf pool of a NUMA node, created on first use. */
struct rte_mempool *dp_mempool(int socket_id);

#endif
