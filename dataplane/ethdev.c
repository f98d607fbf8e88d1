/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>

#include "datapath.h"
#include "ethdev.h"
#include "log.h"

#define ETHDEV_RX_DESC 1024
#define ETHDEV_TX_DESC 1024

static void
device_name(const char *devargs, char *name, size_t len)
{
	size_t n = strcspn(devargs, ",");

	if (n >= len)
		n = len - 1;
	memcpy(name, devargs, n);
	name[n] = '\0';
}

static int
configure(struct port *p, uint16_t id, const struct rte_eth_dev_info *info, bool rx_intr, char *err,
	size_t errlen)
{
	struct rte_eth_conf conf;
	uint16_t nb_rxd = ETHDEV_RX_DESC, nb_txd = ETHDEV_TX_DESC;
	int socket = rte_eth_dev_socket_id(id), rc;

	memset(&conf, 0, sizeof(conf));
	conf.intr_conf.rxq = rx_intr;
	/*
	 * A net_virtio_user server (the OVS-DPDK link) notices its vhost-user
	 * client leaving, and accepts the next one (ovs-vswitchd restarted), only
	 * in its link-state path: the interrupt on the connection/listening
	 * socket, or a link query. We never query the link, and the driver hooks
	 * that interrupt only if lsc or rxq interrupts are configured: without
	 * rx interrupts the link would stay dead after the first disconnect.
	 */
	if (strcmp(info->driver_name, "net_virtio_user") == 0 && info->dev_flags != NULL &&
		(*info->dev_flags & RTE_ETH_DEV_INTR_LSC))
		conf.intr_conf.lsc = 1;
	if (info->max_rx_pktlen >= (uint32_t)p->conf.mtu + RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN)
		conf.rxmode.mtu = p->conf.mtu;
	rc = rte_eth_dev_configure(id, p->eth_nrxq, p->eth_ntxq, &conf);
	if (rc < 0) {
		snprintf(err, errlen, "cannot configure %s: %s", p->conf.devargs, strerror(-rc));
		return rc;
	}
	rte_eth_dev_adjust_nb_rx_tx_desc(id, &nb_rxd, &nb_txd);
	if (socket < 0)
		socket = 0;
	for (uint16_t q = 0; q < p->eth_nrxq; q++) {
		rc = rte_eth_rx_queue_setup(id, q, nb_rxd, socket, NULL, dp_mempool(socket));
		if (rc < 0) {
			snprintf(err, errlen, "%s: rx queue %u: %s", p->conf.devargs, q,
				strerror(-rc));
			return rc;
		}
	}
	for (uint16_t q = 0; q < p->eth_ntxq; q++) {
		rc = rte_eth_tx_queue_setup(id, q, nb_txd, socket, NULL);
		if (rc < 0) {
			snprintf(err, errlen, "%s: tx queue %u: %s", p->conf.devargs, q,
				strerror(-rc));
			return rc;
		}
	}
	return 0;
}

