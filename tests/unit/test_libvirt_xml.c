/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of ctl/libvirt_xml.c: libvirt XML -> vhostd objects (the
 * examples of configs/libvirt/ accepted or rejected with the right
 * message, every error naming the element and the fix), and the snippets
 * of lvx_snippet() parsing back into the same objects.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "libvirt_xml.h"

#ifndef LIBVIRT_EXAMPLES
#define LIBVIRT_EXAMPLES "configs/libvirt"
#endif

static char err[16384];

static int
parse(const char *xml, struct lvx_result *res)
{
	int rc = lvx_parse(xml, strlen(xml), res, err, sizeof(err));

	if (rc == 0)
		assert_string_equal(err, "");
	return rc;
}

static char *
load(const char *name)
{
	char path[512], *buf;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", LIBVIRT_EXAMPLES, name);
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static int
parse_file(const char *name, struct lvx_result *res)
{
	char *xml = load(name);
	int rc = parse(xml, res);

	free(xml);
	return rc;
}

static void
assert_err_has(const char *needle)
{
	if (strstr(err, needle) == NULL)
		fail_msg("error lacks \"%s\":\n%s", needle, err);
}

static const char *
s(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : "(none)";
}

static json_int_t
i(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* ---- the examples -------------------------------------------------------------- */

static void
example_vhostuser_net(void **state)
{
	struct lvx_result r;
	json_t *p;

	assert_int_equal(parse_file("vhostuser-net.xml", &r), 0);
	assert_string_equal(r.domain, "vm0");
	assert_int_equal(json_array_size(r.ports), 1);
	assert_int_equal(json_array_size(r.scsi), 0);
	p = json_array_get(r.ports, 0);
	assert_string_equal(s(p, "name"), "vm0");
	assert_string_equal(s(p, "type"), "vhost-user");
	assert_string_equal(s(p, "socket"), "/run/vhostd/vm0.sock");
	assert_string_equal(s(p, "mode"), "server"); /* QEMU client -> vhostd server */
	assert_int_equal(i(p, "queues"), 2);
	assert_string_equal(s(p, "mac"), "52:54:00:12:34:01");
	assert_int_equal(i(p, "mtu"), 9000);
	assert_int_equal(json_array_size(r.notes), 0);
	lvx_result_free(&r);
}

static void
example_vhostuser_mq(void **state)
{
	struct lvx_result r;
	json_t *p;

	assert_int_equal(parse_file("vhostuser-mq.xml", &r), 0);
	assert_string_equal(r.domain, "");
	p = json_array_get(r.ports, 0);
	assert_string_equal(s(p, "name"), "vm1");
	assert_string_equal(s(p, "mode"), "client"); /* QEMU server -> vhostd client */
	assert_int_equal(i(p, "queues"), 4);
	lvx_result_free(&r);
}

static void
example_bad_queue(void **state)
{
	struct lvx_result r;

	assert_int_equal(parse_file("bad-queue.xml", &r), -EINVAL);
	assert_err_has("line 6: <driver queue='4'>: unknown attribute 'queue'");
	assert_err_has("queues='4'");
	assert_null(r.ports);
}

static void
example_ovs_bridge(void **state)
{
	struct lvx_result r;

	assert_int_equal(parse_file("ovs-bridge.xml", &r), -EINVAL);
	assert_err_has("<interface type='bridge'> is not vhost-user");
	assert_err_has("OVS bridge 'br0'");
	assert_err_has("OVS integration");
	assert_err_has("<interface type='vhostuser'>");
}

static void
example_virtio_scsi(void **state)
{
	struct lvx_result r;

	assert_int_equal(parse_file("virtio-scsi-disks.xml", &r), -EINVAL);
	assert_err_has("<controller type='scsi' model='virtio-scsi'>: libvirt's virtio-scsi "
		       "controller is QEMU's own virtio-scsi, not vhost-user");
	assert_err_has("vhostctl libvirt xml NAME");
	/* Each disk: its drive address -> the LUN address. */
	assert_err_has("<disk> sda at <address type='drive' controller='0' target='0' unit='0'>");
	assert_err_has("vhostctl lun add sdb --controller NAME --target 1 --lun 0 --backend file "
		       "--path /var/lib/libvirt/images/data1.img");
}

static void
example_vhost_user_scsi(void **state)
{
	struct lvx_result r;
	json_t *c;

	assert_int_equal(parse_file("vhost-user-scsi.xml", &r), 0);
	assert_int_equal(json_array_size(r.scsi), 1);
	assert_int_equal(json_array_size(r.ports), 0);
	c = json_array_get(r.scsi, 0);
	assert_string_equal(s(c, "name"), "scsi0");
	assert_string_equal(s(c, "socket"), "/run/vhostd/scsi0.sock");
	assert_string_equal(s(c, "mode"), "server");
	assert_int_equal(i(c, "queues"), 2);
	lvx_result_free(&r);
}

static void
example_no_shared_memory(void **state)
{
	struct lvx_result r;

	assert_int_equal(parse_file("no-shared-memory.xml", &r), -EINVAL);
	assert_err_has("<memoryBacking> has no <access mode='shared'/>");
	assert_err_has("put <access mode='shared'/> in it");
}

/* ---- more errors ----------------------------------------------------------------- */

#define DOM_HEAD                                                                                   \
	"<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"             \
	"<name>t</name>"
#define SHARED "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"

static void
missing_memory_backing(void **state)
{
	struct lvx_result r;

	assert_int_equal(parse(DOM_HEAD "<devices><interface type='vhostuser'><source type='unix' "
					"path='/x/a.sock' mode='client'/></interface></devices>"
					"</domain>",
				 &r),
		-EINVAL);
	assert_err_has("domain 't' has no <memoryBacking>");
	assert_err_has("<access mode='shared'/>");
	/* Shared NUMA cells are shared memory too. */
	assert_int_equal(parse(DOM_HEAD "<cpu><numa><cell id='0' cpus='0' memory='1' unit='GiB' "
					"memAccess='shared'/></numa></cpu><devices><interface "
					"type='vhostuser'><source type='unix' path='/x/a.sock' "
					"mode='client'/></interface></devices></domain>",
				 &r),
		0);
	lvx_result_free(&r);
}

static void
interface_errors(void **state)
{
	struct lvx_result r;

	assert_int_equal(
		parse("<interface type='vhostuser'><model type='virtio'/></interface>", &r),
		-EINVAL);
	assert_err_has("has no <source>: add <source type='unix'");

	assert_int_equal(parse("<interface type='vhostuser'>\n<source type='unix' path='/x/a.sock' "
			       "mode='listen'/>\n</interface>",
				 &r),
		-EINVAL);
	assert_err_has("line 2: <source mode='listen'>: use mode='client'");

	assert_int_equal(parse("<interface type='vhostuser'><source type='unix' path='a.sock' "
			       "mode='client'/></interface>",
				 &r),
		-EINVAL);
	assert_err_has("<source path='a.sock'>: give the absolute path");

	/* Several problems at once, each on its own line. */
	assert_int_equal(parse("<interface type='vhostuser'>\n<mac address='01:00:5e:00:00:01'/>\n"
			       "<source type='unix' path='/x/a.sock' mode='client'/>\n<model "
			       "type='e1000'/>\n<driver queues='32'/>\n<mtu size='20000'/>\n"
			       "<virtualport type='802.1Qbh'/>\n</interface>",
				 &r),
		-EINVAL);
	assert_err_has("line 2: <mac address='01:00:5e:00:00:01'>: use a unicast MAC");
	assert_err_has("line 4: <model type='e1000'>: vhost-user is virtio-net");
	assert_err_has("line 5: <driver queues='32'>: vhostd serves 1-16 queue pairs");
	assert_err_has("line 6: <mtu size='20000'>");
	assert_err_has("line 7: <virtualport type='802.1Qbh'>");

	assert_int_equal(parse("<interface type='vhostuser'><source type='unix' path='/x/a.sock' "
			       "mode='client'/><driver txmode='iothread' foo='1'/></interface>",
				 &r),
		-EINVAL);
	assert_err_has("<driver foo='1'>: unknown attribute 'foo'");

	/* A name that vhostd would refuse: the fix is an alias. */
	assert_int_equal(parse("<interface type='vhostuser'><source type='unix' path='/x/a b.sock' "
			       "mode='client'/></interface>",
				 &r),
		-EINVAL);
	assert_err_has("port name 'a b' is not valid");
	assert_err_has("<alias name='ua-NAME'/>");

	assert_int_equal(parse("<devices><interface type='vhostuser'><source type='unix' "
			       "path='/x/a.sock' mode='client'/></interface><interface "
			       "type='vhostuser'><source type='unix' path='/y/a.sock' "
			       "mode='client'/></interface></devices>",
				 &r),
		-EINVAL);
	assert_err_has("two interfaces map to port name 'a'");
}

/* Member @key of the "ovs" entry @i, or NULL. */
static const char *
ovs_str(const struct lvx_result *r, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(r->ovs, i), key));
}

