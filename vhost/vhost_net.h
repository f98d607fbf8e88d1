/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user net ports over DPDK's rte_vhost (built-in virtio-net path).
 * rte_vhost runs the protocol in its own event thread; its callbacks update
 * the port under dp_lock() and republish the datapath snapshot. The PMD
 * threads call rte_vhost_dequeue_burst()/rte_vhost_enqueue_burst().
 */
#ifndef VHOSTD_VHOST_NET_H
#define VHOSTD_VHOST_NET_H

#include <stddef.h>
#include <stdint.h>

struct port;

/*
 * Register and start the socket of @p (server: listen, client: connect and
 * keep reconnecting). Called with dp_lock held. Returns 0 or a negative
 * errno with a message in @err (e.g. -EADDRINUSE for a live socket).
 */
int vhost_net_start(struct port *p, char *err, size_t errlen);

/*
 * Close the socket and disconnect the frontend. Must be called WITHOUT
 * dp_lock: rte_vhost runs destroy_device from here and may wait for its
 * event thread, which takes dp_lock.
 */
void vhost_net_stop(struct port *p);

/* Enabled vrings (bit per vring) of a connected device. */
uint64_t vhost_net_vring_bits(int vid);

/*
 * An eventfd that becomes readable when a frontend enabled or disabled a
 * vring; the control thread then calls vhost_net_handle_events().
 */
int vhost_net_event_fd(void);
void vhost_net_handle_events(void);

#endif
