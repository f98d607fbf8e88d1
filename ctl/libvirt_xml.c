/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * libvirt domain XML <-> vhostd objects: see libvirt_xml.h for the mapping.
 * Every problem is reported with the element's line and the fix, and all
 * of them at once, so that one run of "vhostctl libvirt import" tells the
 * operator everything to change.
 */

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "libvirt_xml.h"

#define NAME_MAX_LEN 31 /* DP_NAME_MAX - 1 */
#define MAX_QUEUES 16   /* DP_MAX_QUEUES */
#define FRAGMENT_ROOT "vhostd-fragment"

struct ctx {
	struct lvx_result *res;
	char *err;
	size_t errlen, errused;
	int nerr;
	bool in_domain; /* a whole <domain>: foreign devices are notes, not errors */
	bool explained; /* the virtio-scsi explanation was given once */
	const xmlNode *meta[8]; /* <vhostd:ovs> elements, applied after the devices */
	int nmeta;
};

/* ---- reporting ------------------------------------------------------------ */

static void fail(struct ctx *c, const xmlNode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void note(struct ctx *c, const xmlNode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(struct ctx *c, const xmlNode *n, const char *fmt, ...)
{
	va_list ap;
	int w;

	c->nerr++;
	if (c->err == NULL || c->errused + 1 >= c->errlen)
		return;
	if (c->errused > 0)
		c->err[c->errused++] = '\n';
	if (n != NULL) {
		w = snprintf(
			c->err + c->errused, c->errlen - c->errused, "line %ld: ", xmlGetLineNo(n));
		c->errused += w > 0 ? (size_t)w : 0;
		if (c->errused >= c->errlen) {
			c->errused = c->errlen - 1;
			return;
		}
	}
	va_start(ap, fmt);
	w = vsnprintf(c->err + c->errused, c->errlen - c->errused, fmt, ap);
	va_end(ap);
	c->errused += w > 0 ? (size_t)w : 0;
	if (c->errused >= c->errlen)
		c->errused = c->errlen - 1;
}

static void
note(struct ctx *c, const xmlNode *n, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int w = 0;

	if (n != NULL)
		w = snprintf(buf, sizeof(buf), "line %ld: ", xmlGetLineNo(n));
	va_start(ap, fmt);
	vsnprintf(buf + w, sizeof(buf) - w, fmt, ap);
	va_end(ap);
	json_array_append_new(c->res->notes, json_string(buf));
}

/* ---- libxml2 helpers -------------------------------------------------------- */

static bool
is_elem(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0 &&
	       (n->ns == NULL || n->ns->href == NULL ||
		       strcmp((const char *)n->ns->href, LVX_QEMU_NS) != 0);
}

/* <qemu:NAME>: by namespace, or by prefix when the fragment did not bind it. */
static bool
is_qemu_elem(const xmlNode *n, const char *name)
{
	if (n->type != XML_ELEMENT_NODE)
		return false;
	if (n->ns != NULL && n->ns->href != NULL &&
		strcmp((const char *)n->ns->href, LVX_QEMU_NS) == 0)
		return strcmp((const char *)n->name, name) == 0;
	return strncmp((const char *)n->name, "qemu:", 5) == 0 &&
	       strcmp((const char *)n->name + 5, name) == 0;
}

/* <vhostd:NAME> (LVX_VHOSTD_NS), by namespace or by an unbound prefix. */
static bool
is_vhostd_elem(const xmlNode *n, const char *name)
{
	if (n->type != XML_ELEMENT_NODE)
		return false;
	if (n->ns != NULL && n->ns->href != NULL)
		return strcmp((const char *)n->ns->href, LVX_VHOSTD_NS) == 0 &&
		       strcmp((const char *)n->name, name) == 0;
	return strncmp((const char *)n->name, "vhostd:", 7) == 0 &&
	       strcmp((const char *)n->name + 7, name) == 0;
}

static xmlNode *
child(const xmlNode *n, const char *name)
{
	for (xmlNode *k = n->children; k != NULL; k = k->next)
		if (is_elem(k, name))
			return k;
	return NULL;
}

/* An attribute's value, in a static buffer per slot (32 live at once). */
static const char *
attr(const xmlNode *n, const char *name)
{
	static char buf[32][512];
	static int slot;
	xmlChar *v;

	if (n == NULL)
		return NULL;
	v = xmlGetNoNsProp(n, (const xmlChar *)name);
	if (v == NULL)
		return NULL;
	slot = (slot + 1) % 32;
	snprintf(buf[slot], sizeof(buf[slot]), "%s", (const char *)v);
	xmlFree(v);
	return buf[slot];
}

static bool
parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("_.-", s[i]) == NULL)
			return false;
	return true;
}

static bool
valid_mac(const char *s)
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return (strtoul(s, NULL, 16) & 1) == 0;
}

/* The socket's basename without ".sock": the default object name. */
static void
name_from_socket(const char *path, char *out, size_t len)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base != NULL ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && strcmp(base + n - 5, ".sock") == 0)
		n -= 5;
	snprintf(out, len, "%.*s", (int)n, base);
}

static bool
onoff(const char *v, bool *out)
{
	if (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(v, "off") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0) {
		*out = false;
		return true;
	}
	return false;
}

static bool
name_taken(const json_t *arr, const char *name)
{
	size_t i;
	json_t *o;

	json_array_foreach((json_t *)arr, i, o)
		if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
			return true;
	return false;
}

/* ---- OVS attachments ---------------------------------------------------------- */

/* An OVS bridge name or an iface-id: printable, no quotes, at most @max bytes. */
static bool
ovs_value_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]) || strchr("\"'<>&\\", s[i]) != NULL)
			return false;
	return true;
}

/* The "ovs" entry of port @name, created on first use. */
static json_t *
ovs_entry(struct ctx *c, const char *name)
{
	size_t i;
	json_t *o;

	json_array_foreach(c->res->ovs, i, o)
		if (strcmp(json_string_value(json_object_get(o, "port")), name) == 0)
			return o;
	o = json_pack("{s:s}", "port", name);
	json_array_append_new(c->res->ovs, o);
	return o;
}