static void
openvswitch_virtualport(void **state)
{
	struct lvx_result r;

	assert_int_equal(parse("<interface type='vhostuser'><source type='unix' path='/x/a.sock' "
			       "mode='server'/><virtualport type='openvswitch'><parameters "
			       "interfaceid='abc'/></virtualport></interface>",
				 &r),
		0);
	assert_int_equal(json_array_size(r.ports), 1);
	assert_int_equal(json_array_size(r.notes), 0);
	assert_int_equal(json_array_size(r.ovs), 1);
	assert_string_equal(ovs_str(&r, 0, "port"), "a");
	assert_string_equal(ovs_str(&r, 0, "iface-id"), "abc");
	assert_null(ovs_str(&r, 0, "bridge"));
	assert_null(ovs_str(&r, 0, "vm-uuid"));
	lvx_result_free(&r);

	/* Without parameters: an attachment without iface-id. */
	assert_int_equal(parse("<interface type='vhostuser'><source type='unix' path='/x/a.sock' "
			       "mode='server'/><virtualport type='openvswitch'/></interface>",
				 &r),
		0);
	assert_int_equal(json_array_size(r.ovs), 1);
	assert_null(ovs_str(&r, 0, "iface-id"));
	lvx_result_free(&r);

	assert_int_equal(parse("<interface type='vhostuser'><source type='unix' path='/x/a.sock' "
			       "mode='server'/><virtualport type='openvswitch'><parameters "
			       "interfaceid='a b'/></virtualport></interface>",
				 &r),
		-EINVAL);
	assert_err_has("<parameters interfaceid='a b'>");
}