int
ethdev_port_open(struct port *p, char *err, size_t errlen)
{
	struct rte_eth_dev_info info;
	char name[RTE_DEV_NAME_MAX_LEN];
	uint16_t id;
	int rc;

	device_name(p->conf.devargs, name, sizeof(name));
	p->eth_hotplugged = false;
	if (rte_eth_dev_get_port_by_name(name, &id) != 0) {
		rc = rte_dev_probe(p->conf.devargs);
		if (rc < 0) {
			snprintf(err, errlen, "cannot create device %s: %s (check the devargs)",
				p->conf.devargs, strerror(-rc));
			return rc;
		}
		p->eth_hotplugged = true;
		if (rte_eth_dev_get_port_by_name(name, &id) != 0) {
			snprintf(err, errlen, "%s created no ethdev named %s", p->conf.devargs,
				name);
			rc = -ENODEV;
			goto fail;
		}
	}
	rc = rte_eth_dev_info_get(id, &info);
	if (rc < 0) {
		snprintf(err, errlen, "%s: no device info: %s", name, strerror(-rc));
		goto fail;
	}
	p->eth_port = id;
	p->eth_nrxq = RTE_MIN(p->conf.queues, info.max_rx_queues);
	/* One tx queue per possible PMD thread, if the device has them. */
	p->eth_ntxq = RTE_MIN((uint16_t)DP_MAX_PMDS, info.max_tx_queues);
	if (p->eth_nrxq == 0 || p->eth_ntxq == 0) {
		snprintf(err, errlen, "%s: device has no queues", name);
		rc = -ENODEV;
		goto fail;
	}
	p->eth_txlock = rte_zmalloc("eth-txlock", sizeof(rte_spinlock_t) * DP_MAX_PMDS, 0);
	if (p->eth_txlock == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		rc = -ENOMEM;
		goto fail;
	}
	for (uint16_t q = 0; q < DP_MAX_PMDS; q++)
		rte_spinlock_init(&p->eth_txlock[q]);
	/*
	 * Rx interrupts let a halted PMD sleep on this port too, and a tx queue
	 * per PMD spares the lock; not every driver has either (net_tap wants
	 * as many tx queues as rx queues): try the best first.
	 */
	rc = -EINVAL;
	for (int attempt = 0; attempt < 4 && rc < 0; attempt++) {
		p->eth_rx_intr = attempt % 2 == 0;
		p->eth_ntxq = attempt < 2 ? RTE_MIN((uint16_t)DP_MAX_PMDS, info.max_tx_queues)
					  : RTE_MIN(p->eth_nrxq, info.max_tx_queues);
		rc = configure(p, id, &info, p->eth_rx_intr, err, errlen);
	}
	if (rc < 0)
		goto fail;
	rc = rte_eth_dev_start(id);
	if (rc < 0) {
		snprintf(err, errlen, "cannot start %s: %s", name, strerror(-rc));
		goto fail;
	}
	/* A switch port sees every frame, not only those for its own MAC. */
	rc = rte_eth_promiscuous_enable(id);
	if (rc < 0 && rc != -ENOTSUP)
		VLOG_WARN(
			"port %s: cannot enable promiscuous mode: %s", p->conf.name, strerror(-rc));
	p->eth_open = true;
	VLOG_INFO("port %s: ethdev %s (port %u, driver %s, %u rx / %u tx queues%s)", p->conf.name,
		name, id, info.driver_name, p->eth_nrxq, p->eth_ntxq,
		p->eth_rx_intr ? ", rx interrupts" : "");
	return 0;
fail:
	rte_free(p->eth_txlock);
	p->eth_txlock = NULL;
	if (p->eth_hotplugged)
		rte_eal_hotplug_remove("vdev", name);
	return rc;
}

void
ethdev_port_close(struct port *p)
{
	struct rte_eth_dev_info info;
	struct rte_device *dev = NULL;
	int rc;

	if (!p->eth_open)
		return;
	if (rte_eth_dev_info_get(p->eth_port, &info) == 0)
		dev = info.device;
	rc = rte_eth_dev_stop(p->eth_port);
	if (rc < 0)
		VLOG_WARN("port %s: stopping the ethdev: %s", p->conf.name, strerror(-rc));
	rte_eth_dev_close(p->eth_port);
	if (p->eth_hotplugged && dev != NULL) {
		rc = rte_dev_remove(dev);
		if (rc < 0)
			VLOG_WARN("port %s: removing %s: %s", p->conf.name, p->conf.devargs,
				strerror(-rc));
	}
	rte_free(p->eth_txlock);
	p->eth_txlock = NULL;
	p->eth_open = false;
}

bool
ethdev_port_link_up(const struct port *p)
{
	struct rte_eth_link link;

	if (!p->eth_open || rte_eth_link_get_nowait(p->eth_port, &link) != 0)
		return false;
	return link.link_status == RTE_ETH_LINK_UP;
}

int
ethdev_port_rx_intr_fd(uint16_t eth_port, uint16_t q)
{
	return rte_eth_dev_rx_intr_ctl_q_get_fd(eth_port, q);
}