/* One <vhostd:port mac=|name= [bridge=] [interfaceid=]/> of <vhostd:ovs>. */
static void
meta_port(struct ctx *c, const xmlNode *n, const char *def_bridge)
{
	const char *mac = attr(n, "mac"), *name = attr(n, "name");
	const char *br = attr(n, "bridge"), *id = attr(n, "interfaceid");
	const json_t *port = NULL, *p;
	json_t *e;
	size_t i;

	if ((mac == NULL) == (name == NULL)) {
		fail(c, n,
			"<vhostd:port>: name the interface with mac='MAC' (its <mac address>) or "
			"name='PORT' (its vhostd port name), one of them");
		return;
	}
	json_array_foreach(c->res->ports, i, p) {
		const char *pm = json_string_value(json_object_get(p, "mac"));

		if ((mac != NULL && pm != NULL && strcasecmp(mac, pm) == 0) ||
			(name != NULL &&
				strcmp(name, json_string_value(json_object_get(p, "name"))) == 0))
			port = p;
	}
	if (port == NULL) {
		fail(c, n,
			"<vhostd:port %s='%s'>: no <interface type='vhostuser'> has that %s: "
			"fix the %s or remove the element",
			mac ? "mac" : "name", mac ? mac : name, mac ? "MAC address" : "port name",
			mac ? "MAC" : "name");
		return;
	}
	if (br == NULL)
		br = def_bridge;
	if (br != NULL && !ovs_value_ok(br, 63)) {
		fail(c, n, "<vhostd:port bridge='%s'>: not an OVS bridge name (1-63 characters)",
			br);
		return;
	}
	if (id != NULL && !ovs_value_ok(id, 127)) {
		fail(c, n,
			"<vhostd:port interfaceid='%s'>: use 1-127 printable characters without "
			"quotes (a neutron port UUID, for instance)",
			id);
		return;
	}
	e = ovs_entry(c, json_string_value(json_object_get(port, "name")));
	if (br != NULL)
		json_object_set_new(e, "bridge", json_string(br));
	if (id != NULL)
		json_object_set_new(e, "iface-id", json_string(id));
}

/* <metadata><vhostd:ovs [bridge=BR]> <vhostd:port .../>... </vhostd:ovs></metadata> */
static void
meta_ovs(struct ctx *c, const xmlNode *ovs)
{
	const char *br = attr(ovs, "bridge");

	for (const xmlNode *k = ovs->children; k != NULL; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (is_vhostd_elem(k, "port"))
			meta_port(c, k, br);
		else
			fail(c, k, "<%s> in <vhostd:ovs>: only <vhostd:port> elements go there",
				(const char *)k->name);
	}
}

static void
metadata(struct ctx *c, const xmlNode *md)
{
	for (const xmlNode *k = md->children; k != NULL; k = k->next)
		if (is_vhostd_elem(k, "ovs") && c->nmeta < (int)(sizeof(c->meta) / sizeof(c->meta[0])))
			c->meta[c->nmeta++] = k;
}

/* ---- <interface> ------------------------------------------------------------ */

static const char *const driver_attrs[] = {"name", "queues", "rx_queue_size", "tx_queue_size",
	"txmode", "ioeventfd", "event_idx", "iommu", "ats", "packed", "page_per_vq", "rss",
	"rss_hash_report", NULL};