#define OVS_DOM                                                                                    \
	DOM_HEAD "<uuid>0b8c6a0e-8f2a-4b6b-9c1c-3f0d5a9e7b11</uuid>" SHARED                        \
		 "<devices><interface type='vhostuser'><mac address='52:54:00:12:34:61'/>"         \
		 "<source type='unix' path='/x/vm0.sock' mode='client'/></interface>"              \
		 "<interface type='vhostuser'><source type='unix' path='/x/vm1.sock' "             \
		 "mode='client'/></interface></devices>"

static void
ovs_metadata(void **state)
{
	struct lvx_result r;

	/* By MAC (any case) and by port name; the element's bridge is the default. */
	assert_int_equal(
		parse(OVS_DOM "<metadata><vhostd:ovs xmlns:vhostd='" LVX_VHOSTD_NS "' bridge='br-int'>"
			      "<vhostd:port mac='52:54:00:12:34:61' "
			      "interfaceid='7f1c0000-0000-4000-8000-000000000001'/>"
			      "<vhostd:port name='vm1' bridge='br-ex'/>"
			      "</vhostd:ovs><other xmlns='urn:x'/></metadata></domain>",
			&r),
		0);
	assert_string_equal(r.uuid, "0b8c6a0e-8f2a-4b6b-9c1c-3f0d5a9e7b11");
	assert_int_equal(json_array_size(r.ovs), 2);
	assert_string_equal(ovs_str(&r, 0, "port"), "vm0");
	assert_string_equal(ovs_str(&r, 0, "bridge"), "br-int");
	assert_string_equal(ovs_str(&r, 0, "iface-id"), "7f1c0000-0000-4000-8000-000000000001");
	assert_string_equal(ovs_str(&r, 0, "vm-uuid"), "0b8c6a0e-8f2a-4b6b-9c1c-3f0d5a9e7b11");
	assert_string_equal(ovs_str(&r, 1, "port"), "vm1");
	assert_string_equal(ovs_str(&r, 1, "bridge"), "br-ex");
	assert_null(ovs_str(&r, 1, "iface-id"));
	lvx_result_free(&r);

	/* A port nobody has, both or neither of mac/name, a foreign child. */
	assert_int_equal(parse(OVS_DOM "<metadata><vhostd:ovs xmlns:vhostd='" LVX_VHOSTD_NS "'>"
				       "<vhostd:port mac='52:54:00:00:00:99'/>"
				       "<vhostd:port mac='52:54:00:12:34:61' name='vm0'/>"
				       "<vhostd:bridge/></vhostd:ovs></metadata></domain>",
				 &r),
		-EINVAL);
	assert_err_has("<vhostd:port mac='52:54:00:00:00:99'>: no <interface type='vhostuser'> "
		       "has that MAC address");
	assert_err_has("name the interface with mac='MAC'");
	assert_err_has("only <vhostd:port> elements go there");
	/* Another namespace with the same element name is not ours. */
	assert_int_equal(parse(OVS_DOM "<metadata><x:ovs xmlns:x='urn:other'><x:port "
				       "name='nope'/></x:ovs></metadata></domain>",
				 &r),
		0);
	assert_int_equal(json_array_size(r.ovs), 0);
	lvx_result_free(&r);
}

