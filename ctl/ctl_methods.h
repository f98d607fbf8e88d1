/* SPDX-License-Identifier: BSD-3-Clause */
/* The daemon's JSON-RPC methods (ctl/API.md), bound to the datapath. */
#ifndef VHOSTD_CTL_METHODS_H
#define VHOSTD_CTL_METHODS_H

struct ctl_server;
struct daemon_conf;

int ctl_methods_register(struct ctl_server *s, struct daemon_conf *d);

#endif