static bool
in_list(const char *s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static void
check_driver(struct ctx *c, const xmlNode *drv, json_t *port)
{
	unsigned long q;
	const char *v;

	for (xmlAttr *a = drv->properties; a != NULL; a = a->next) {
		const char *an = (const char *)a->name;

		if (in_list(an, driver_attrs))
			continue;
		v = attr(drv, an);
		if (strcmp(an, "queue") == 0 || strcmp(an, "num_queues") == 0 ||
			strcmp(an, "queue_pairs") == 0)
			fail(c, drv,
				"<driver %s='%s'>: unknown attribute '%s': the queue count is "
				"queues='%s' (<driver queues='%s'/>)",
				an, v, an, v, v);
		else
			fail(c, drv,
				"<driver %s='%s'>: unknown attribute '%s' (libvirt's <driver> of "
				"an "
				"interface takes name, queues, rx_queue_size, tx_queue_size, ...): "
				"remove it",
				an, v, an);
	}
	v = attr(drv, "name");
	if (v != NULL && strcmp(v, "vhost") != 0 && strcmp(v, "qemu") != 0)
		fail(c, drv, "<driver name='%s'>: use name='vhost' or leave name out", v);
	v = attr(drv, "queues");
	if (v != NULL) {
		if (!parse_uint(v, 1, MAX_QUEUES, &q))
			fail(c, drv,
				"<driver queues='%s'>: vhostd serves 1-%d queue pairs: use "
				"queues='1' to queues='%d'",
				v, MAX_QUEUES, MAX_QUEUES);
		else
			json_object_set_new(port, "queues", json_integer((json_int_t)q));
	}
	for (xmlNode *k = drv->children; k != NULL; k = k->next) {
		bool on;

		if (!is_elem(k, "host"))
			continue;
		v = attr(k, "csum");
		if (v != NULL) {
			if (onoff(v, &on))
				json_object_set_new(port, "csum", json_boolean(on));
			else
				fail(c, k, "<host csum='%s'>: use csum='on' or csum='off'", v);
		}
		v = attr(k, "mrg_rxbuf");
		if (v != NULL) {
			if (onoff(v, &on))
				json_object_set_new(port, "mrg-rxbuf", json_boolean(on));
			else
				fail(c, k, "<host mrg_rxbuf='%s'>: use mrg_rxbuf='on' or 'off'", v);
		}
	}
}

static void
vhostuser_interface(struct ctx *c, const xmlNode *ifc)
{
	const xmlNode *src = child(ifc, "source"), *n;
	const char *path, *mode, *type, *v;
	char name[256] = "", ovs_id[256] = "";
	bool ovs = false;
	int errs = c->nerr;
	unsigned long mtu;
	json_t *port;

	if (src == NULL) {
		fail(c, ifc,
			"<interface type='vhostuser'> has no <source>: add <source type='unix' "
			"path='/run/vhostd/NAME.sock' mode='client'/> (QEMU connects to vhostd)");
		return;
	}
	type = attr(src, "type");
	path = attr(src, "path");
	mode = attr(src, "mode");
	if (type == NULL || strcmp(type, "unix") != 0)
		fail(c, src, "<source type='%s'>: vhost-user sockets are type='unix'",
			type ? type : "");
	if (path == NULL || path[0] != '/') {
		fail(c, src, "<source path='%s'>: give the absolute path of the vhost-user socket",
			path ? path : "");
		return;
	}
	if (strlen(path) >= 108) {
		fail(c, src, "<source path='%s'>: longer than a unix socket path may be (107)",
			path);
		return;
	}
	if (mode == NULL || (strcmp(mode, "client") != 0 && strcmp(mode, "server") != 0)) {
		fail(c, src,
			"<source mode='%s'>: use mode='client' (QEMU connects, vhostd listens) or "
			"mode='server' (QEMU listens, vhostd connects)",
			mode ? mode : "");
		return;
	}

	/* The name: <alias name='ua-NAME'/>, else the socket's basename. */
	n = child(ifc, "alias");
	v = attr(n, "name");
	if (v != NULL && strncmp(v, "ua-", 3) == 0)
		snprintf(name, sizeof(name), "%s", v + 3);
	else
		name_from_socket(path, name, sizeof(name));
	if (!valid_name(name)) {
		fail(c, ifc,
			"<interface type='vhostuser'> with socket %s: port name '%s' is not valid "
			"(1-%d letters, digits, '_', '.', '-'): add <alias name='ua-NAME'/> "
			"with a valid NAME",
			path, name, NAME_MAX_LEN);
		return;
	}
	port = json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", name, "type", "vhost-user", "socket",
		path, "mode", strcmp(mode, "client") == 0 ? "server" : "client", "queues", 1);

	n = child(ifc, "model");
	v = attr(n, "type");
	if (n != NULL && (v == NULL || strncmp(v, "virtio", 6) != 0))
		fail(c, n,
			"<model type='%s'>: vhost-user is virtio-net: use <model type='virtio'/>",
			v ? v : "");
	n = child(ifc, "driver");
	if (n != NULL)
		check_driver(c, n, port);
	n = child(ifc, "mac");
	if (n != NULL) {
		v = attr(n, "address");
		if (v == NULL || !valid_mac(v))
			fail(c, n, "<mac address='%s'>: use a unicast MAC like 52:54:00:12:34:56",
				v ? v : "");
		else
			json_object_set_new(port, "mac", json_string(v));
	}
	n = child(ifc, "mtu");
	if (n != NULL) {
		v = attr(n, "size");
		if (!parse_uint(v, 68, 9600, &mtu))
			fail(c, n, "<mtu size='%s'>: vhostd forwards an MTU of 68-9600 bytes",
				v ? v : "");
		else
			json_object_set_new(port, "mtu", json_integer((json_int_t)mtu));
	}
	n = child(ifc, "virtualport");
	if (n != NULL) {
		v = attr(n, "type");
		if (v != NULL && strcmp(v, "openvswitch") == 0) {
			const xmlNode *p = child(n, "parameters");
			const char *id = attr(p, "interfaceid");

			ovs = true;
			if (id != NULL && !ovs_value_ok(id, 127))
				fail(c, p,
					"<parameters interfaceid='%s'>: use 1-127 printable "
					"characters without quotes (a UUID, for instance)",
					id);
			else if (id != NULL)
				snprintf(ovs_id, sizeof(ovs_id), "%s", id);
		} else {
			fail(c, n,
				"<virtualport type='%s'>: vhostd ports are not 802.1Qbg/Qbh ports: "
				"remove the <virtualport>",
				v ? v : "");
		}
	}
	n = child(ifc, "vlan");
	if (n != NULL)
		fail(c, n,
			"<vlan>: libvirt has no VLANs on vhostuser interfaces: remove it and "
			"set the port's VLAN in vhostd (vhostctl port set %s tag=N)",
			name);
	if (c->nerr == errs && name_taken(c->res->ports, name))
		fail(c, ifc,
			"two interfaces map to port name '%s': give them distinct sockets or "
			"<alias name='ua-NAME'/>",
			name);
	if (c->nerr != errs) {
		json_decref(port);
		return;
	}
	json_array_append_new(c->res->ports, port);
	if (ovs) {
		json_t *e = ovs_entry(c, name);

		if (ovs_id[0])
			json_object_set_new(e, "iface-id", json_string(ovs_id));
	}
}

static void
interface(struct ctx *c, const xmlNode *ifc)
{
	const char *type = attr(ifc, "type");
	const xmlNode *vp = child(ifc, "virtualport");
	const char *br = attr(child(ifc, "source"), "bridge");
	char ovs[256] = "";

	if (type != NULL && strcmp(type, "vhostuser") == 0) {
		vhostuser_interface(c, ifc);
		return;
	}
	if (vp != NULL && attr(vp, "type") != NULL && strcmp(attr(vp, "type"), "openvswitch") == 0)
		snprintf(ovs, sizeof(ovs),
			"; its <virtualport type='openvswitch'> puts QEMU's tap on OVS bridge "
			"'%s': a vhostd port joins OVS through vhostd's OVS integration (vhostctl "
			"ovs attach, not available yet)",
			br ? br : "?");
	if (c->in_domain) {
		note(c, ifc, "<interface type='%s'> is not vhost-user: left to libvirt%s",
			type ? type : "", ovs);
		return;
	}
	fail(c, ifc,
		"<interface type='%s'> is not vhost-user (QEMU serves it itself)%s: to serve it "
		"from vhostd, make it <interface type='vhostuser'> with <source type='unix' "
		"path='/run/vhostd/NAME.sock' mode='client'/> (vhostctl libvirt xml PORT "
		"prints one)",
		type ? type : "", ovs);
}

/* ---- <disk>, <controller> ------------------------------------------------------ */

static const char virtio_scsi_fix[] =
	"libvirt's virtio-scsi controller is QEMU's own virtio-scsi, not vhost-user: to serve "
	"the disks from vhostd, create a controller and its LUNs (vhostctl scsi add NAME "
	"--socket PATH; vhostctl lun add DISK --controller NAME --target T --lun L --backend "
	"file --path FILE) and paste the <qemu:commandline> of 'vhostctl libvirt xml NAME' "
	"instead of the <controller> and its <disk>s";