static void
malformed(void **state)
{
	struct lvx_result r;

	assert_int_equal(parse("<interface type='vhostuser'>\n<source", &r), -EINVAL);
	assert_err_has("malformed XML: line 2");
	assert_int_equal(parse("", &r), -EINVAL);
}

static void
vhostuser_disk(void **state)
{
	struct lvx_result r;

	assert_int_equal(parse("<disk type='vhostuser' device='disk'><source type='unix' "
			       "path='/x/blk.sock'/><target dev='vda' bus='virtio'/></disk>",
				 &r),
		-EINVAL);
	assert_err_has("vhostd does not serve vhost-user-blk");
	/* In a domain with other vhostd devices it is only a note. */
	assert_int_equal(
		parse(DOM_HEAD SHARED "<devices><disk type='vhostuser' device='disk'>"
				      "<source type='unix' path='/x/blk.sock'/><target "
				      "dev='vda' bus='virtio'/></disk><interface "
				      "type='vhostuser'><source type='unix' path='/x/a.sock' "
				      "mode='client'/></interface></devices></domain>",
			&r),
		0);
	assert_int_equal(json_array_size(r.notes), 1);
	lvx_result_free(&r);
}

static void
nothing_for_vhostd(void **state)
{
	struct lvx_result r;

	assert_int_equal(parse(DOM_HEAD "<devices><interface type='network'><source "
					"network='default'/></interface></devices></domain>",
				 &r),
		-ENOENT);
	assert_err_has("nothing for vhostd in this XML");
	assert_err_has("<interface type='network'> is not vhost-user: left to libvirt");
}

static void
commandline(void **state)
{
	struct lvx_result r;
	json_t *c;

	/* Fragment, qemu prefix unbound, an XML declaration: still parsed. */
	assert_int_equal(parse("<?xml version='1.0'?>\n<qemu:commandline>"
			       "<qemu:arg value='-chardev'/><qemu:arg value='socket,id=c9,path=/x/"
			       "s9.sock,server=on,wait=off'/><qemu:arg value='-device'/><qemu:arg "
			       "value='vhost-user-scsi-pci,chardev=c9,num_queues=4,max_sectors=256,"
			       "cmd_per_lun=32'/></qemu:commandline>",
				 &r),
		0);
	c = json_array_get(r.scsi, 0);
	assert_string_equal(s(c, "name"), "s9");
	assert_string_equal(s(c, "mode"), "client"); /* QEMU server -> vhostd client */
	assert_int_equal(i(c, "queues"), 4);
	assert_int_equal(i(c, "max-sectors"), 256);
	assert_int_equal(i(c, "cmd-per-lun"), 32);
	lvx_result_free(&r);

	assert_int_equal(parse("<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/"
			       "qemu/1.0'><qemu:arg value='-device'/><qemu:arg value='vhost-user-"
			       "scsi-pci,chardev=nope'/></qemu:commandline>",
				 &r),
		-EINVAL);
	assert_err_has("no -chardev with id=nope");
	assert_int_equal(parse("<qemu:commandline><qemu:arg value='-chardev'/><qemu:arg "
			       "value='socket,id=c1,path=/x/s.sock'/><qemu:arg value='-device'/>"
			       "<qemu:arg value='vhost-user-scsi-pci,chardev=c1,num_queues=0'/>"
			       "</qemu:commandline>",
				 &r),
		-EINVAL);
	assert_err_has("num_queues=0: vhostd serves 1-16 request queues");
}

