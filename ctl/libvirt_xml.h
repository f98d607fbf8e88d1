/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * libvirt domain XML <-> vhostd objects (libxml2). Client side only: used
 * by vhostctl's "libvirt import|remove|xml" verbs and the libvirt hook
 * (configs/libvirt/hooks/qemu), never by the daemon, which keeps the XML
 * parser out of the process that maps guest memory.
 *
 * What maps to what:
 *   <interface type='vhostuser'>        -> a vhost-user port; its socket
 *       <source type='unix' path=P mode=M/>  mode is the opposite of M (QEMU
 *       <driver queues='N'/>                 client -> vhostd server)
 *       <mac address=/>, <mtu size=/>, <driver><host csum= mrg_rxbuf=/>
 *       <alias name='ua-NAME'/>         -> the port's name (else the socket's
 *                                          basename without ".sock")
 *   <qemu:commandline> -chardev socket,id=X,path=P[,server=on]
 *                      -device vhost-user-scsi-pci,chardev=X,num_queues=N
 *                                       -> a vhost-user-scsi controller
 *                                          (name: id=vhostd-NAME, else the
 *                                          socket's basename)
 *   OVS (vhostd attaches the port to an OVS bridge, ovs-plugin/):
 *       <virtualport type='openvswitch'>  in the <interface> (hand-written
 *         <parameters interfaceid=ID/>     fragments; libvirt 9.0 refuses a
 *                                          virtualport on type='vhostuser')
 *       <metadata><vhostd:ovs xmlns:vhostd=LVX_VHOSTD_NS [bridge=BR]>
 *         <vhostd:port mac=MAC|name=PORT [bridge=BR] [interfaceid=ID]/>
 *       </vhostd:ovs></metadata>     in a <domain> (what libvirt keeps)
 *                                       -> an "ovs" entry {port, iface-id,
 *                                          vm-uuid (the <uuid>), bridge}
 * Input: a whole <domain>, or a fragment: one or more <interface>, <disk>,
 * <controller>, <memoryBacking>, <qemu:commandline> elements (what
 * lvx_snippet() prints parses back into the same objects).
 */

#ifndef VHOSTD_LIBVIRT_XML_H
#define VHOSTD_LIBVIRT_XML_H

#include <stddef.h>

#include <jansson.h>

#define LVX_QEMU_NS "http://libvirt.org/schemas/domain/qemu/1.0"
/* The namespace of vhostd's element in a domain's <metadata>. */
#define LVX_VHOSTD_NS "http://vhostd.org/schemas/libvirt/1.0"

struct lvx_result {
	json_t *ports;    /* array of port objects (config schema) */
	json_t *scsi;     /* array of scsi controller objects */
	json_t *notes;    /* array of strings: what was left alone, and why */
	json_t *ovs;      /* array of {"port", "iface-id"?, "vm-uuid"?, "bridge"?}:
			   * the ports that ask for an OVS attachment */
	char domain[256]; /* the <domain>'s <name>, "" for a fragment */
	char uuid[64];    /* the <domain>'s <uuid>, "" when absent */
};

/*
 * Parse @xml (@len bytes). Returns 0 with @res filled (free it with
 * lvx_result_free()), -ENOENT when the XML is valid but describes nothing
 * vhostd serves (@err says why, from the notes), or -EINVAL for malformed
 * or unsupported XML: @err then holds one line per problem, each naming
 * the element and the fix. @res is empty on failure.
 */
int lvx_parse(const char *xml, size_t len, struct lvx_result *res, char *err, size_t errlen);
void lvx_result_free(struct lvx_result *res);

/*
 * The XML snippet for the objects @names (NULL-terminated) of the live
 * configuration @config (config.get's document): an <interface> per port,
 * a <qemu:commandline> per scsi controller (its LUNs in a comment), and
 * the <memoryBacking> vhost-user needs. A port attached to OVS (the
 * config's "ovs" section) gets a <virtualport type='openvswitch'> with its
 * iface-id as interfaceid, and the <metadata> element that carries it
 * through libvirt. malloc'ed; NULL with @err set when
 * a name is unknown or not a vhost-user object.
 */
char *lvx_snippet(const json_t *config, const char *const *names, char *err, size_t errlen);

#endif /* VHOSTD_LIBVIRT_XML_H */