static void
disk(struct ctx *c, const xmlNode *d)
{
	const char *type = attr(d, "type");
	const xmlNode *addr = child(d, "address"), *tgt = child(d, "target");
	const char *at = attr(addr, "type"), *bus = attr(tgt, "bus"), *dev = attr(tgt, "dev");

	if (type != NULL && strcmp(type, "vhostuser") == 0) {
		if (c->in_domain)
			note(c, d,
				"<disk type='vhostuser'> %s: vhostd does not serve vhost-user-blk: "
				"left to its backend (e.g. qemu-storage-daemon)",
				dev ? dev : "");
		else
			fail(c, d,
				"<disk type='vhostuser'>: vhostd does not serve vhost-user-blk: "
				"serve "
				"the disk as a LUN of a vhost-user-scsi controller instead "
				"(vhostctl "
				"scsi add, vhostctl lun add, then vhostctl libvirt xml "
				"CONTROLLER)");
		return;
	}
	if ((at != NULL && strcmp(at, "drive") == 0) || (bus != NULL && strcmp(bus, "scsi") == 0)) {
		const char *ctrl = attr(addr, "controller"), *tg = attr(addr, "target"),
			   *unit = attr(addr, "unit"), *file = attr(child(d, "source"), "file");
		char fix[512];

		if (file == NULL)
			file = attr(child(d, "source"), "dev");
		snprintf(fix, sizeof(fix),
			"as a vhostd LUN: vhostctl lun add %s --controller NAME --target %s --lun "
			"%s "
			"--backend file --path %s",
			dev ? dev : "DISK", tg ? tg : "0", unit ? unit : "0", file ? file : "FILE");
		if (c->in_domain) {
			note(c, d,
				"<disk> %s at <address type='drive' controller='%s' bus='%s' "
				"target='%s' unit='%s'> is on QEMU's own virtio-scsi: left to "
				"libvirt "
				"(%s)",
				dev ? dev : "", ctrl ? ctrl : "0",
				attr(addr, "bus") ? attr(addr, "bus") : "0", tg ? tg : "0",
				unit ? unit : "0", fix);
			return;
		}
		fail(c, d,
			"<disk> %s at <address type='drive' controller='%s' target='%s' "
			"unit='%s'>: %s; %s",
			dev ? dev : "", ctrl ? ctrl : "0", tg ? tg : "0", unit ? unit : "0",
			c->explained ? "on QEMU's virtio-scsi (see above)" : virtio_scsi_fix, fix);
		c->explained = true;
		return;
	}
	if (!c->in_domain)
		fail(c, d, "<disk type='%s'>: not a vhost-user device: nothing for vhostd",
			type ? type : "");
}

static void
controller(struct ctx *c, const xmlNode *n)
{
	const char *type = attr(n, "type"), *model = attr(n, "model");

	if (c->in_domain)
		return;
	if (type != NULL && strcmp(type, "scsi") == 0) {
		fail(c, n, "<controller type='scsi' model='%s'>: %s", model ? model : "",
			virtio_scsi_fix);
		c->explained = true;
	} else
		fail(c, n, "<controller type='%s'>: not a vhost-user device: nothing for vhostd",
			type ? type : "");
}

/* ---- <qemu:commandline> ------------------------------------------------------- */

/* Value of KEY in a QEMU option string "driver,k=v,k2=v2" (or NULL). A bare
 * "k" (flag) yields "on". */
static const char *
qopt(const char *opts, const char *key, char *buf, size_t len)
{
	const char *p = strchr(opts, ',');
	size_t kl = strlen(key);

	while (p != NULL) {
		const char *s = p + 1, *e = strchr(s, ',');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (n >= kl && strncmp(s, key, kl) == 0 && (n == kl || s[kl] == '=')) {
			if (n == kl)
				snprintf(buf, len, "on");
			else
				snprintf(buf, len, "%.*s", (int)(n - kl - 1), s + kl + 1);
			return buf;
		}
		p = e;
	}
	return NULL;
}

static bool
qdriver_is(const char *opts, const char *drv)
{
	size_t n = strlen(drv);

	return strncmp(opts, drv, n) == 0 && (opts[n] == ',' || opts[n] == '\0');
}