/* ---- round trip ------------------------------------------------------------------ */

static const char round_config[] =
	"{\"ports\": ["
	" {\"name\": \"vm0\", \"type\": \"vhost-user\", \"socket\": \"/run/vhostd/vm0.sock\","
	"  \"mode\": \"server\", \"queues\": 2, \"bridge\": \"br0\", \"mac\": "
	"  \"52:54:00:12:34:01\", \"mtu\": 9000, \"csum\": true, \"mrg-rxbuf\": true},"
	" {\"name\": \"vm1\", \"type\": \"vhost-user\", \"socket\": \"/tmp/q/other.sock\","
	"  \"mode\": \"client\", \"queues\": 1, \"mtu\": 1500, \"csum\": false, \"mrg-rxbuf\": "
	"false},"
	" {\"name\": \"sink0\", \"type\": \"sink\"}],"
	" \"scsi\": ["
	" {\"name\": \"scsi0\", \"socket\": \"/run/vhostd/scsi0.sock\", \"mode\": \"server\","
	"  \"queues\": 2, \"max-sectors\": 65535, \"cmd-per-lun\": 128},"
	" {\"name\": \"scsi1\", \"socket\": \"/run/vhostd/x&y.sock\", \"mode\": \"client\","
	"  \"queues\": 1, \"max-sectors\": 128, \"cmd-per-lun\": 16}],"
	" \"luns\": [{\"name\": \"disk0\", \"controller\": \"scsi0\", \"target\": 0, \"lun\": 1,"
	"  \"backend\": \"ram\"}]}";

static const char *const port_keys[] = {
	"name", "type", "socket", "mode", "queues", "mac", "mtu", "csum", "mrg-rxbuf", NULL};
static const char *const scsi_keys[] = {
	"name", "socket", "mode", "queues", "max-sectors", "cmd-per-lun", NULL};

/* Members of @want (defaults filled in) equal those of @got. */
static void
assert_same(const json_t *want, const json_t *got, const char *const *keys)
{
	static const char *const defaults =
		"{\"queues\": 1, \"mtu\": 1500, \"csum\": true, \"mrg-rxbuf\": true, "
		"\"max-sectors\": 65535, \"cmd-per-lun\": 128}";
	json_t *def = json_loads(defaults, 0, NULL);

	for (const char *const *k = keys; *k != NULL; k++) {
		const json_t *w = json_object_get(want, *k), *g = json_object_get(got, *k);

		if (g == NULL)
			g = json_object_get(def, *k);
		if (w == NULL)
			w = json_object_get(def, *k);
		if (w == NULL && g == NULL)
			continue;
		if (!json_equal((json_t *)w, (json_t *)g)) {
			char *ws = json_dumps(want, 0), *gs = json_dumps(got, 0);

			fail_msg("member %s differs:\nwant %s\ngot  %s", *k, ws, gs);
		}
	}
	json_decref(def);
}

