/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostctl verbs "ovs attach|detach|show" (kept out of vhostctl.c). argv
 * starts after "ovs"; the return value is vhostctl's exit status (0, 1
 * failed, 2 usage).
 */
#ifndef VHOSTD_VHOSTCTL_OVS_H
#define VHOSTD_VHOSTCTL_OVS_H

#include <stdbool.h>

#define VHOSTCTL_OVS_USAGE                                                                         \
	"  ovs attach PORT BRIDGE [--iface-id ID] [--vm-uuid UUID] [--vlan N] [--no-wait]\n"       \
	"                                   attach a vhost-user port to an Open vSwitch\n"         \
	"                                   bridge (waits until ovs-vswitchd applied it)\n"        \
	"  ovs detach PORT                  remove it from the OVS bridge\n"                       \
	"  ovs show [PORT]                  OVSDB connection and the attachments\n"

int vhostctl_ovs(const char *sock, int timeout_ms, bool json, int argc, char **argv);

#endif