static void
scsi_device(struct ctx *c, const xmlNode *cl, const xmlNode *argn, const char *dev)
{
	char chr[128], id[128], path[512], srv[16], nq[32], tmp[64], name[256];
	const xmlNode *k;
	const char *chardev = NULL;
	bool server = false;
	unsigned long v;
	int errs = c->nerr;
	json_t *o;

	if (qopt(dev, "chardev", chr, sizeof(chr)) == NULL) {
		fail(c, argn,
			"-device %s: no chardev=: add chardev=ID of a -chardev socket,id=ID,"
			"path=/run/vhostd/NAME.sock",
			dev);
		return;
	}
	/* Find "-chardev socket,id=chr,..." anywhere in this commandline. */
	for (k = cl->children; k != NULL; k = k->next) {
		const char *a = attr(k, "value");

		if (!is_qemu_elem(k, "arg") || a == NULL || strcmp(a, "-chardev") != 0)
			continue;
		for (k = k->next; k != NULL && !is_qemu_elem(k, "arg"); k = k->next)
			;
		if (k == NULL)
			break;
		a = attr(k, "value");
		if (a != NULL && qopt(a, "id", id, sizeof(id)) != NULL && strcmp(id, chr) == 0) {
			chardev = a;
			break;
		}
	}
	if (chardev == NULL) {
		fail(c, argn,
			"-device %s: no -chardev with id=%s in this <qemu:commandline>: add "
			"-chardev socket,id=%s,path=/run/vhostd/NAME.sock",
			dev, chr, chr);
		return;
	}
	if (!qdriver_is(chardev, "socket")) {
		fail(c, k,
			"-chardev %s: vhost-user needs a unix socket chardev: -chardev socket,"
			"id=%s,path=PATH",
			chardev, chr);
		return;
	}
	if (qopt(chardev, "path", path, sizeof(path)) == NULL || path[0] != '/' ||
		strlen(path) >= 108) {
		fail(c, k, "-chardev %s: give path= the absolute path of the vhost-user socket",
			chardev);
		return;
	}
	if (qopt(chardev, "server", srv, sizeof(srv)) != NULL && !onoff(srv, &server)) {
		fail(c, k,
			"-chardev %s: server=%s: use server=on (QEMU listens, vhostd connects) "
			"or leave it out (QEMU connects)",
			chardev, srv);
		return;
	}
	if (qopt(dev, "id", id, sizeof(id)) != NULL && strncmp(id, "vhostd-", 7) == 0)
		snprintf(name, sizeof(name), "%s", id + 7);
	else
		name_from_socket(path, name, sizeof(name));
	if (!valid_name(name)) {
		fail(c, argn,
			"-device %s: controller name '%s' is not valid (1-%d letters, digits, "
			"'_', '.', '-'): add id=vhostd-NAME to the -device",
			dev, name, NAME_MAX_LEN);
		return;
	}
	o = json_pack("{s:s, s:s, s:s, s:i}", "name", name, "socket", path, "mode",
		server ? "client" : "server", "queues", 1);
	if (qopt(dev, "num_queues", nq, sizeof(nq)) != NULL ||
		qopt(dev, "num-queues", nq, sizeof(nq)) != NULL) {
		if (parse_uint(nq, 1, MAX_QUEUES, &v))
			json_object_set_new(o, "queues", json_integer((json_int_t)v));
		else
			fail(c, argn,
				"-device %s: num_queues=%s: vhostd serves 1-%d request queues", dev,
				nq, MAX_QUEUES);
	}
	if (qopt(dev, "max_sectors", tmp, sizeof(tmp)) != NULL) {
		if (parse_uint(tmp, 1, 65535, &v))
			json_object_set_new(o, "max-sectors", json_integer((json_int_t)v));
		else
			fail(c, argn, "-device %s: max_sectors=%s: use 1-65535", dev, tmp);
	}
	if (qopt(dev, "cmd_per_lun", tmp, sizeof(tmp)) != NULL) {
		if (parse_uint(tmp, 1, 65535, &v))
			json_object_set_new(o, "cmd-per-lun", json_integer((json_int_t)v));
		else
			fail(c, argn, "-device %s: cmd_per_lun=%s: use 1-65535", dev, tmp);
	}
	if (c->nerr == errs && name_taken(c->res->scsi, name))
		fail(c, argn,
			"two vhost-user-scsi devices map to controller name '%s': give them "
			"id=vhostd-NAME",
			name);
	if (c->nerr != errs) {
		json_decref(o);
		return;
	}
	json_array_append_new(c->res->scsi, o);
}

static void
qemu_commandline(struct ctx *c, const xmlNode *cl)
{
	for (const xmlNode *k = cl->children; k != NULL; k = k->next) {
		const xmlNode *vn;
		const char *a = attr(k, "value"), *dev;

		if (!is_qemu_elem(k, "arg") || a == NULL || strcmp(a, "-device") != 0)
			continue;
		for (vn = k->next; vn != NULL && !is_qemu_elem(vn, "arg"); vn = vn->next)
			;
		if (vn == NULL || (dev = attr(vn, "value")) == NULL) {
			fail(c, k,
				"<qemu:arg value='-device'/> is the last argument: follow it with "
				"<qemu:arg value='DRIVER,...'/>");
			return;
		}
		if (qdriver_is(dev, "vhost-user-scsi-pci") || qdriver_is(dev, "vhost-user-scsi"))
			scsi_device(c, cl, vn, dev);
		else if (qdriver_is(dev, "vhost-user-blk-pci") || qdriver_is(dev, "vhost-user-blk"))
			note(c, vn, "-device %s: vhostd does not serve vhost-user-blk: left alone",
				dev);
		else if (!c->in_domain && strncmp(dev, "virtio-net", 10) == 0)
			note(c, vn,
				"-device %s: describe vhost-user net ports with <interface "
				"type='vhostuser'> (vhostctl libvirt xml PORT), not "
				"qemu:commandline",
				dev);
		k = vn;
	}
}

/* ---- <memoryBacking> ----------------------------------------------------------- */

/* 1: shared, 0: absent, -1: present but not shared (error reported). */
static int
memory_backing(struct ctx *c, const xmlNode *mb, bool report)
{
	const xmlNode *acc = child(mb, "access");
	const char *mode = attr(acc, "mode");

	if (mode != NULL && strcmp(mode, "shared") == 0)
		return 1;
	if (report)
		fail(c, mb,
			"<memoryBacking> has %s: vhost-user backends map the guest's memory, which "
			"must be shared: put <access mode='shared'/> in it (with <source "
			"type='memfd'/> or <hugepages/>)",
			acc == NULL ? "no <access mode='shared'/>" : "<access mode='private'/>");
	return -1;
}

/* Shared memory through NUMA cells: <cpu><numa><cell memAccess='shared'/>. */
static bool
numa_shared(const xmlNode *dom)
{
	const xmlNode *cpu = child(dom, "cpu"), *numa = cpu ? child(cpu, "numa") : NULL;
	int cells = 0, shared = 0;

	if (numa == NULL)
		return false;
	for (const xmlNode *k = numa->children; k != NULL; k = k->next) {
		const char *m;

		if (!is_elem(k, "cell"))
			continue;
		cells++;
		m = attr(k, "memAccess");
		shared += m != NULL && strcmp(m, "shared") == 0;
	}
	return cells > 0 && cells == shared;
}

/* ---- walking ------------------------------------------------------------------- */

static void element(struct ctx *c, const xmlNode *n);

static void
children(struct ctx *c, const xmlNode *n)
{
	for (const xmlNode *k = n->children; k != NULL; k = k->next)
		if (k->type == XML_ELEMENT_NODE)
			element(c, k);
}

