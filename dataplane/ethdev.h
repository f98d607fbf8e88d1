/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ethdev ports: any DPDK ethdev named by devargs (a vdev such as net_tap or
 * net_virtio_user is hot-plugged with rte_dev_probe; a device that already
 * exists, e.g. a PCI NIC probed at start, is used as is). Used as the link
 * between vhostd and an OVS bridge, or to a NIC.
 *
 * Queues: the port has `queues` rx queues polled by the PMDs like vhost rx
 * queues, and one tx queue per PMD thread where the device has enough (no
 * lock); when it has fewer, PMDs sharing a tx queue take its spinlock.
 */
#ifndef VHOSTD_ETHDEV_H
#define VHOSTD_ETHDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct port;

/* Probe (if needed), configure and start the device of @p; dp_lock held. */
int ethdev_port_open(struct port *p, char *err, size_t errlen);
/* Stop, close and (for a hot-plugged vdev) remove it; no PMD may use it. */
void ethdev_port_close(struct port *p);
bool ethdev_port_link_up(const struct port *p);
/* The eventfd of rx queue @q's interrupt, or -1 when the driver has none. */
int ethdev_port_rx_intr_fd(uint16_t eth_port, uint16_t q);

#endif
