/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Attaching vhostd ports to Open vSwitch bridges (ovs-plugin/README.md).
 *
 * An attachment joins a vhost-user port of vhostd to an OVS bridge through
 * a link port that vhostd owns, cross-connected to the vhost-user port:
 * a tap (net_tap) added to a kernel/userspace bridge as a system interface,
 * or, on OVS-DPDK, a net_virtio_user port in server mode that OVS joins as
 * a dpdkvhostuserclient interface. The OVS rows carry external_ids
 * (iface-id, attached-mac, vm-uuid, iface-status, vhostd-port,
 * vhostd-owner) and the vhost port's counters in Interface.statistics.
 *
 * Everything runs in the main loop's thread (RPCs and ovs_process()).
 */
#ifndef VHOSTD_OVS_ATTACH_H
#define VHOSTD_OVS_ATTACH_H

#include <stdbool.h>

#include <jansson.h>

struct ctl_error;
struct ctl_server;
struct daemon_conf;

#define OVS_DEFAULT_DB "unix:/var/run/openvswitch/db.sock"
#define OVS_CFG_TIMEOUT_MS 10000 /* wait this long for ovs-vswitchd to apply */

/* Register ovs.attach, ovs.detach, ovs.show, ovs.doctor; remember @d. */
int ovs_methods_register(struct ctl_server *s, const struct daemon_conf *d);

/* The descriptor for the main loop (stable) and its handler. */
int ovs_fd(void);
void ovs_process(void);
/* Remove the OVS rows and link ports of every attachment (best effort). */
void ovs_shutdown(void);

/*
 * The config file's "ovs" section: check it (@apply false) or apply it
 * (after the ports exist). @obj may be NULL (no section).
 */
int ovs_config(json_t *obj, bool apply, struct ctl_error *err);
/* The live "ovs" section, or NULL when OVS was never configured. */
json_t *ovs_config_dump(void);

/* The "ovs" member of port.show for @port, or NULL when it is not attached. */
json_t *ovs_port_json(const char *port);

/* Doctor checks: {"reachable", "state", "error", "db", "bridges": [{"name","exists"}]}. */
void ovs_doctor_check(json_t *out);

#endif