static void
element(struct ctx *c, const xmlNode *n)
{
	if (is_elem(n, "interface"))
		interface(c, n);
	else if (is_elem(n, "disk"))
		disk(c, n);
	else if (is_elem(n, "controller"))
		controller(c, n);
	else if (is_elem(n, "devices"))
		children(c, n);
	else if (is_qemu_elem(n, "commandline"))
		qemu_commandline(c, n);
	else if (is_elem(n, "memoryBacking"))
		memory_backing(c, n, true);
	else if (is_elem(n, "metadata"))
		metadata(c, n);
	else if (!c->in_domain)
		note(c, n, "<%s> ignored: not a vhost-user device", (const char *)n->name);
}

static void
domain(struct ctx *c, const xmlNode *dom)
{
	const xmlNode *nm = child(dom, "name"), *mb = child(dom, "memoryBacking");
	const xmlNode *uu = child(dom, "uuid"), *md = child(dom, "metadata");
	xmlChar *s;
	int shared;

	c->in_domain = true;
	if (nm != NULL && (s = xmlNodeGetContent(nm)) != NULL) {
		snprintf(c->res->domain, sizeof(c->res->domain), "%s", (const char *)s);
		xmlFree(s);
	}
	if (uu != NULL && (s = xmlNodeGetContent(uu)) != NULL) {
		snprintf(c->res->uuid, sizeof(c->res->uuid), "%s", (const char *)s);
		xmlFree(s);
	}
	if (md != NULL)
		metadata(c, md);
	for (const xmlNode *k = dom->children; k != NULL; k = k->next) {
		if (is_elem(k, "devices"))
			children(c, k);
		else if (is_qemu_elem(k, "commandline"))
			qemu_commandline(c, k);
	}
	if (json_array_size(c->res->ports) + json_array_size(c->res->scsi) == 0)
		return;
	shared = mb != NULL ? memory_backing(c, mb, false) : 0;
	if (shared == 1 || numa_shared(dom))
		return;
	if (shared == 0)
		fail(c, dom,
			"domain '%s' has no <memoryBacking>: vhost-user backends map the guest's "
			"memory, which must be shared: add <memoryBacking><source type='memfd'/>"
			"<access mode='shared'/></memoryBacking> to <domain> (or <hugepages/> "
			"instead of the memfd <source>)",
			c->res->domain);
	else
		memory_backing(c, mb, true);
}

/* ---- entry points -------------------------------------------------------------- */

void
lvx_result_free(struct lvx_result *res)
{
	json_decref(res->ports);
	json_decref(res->scsi);
	json_decref(res->notes);
	json_decref(res->ovs);
	memset(res, 0, sizeof(*res));
}

static xmlDoc *
read_xml(const char *xml, size_t len)
{
	return xmlReadMemory(xml, (int)len, "input.xml", NULL,
		XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS);
}

/* A fragment: wrap it in a root that binds the qemu prefix. */
static xmlDoc *
read_fragment(const char *xml, size_t len)
{
	static const char head[] = "<" FRAGMENT_ROOT " xmlns:qemu='" LVX_QEMU_NS
				   "' xmlns:vhostd='" LVX_VHOSTD_NS "'>";
	static const char tail[] = "</" FRAGMENT_ROOT ">";
	const char *p = xml, *end = xml + len;
	xmlDoc *doc;
	char *buf;
	size_t n;

	while (p < end && isspace((unsigned char)*p))
		p++;
	if (end - p > 5 && strncmp(p, "<?xml", 5) == 0) {
		const char *q = strstr(p, "?>"); /* xml is NUL-terminated by lvx_parse */

		if (q != NULL && q < end)
			p = q + 2;
	}
	n = (size_t)(end - p);
	buf = malloc(sizeof(head) + n + sizeof(tail));
	if (buf == NULL)
		return NULL;
	memcpy(buf, head, sizeof(head) - 1);
	memcpy(buf + sizeof(head) - 1, p, n);
	memcpy(buf + sizeof(head) - 1 + n, tail, sizeof(tail));
	doc = read_xml(buf, sizeof(head) - 1 + n + sizeof(tail) - 1);
	free(buf);
	return doc;
}

int
lvx_parse(const char *xml, size_t len, struct lvx_result *res, char *err, size_t errlen)
{
	struct ctx c = {.res = res, .err = err, .errlen = errlen};
	char *copy = NULL;
	const xmlError *xe;
	xmlNode *root;
	xmlDoc *doc;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	res->ports = json_array();
	res->scsi = json_array();
	res->notes = json_array();
	res->ovs = json_array();
	copy = strndup(xml, len);
	if (copy == NULL || res->ports == NULL || res->scsi == NULL || res->notes == NULL ||
		res->ovs == NULL) {
		free(copy);
		lvx_result_free(res);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	len = strlen(copy);
	doc = read_xml(copy, len);
	if (doc == NULL) {
		char first[512];

		xe = xmlGetLastError();
		snprintf(first, sizeof(first), "line %d: %s", xe ? xe->line : 0,
			xe && xe->message ? xe->message : "not XML\n");
		/* Several top-level elements: a fragment. */
		doc = read_fragment(copy, len);
		if (doc != NULL && xmlFirstElementChild(xmlDocGetRootElement(doc)) == NULL) {
			xmlFreeDoc(doc); /* blank or text only: say what the parser said */
			doc = NULL;
		}
		if (doc == NULL) {
			first[strcspn(first, "\n")] = '\0';
			snprintf(err, errlen, "malformed XML: %s", first);
			free(copy);
			lvx_result_free(res);
			return -EINVAL;
		}
	}
	free(copy);
	root = xmlDocGetRootElement(doc);
	if (root == NULL) {
		snprintf(err, errlen, "malformed XML: no element");
		rc = -EINVAL;
	} else if (is_elem(root, "domain")) {
		domain(&c, root);
	} else if (is_elem(root, FRAGMENT_ROOT)) {
		children(&c, root);
	} else {
		element(&c, root);
	}
	/* <vhostd:ovs> names the interfaces: once they are all known. */
	for (int i = 0; rc == 0 && i < c.nmeta; i++)
		meta_ovs(&c, c.meta[i]);
	if (res->uuid[0] != '\0') {
		size_t i;
		json_t *e;

		json_array_foreach(res->ovs, i, e)
			json_object_set_new(e, "vm-uuid", json_string(res->uuid));
	}
	xmlFreeDoc(doc);
	if (rc == 0 && c.nerr > 0)
		rc = -EINVAL;
	if (rc == 0 && json_array_size(res->ports) + json_array_size(res->scsi) == 0) {
		size_t i, w;
		json_t *n;

		w = (size_t)snprintf(err, errlen,
			"nothing for vhostd in this XML: no <interface type='vhostuser'> and no "
			"-device vhost-user-scsi-pci in <qemu:commandline>");
		json_array_foreach(res->notes, i, n)
			if (w < errlen)
				w += (size_t)snprintf(
					err + w, errlen - w, "\n%s", json_string_value(n));
		rc = -ENOENT;
	}
	if (rc != 0)
		lvx_result_free(res);
	return rc;
}

/* ---- generation ---------------------------------------------------------------- */

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->s != NULL && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
		char *s = realloc(b->s, cap);

		if (s == NULL) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

/* Attribute values we print come from vhostd's validated config (names,
 * absolute paths, MACs), but escape them anyway: a path may hold '&'. */
static char *
xesc(const char *s)
{
	xmlChar *e = xmlEncodeSpecialChars(NULL, (const xmlChar *)s);
	char *r = e ? strdup((const char *)e) : NULL;

	xmlFree(e);
	return r;
}

static const json_t *
find_obj(const json_t *config, const char *key, const char *name)
{
	size_t i;
	json_t *o;

	json_array_foreach(json_object_get(config, key), i, o)
		if (json_is_string(json_object_get(o, "name")) &&
			strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
			return o;
	return NULL;
}

static const char *
jstr(const json_t *o, const char *key, const char *def)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : def;
}

static json_int_t
jint(const json_t *o, const char *key, json_int_t def)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : def;
}