static void
round_trip(void **state)
{
	const char *names[] = {"vm0", "vm1", "scsi0", "scsi1", NULL};
	json_t *config = json_loads(round_config, 0, NULL);
	struct lvx_result r;
	char *xml;

	assert_non_null(config);
	xml = lvx_snippet(config, names, err, sizeof(err));
	if (xml == NULL)
		fail_msg("lvx_snippet: %s", err);
	assert_non_null(strstr(xml, "<memoryBacking>"));
	assert_non_null(strstr(xml, "<access mode='shared'/>"));
	assert_non_null(strstr(xml, "disk0 at target 0 lun 1 (ram)"));
	assert_non_null(strstr(xml, "vectors"));
	if (parse(xml, &r) != 0)
		fail_msg("%s\ndoes not parse back: %s", xml, err);
	assert_int_equal(json_array_size(r.ports), 2);
	assert_int_equal(json_array_size(r.scsi), 2);
	assert_same(json_array_get(json_object_get(config, "ports"), 0), json_array_get(r.ports, 0),
		port_keys);
	assert_same(json_array_get(json_object_get(config, "ports"), 1), json_array_get(r.ports, 1),
		port_keys);
	assert_same(json_array_get(json_object_get(config, "scsi"), 0), json_array_get(r.scsi, 0),
		scsi_keys);
	assert_same(json_array_get(json_object_get(config, "scsi"), 1), json_array_get(r.scsi, 1),
		scsi_keys);
	lvx_result_free(&r);
	free(xml);

	/* Each object on its own, too. */
	for (int k = 0; names[k] != NULL; k++) {
		const char *one[] = {names[k], NULL};

		xml = lvx_snippet(config, one, err, sizeof(err));
		assert_non_null(xml);
		if (parse(xml, &r) != 0)
			fail_msg("%s\ndoes not parse back: %s", xml, err);
		assert_int_equal(json_array_size(r.ports) + json_array_size(r.scsi), 1);
		lvx_result_free(&r);
		free(xml);
	}
	json_decref(config);
}

static void
snippet_errors(void **state)
{
	const char *sink[] = {"sink0", NULL}, *none[] = {"nope", NULL};
	json_t *config = json_loads(round_config, 0, NULL);

	assert_null(lvx_snippet(config, sink, err, sizeof(err)));
	assert_err_has("port sink0 is a sink port, not vhost-user");
	assert_null(lvx_snippet(config, none, err, sizeof(err)));
	assert_err_has("no port or scsi controller named 'nope'");
	json_decref(config);
}

static void
ovs_snippet(void **state)
{
	const char *names[] = {"vm0", "vm1", NULL};
	json_t *config = json_loads(round_config, 0, NULL);
	struct lvx_result r;
	char *xml;

	assert_non_null(config);
	json_object_set_new(config, "ovs",
		json_pack("{s:s, s:[{s:s, s:s, s:s, s:s}]}", "db", "unix:/x/db.sock", "attach",
			"port", "vm1", "bridge", "br-int", "iface-id", "7f1c-01", "vm-uuid",
			"0b8c-02"));
	xml = lvx_snippet(config, names, err, sizeof(err));
	if (xml == NULL)
		fail_msg("lvx_snippet: %s", err);
	assert_non_null(strstr(xml, "<virtualport type='openvswitch'>\n    <parameters "
				    "interfaceid='7f1c-01'/>"));
	assert_non_null(strstr(xml, "<vhostd:port name='vm1' bridge='br-int' "
				    "interfaceid='7f1c-01'/>"));
	if (parse(xml, &r) != 0)
		fail_msg("%s\ndoes not parse back: %s", xml, err);
	assert_int_equal(json_array_size(r.ports), 2);
	assert_int_equal(json_array_size(r.ovs), 1);
	assert_string_equal(ovs_str(&r, 0, "port"), "vm1");
	assert_string_equal(ovs_str(&r, 0, "bridge"), "br-int");
	assert_string_equal(ovs_str(&r, 0, "iface-id"), "7f1c-01");
	lvx_result_free(&r);
	free(xml);
	json_decref(config);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(example_vhostuser_net),
		cmocka_unit_test(example_vhostuser_mq),
		cmocka_unit_test(example_bad_queue),
		cmocka_unit_test(example_ovs_bridge),
		cmocka_unit_test(example_virtio_scsi),
		cmocka_unit_test(example_vhost_user_scsi),
		cmocka_unit_test(example_no_shared_memory),
		cmocka_unit_test(missing_memory_backing),
		cmocka_unit_test(interface_errors),
		cmocka_unit_test(openvswitch_virtualport),
		cmocka_unit_test(ovs_metadata),
		cmocka_unit_test(ovs_snippet),
		cmocka_unit_test(malformed),
		cmocka_unit_test(vhostuser_disk),
		cmocka_unit_test(nothing_for_vhostd),
		cmocka_unit_test(commandline),
		cmocka_unit_test(round_trip),
		cmocka_unit_test(snippet_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