/* A user alias is "ua-" + letters, digits, '_', '-' (libvirt's rule). */
static bool
alias_ok(const char *name)
{
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return false;
	return true;
}

/* The OVS attachment of port @name in the config's "ovs" section, or NULL. */
static const json_t *
ovs_att(const json_t *config, const char *name)
{
	size_t i;
	json_t *a;

	json_array_foreach(json_object_get(json_object_get(config, "ovs"), "attach"), i, a)
		if (strcmp(jstr(a, "port", ""), name) == 0)
			return a;
	return NULL;
}

static void
gen_port(struct sbuf *b, const json_t *p, const json_t *ovs)
{
	const char *name = jstr(p, "name", ""), *sock = jstr(p, "socket", "");
	const char *mode = jstr(p, "mode", "server"), *bridge = jstr(p, "bridge", NULL);
	json_int_t q = jint(p, "queues", 1), mtu = jint(p, "mtu", 1500);
	const json_t *csum = json_object_get(p, "csum"), *mrg = json_object_get(p, "mrg-rxbuf");
	bool no_csum = json_is_false(csum), no_mrg = json_is_false(mrg);
	char *esock = xesc(sock), *ename = xesc(name), base[256];

	sb_printf(b, "<!-- vhostd port %s (vhostd is the vhost-user %s%s%s): in <devices> -->\n",
		name, mode, bridge ? ", bridge " : "", bridge ? bridge : "");
	sb_printf(b, "<interface type='vhostuser'>\n");
	if (jstr(p, "mac", NULL) != NULL)
		sb_printf(b, "  <mac address='%s'/>\n", jstr(p, "mac", ""));
	sb_printf(b, "  <source type='unix' path='%s' mode='%s'/>\n", esock ? esock : "",
		strcmp(mode, "client") == 0 ? "server" : "client");
	sb_printf(b, "  <model type='virtio'/>\n");
	if (q > 1 || no_csum || no_mrg) {
		sb_printf(b, "  <driver");
		if (q > 1)
			sb_printf(b, " queues='%lld'", (long long)q);
		if (no_csum || no_mrg)
			sb_printf(b, ">\n    <host%s%s/>\n  </driver>\n",
				no_csum ? " csum='off'" : "", no_mrg ? " mrg_rxbuf='off'" : "");
		else
			sb_printf(b, "/>\n");
	}
	if (mtu != 1500)
		sb_printf(b, "  <mtu size='%lld'/>\n", (long long)mtu);
	if (ovs != NULL) {
		char *eid = xesc(jstr(ovs, "iface-id", ""));

		/* libvirt 9.0 refuses it here: the <metadata> below carries it. */
		sb_printf(b,
			"  <!-- on OVS bridge %s: libvirt refuses <virtualport> in a vhostuser "
			"interface, so vhostd's <metadata> element (below) says it instead of\n"
			"  <virtualport type='openvswitch'>\n"
			"    <parameters%s%s%s/>\n"
			"  </virtualport>\n"
			"  -->\n",
			jstr(ovs, "bridge", "?"), jstr(ovs, "iface-id", NULL) ? " interfaceid='" : "",
			jstr(ovs, "iface-id", NULL) ? (eid ? eid : "") : "",
			jstr(ovs, "iface-id", NULL) ? "'" : "");
		free(eid);
	}
	name_from_socket(sock, base, sizeof(base));
	if (alias_ok(name))
		sb_printf(b, "  <alias name='ua-%s'/>\n", ename ? ename : "");
	sb_printf(b, "</interface>\n");
	if (!alias_ok(name) && strcmp(base, name) != 0)
		sb_printf(b,
			"<!-- the name '%s' cannot be a libvirt alias: importing this back "
			"names the port '%s' -->\n",
			name, base);
	free(esock);
	free(ename);
}

static void
gen_scsi(struct sbuf *b, const json_t *config, const json_t *s)
{
	const char *name = jstr(s, "name", ""), *sock = jstr(s, "socket", "");
	const char *mode = jstr(s, "mode", "server");
	json_int_t q = jint(s, "queues", 1), ms = jint(s, "max-sectors", 65535),
		   cpl = jint(s, "cmd-per-lun", 128);
	char *esock = xesc(sock), *ename = xesc(name);
	int nluns = 0;
	size_t i;
	json_t *l;

	sb_printf(b,
		"<!-- vhostd scsi controller %s (vhostd is the vhost-user %s). libvirt has no XML "
		"for "
		"vhost-user-scsi: this <qemu:commandline> goes in <domain> (libvirt moves the "
		"xmlns:qemu declaration to <domain>).\n     LUNs are vhostd's, not libvirt's "
		"(vhostctl lun add, on controller %s):",
		name, mode, name);
	json_array_foreach(json_object_get(config, "luns"), i, l) {
		if (strcmp(jstr(l, "controller", ""), name) != 0)
			continue;
		sb_printf(b, "%s %s at target %lld lun %lld (%s)", nluns ? "," : "",
			jstr(l, "name", ""), (long long)jint(l, "target", 0),
			(long long)jint(l, "lun", 0), jstr(l, "backend", ""));
		nluns++;
	}
	sb_printf(b, "%s.\n     On q35, if QEMU says the device's PCI slot is in use by a "
		     "pcie-root-port, add ,bus=pcie.0,addr=0x10 (a free slot) to the -device. -->\n",
		nluns ? "" : " none yet");
	sb_printf(b, "<qemu:commandline xmlns:qemu='%s'>\n", LVX_QEMU_NS);
	sb_printf(b, "  <qemu:arg value='-chardev'/>\n");
	sb_printf(b, "  <qemu:arg value='socket,id=chr-vhostd-%s,path=%s%s'/>\n",
		ename ? ename : "", esock ? esock : "",
		strcmp(mode, "client") == 0 ? ",server=on,wait=off" : "");
	sb_printf(b, "  <qemu:arg value='-device'/>\n");
	sb_printf(b,
		"  <qemu:arg value='vhost-user-scsi-pci,id=vhostd-%s,chardev=chr-vhostd-%s,"
		"num_queues=%lld",
		ename ? ename : "", ename ? ename : "", (long long)q);
	if (ms != 65535)
		sb_printf(b, ",max_sectors=%lld", (long long)ms);
	if (cpl != 128)
		sb_printf(b, ",cmd_per_lun=%lld", (long long)cpl);
	sb_printf(b, "'/>\n</qemu:commandline>\n");
	free(esock);
	free(ename);
}

/*
 * Names (ports, controllers, bridges, paths) go into XML comments as they
 * are, and "--" may not appear inside a comment ("run--vm1"): break every
 * pair inside a comment by turning its second '-' into '~' (in place: the
 * comments are for the reader; the elements are untouched).
 */
static void
comments_make_valid(char *s)
{
	char *c = s;

	while ((c = strstr(c, "<!--")) != NULL) {
		char *end, *p;

		c += 4;
		end = strstr(c, "-->");
		if (end == NULL)
			return;
		for (p = c; p + 1 < end; p++)
			if (p[0] == '-' && p[1] == '-')
				p[1] = '~';
		/* A comment must not end in "-" before "-->" either. */
		if (end > c && end[-1] == '-')
			end[-1] = '~';
		c = end + 3;
	}
}

char *
lvx_snippet(const json_t *config, const char *const *names, char *err, size_t errlen)
{
	struct sbuf b = {0};
	bool any_port = false;
	const json_t *o;
	json_t *ovs;

	if (names == NULL || names[0] == NULL) {
		snprintf(err, errlen, "name a port or a scsi controller");
		return NULL;
	}
	ovs = json_array();
	for (const char *const *n = names; *n != NULL; n++) {
		if ((o = find_obj(config, "ports", *n)) != NULL) {
			if (strcmp(jstr(o, "type", ""), "vhost-user") != 0) {
				snprintf(err, errlen,
					"port %s is a %s port, not vhost-user: no guest attaches "
					"to it",
					*n, jstr(o, "type", "?"));
				free(b.s);
				json_decref(ovs);
				return NULL;
			}
			gen_port(&b, o, ovs_att(config, *n));
			if (ovs_att(config, *n) != NULL)
				json_array_append(ovs, (json_t *)ovs_att(config, *n));
			any_port = true;
		} else if ((o = find_obj(config, "scsi", *n)) != NULL) {
			gen_scsi(&b, config, o);
		} else {
			snprintf(err, errlen,
				"no port or scsi controller named '%s' (vhostctl port list, "
				"vhostctl "
				"scsi list)",
				*n);
			free(b.s);
			json_decref(ovs);
			return NULL;
		}
	}
	if (json_array_size(ovs) > 0) {
		size_t i;
		json_t *a;

		sb_printf(&b,
			"<!-- OVS attachments (vhostd's libvirt hook attaches the ports to OVS "
			"when the domain starts): in <domain>, merged into its <metadata> -->\n"
			"<metadata>\n  <vhostd:ovs xmlns:vhostd='%s'>\n",
			LVX_VHOSTD_NS);
		json_array_foreach(ovs, i, a) {
			char *ep = xesc(jstr(a, "port", "")), *eb = xesc(jstr(a, "bridge", "")),
			     *eid = xesc(jstr(a, "iface-id", ""));

			sb_printf(&b, "    <vhostd:port name='%s' bridge='%s'", ep ? ep : "",
				eb ? eb : "");
			if (jstr(a, "iface-id", NULL) != NULL)
				sb_printf(&b, " interfaceid='%s'", eid ? eid : "");
			sb_printf(&b, "/>\n");
			free(ep);
			free(eb);
			free(eid);
		}
		sb_printf(&b, "  </vhostd:ovs>\n</metadata>\n");
	}
	json_decref(ovs);
	sb_printf(&b, "<!-- vhost-user needs shared guest memory: in <domain> (or add <access "
		      "mode='shared'/> to its <memoryBacking>) -->\n"
		      "<memoryBacking>\n"
		      "  <source type='memfd'/>\n"
		      "  <access mode='shared'/>\n"
		      "</memoryBacking>\n");
	if (any_port)
		sb_printf(&b,
			"<!-- Under TCG (no KVM), QEMU 7.2 crashes on vhost-user virtio-net with "
			"MSI-X: add vectors=0 with\n     <qemu:override><qemu:device "
			"alias='ua-NAME'>"
			"<qemu:frontend><qemu:property name='vectors' type='unsigned' value='0'/>"
			"</qemu:frontend></qemu:device></qemu:override>\n     or boot the guest "
			"with pci=nomsi. -->\n");
	if (b.oom) {
		free(b.s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	comments_make_valid(b.s);
	return b.s;
}
