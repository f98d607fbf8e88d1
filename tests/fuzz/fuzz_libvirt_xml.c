/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the libvirt XML reader (ctl/libvirt_xml.c): the
 * input is a domain XML or a fragment, as "vhostctl libvirt import" and the
 * libvirt hook hand it to lvx_parse(). Besides the sanitizers it checks that:
 *  - lvx_parse() returns 0, -ENOENT or -EINVAL; on success err is empty and
 *    every object is a JSON object with a non-empty string "name" and
 *    "socket"; on failure err is a non-empty message and the result is
 *    empty;
 *  - what it found prints back (lvx_snippet()) into XML that parses again
 *    into objects with the same members (name, socket, mode, queues, mac,
 *    mtu, csum, mrg-rxbuf; max-sectors and cmd-per-lun for scsi).
 * Run: cp -r tests/fuzz/corpus/libvirt_xml /tmp/c-lvx &&
 *   build-fuzz/tests/unit/fuzz_libvirt_xml -dict=tests/fuzz/libvirt_xml.dict \
 *     -max_len=8192 -max_total_time=60 /tmp/c-lvx
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libxml/parser.h>

#include "fuzz_util.h"
#include "libvirt_xml.h"

#define ERR_LEN 2048

static const char *const port_keys[] = {
	"name", "socket", "mode", "queues", "mac", "mtu", "csum", "mrg-rxbuf", NULL};
static const char *const scsi_keys[] = {
	"name", "socket", "mode", "queues", "max-sectors", "cmd-per-lun", NULL};


/* Not checked for UTF-8: libxml2 quotes the input's bytes, and vhostctl
 * prints the message as it is (it never goes into JSON). */
static void
check_err(const char *err)
{
	/* Many problems may fill the buffer: truncated, still terminated. */
	check(err[0] != '\0' && memchr(err, '\0', ERR_LEN) != NULL);
}

static void
check_objects(const json_t *a)
{
	size_t i;
	json_t *o;

	check(json_is_array(a));
	json_array_foreach(a, i, o) {
		check(json_is_object(o));
		check(json_is_string(json_object_get(o, "name")) &&
			json_string_length(json_object_get(o, "name")) > 0);
		check(json_is_string(json_object_get(o, "socket")) &&
			json_string_length(json_object_get(o, "socket")) > 0);
	}
}

/* Members @keys of @a and @b equal, a missing one taking its default. */
static void
check_same(const json_t *a, const json_t *b, const char *const *keys)
{
	static json_t *def;

	if (def == NULL)
		def = json_loads("{\"queues\": 1, \"mtu\": 1500, \"csum\": true, \"mrg-rxbuf\": "
				 "true, \"max-sectors\": 65535, \"cmd-per-lun\": 128}",
			0, NULL);
	for (const char *const *k = keys; *k != NULL; k++) {
		const json_t *x = json_object_get(a, *k), *y = json_object_get(b, *k);

		if (x == NULL)
			x = json_object_get(def, *k);
		if (y == NULL)
			y = json_object_get(def, *k);
		if (x == NULL && y == NULL)
			continue;
		check(x != NULL && y != NULL && json_equal((json_t *)x, (json_t *)y));
	}
}

static const json_t *
by_name(const json_t *a, const char *name)
{
	size_t i;
	json_t *o;

	json_array_foreach(a, i, o)
		if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
			return o;
	return NULL;
}

/* Print the objects back as a snippet and parse that again. */
static void
round_trip(const struct lvx_result *r)
{
	size_t np = json_array_size(r->ports), ns = json_array_size(r->scsi), i, n = 0;
	const char **names = calloc(np + ns + 1, sizeof(*names));
	struct lvx_result back;
	char err[ERR_LEN];
	json_t *config, *o;
	char *xml;

	check(names != NULL);
	json_array_foreach(r->ports, i, o)
		names[n++] = json_string_value(json_object_get(o, "name"));
	json_array_foreach(r->scsi, i, o)
		names[n++] = json_string_value(json_object_get(o, "name"));
	/*
	 * Two objects of one name: the snippet would show only the first.
	 * (Names with "--", corpus/libvirt_xml/name_with_dashes.xml, once broke
	 * the snippet's comments: lvx_snippet() now keeps them valid.)
	 */
	for (i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0)
				goto out;
	config = json_pack("{sOsO}", "ports", r->ports, "scsi", r->scsi);
	check(config != NULL);
	xml = lvx_snippet(config, names, err, sizeof(err));
	if (xml == NULL) {
		check_err(err);
	} else {
		if (lvx_parse(xml, strlen(xml), &back, err, sizeof(err)) != 0)
			abort(); /* our own snippet does not parse back */
		check(json_array_size(back.ports) == np && json_array_size(back.scsi) == ns);
		json_array_foreach(r->ports, i, o)
			check_same(o, by_name(back.ports, names[i]), port_keys);
		json_array_foreach(r->scsi, i, o)
			check_same(o, by_name(back.scsi, names[np + i]), scsi_keys);
		lvx_result_free(&back);
		free(xml);
	}
	json_decref(config);
out:
	free(names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lvx_result r;
	char err[ERR_LEN];
	int rc;

	rc = lvx_parse((const char *)data, size, &r, err, sizeof(err));
	check(rc == 0 || rc == -ENOENT || rc == -EINVAL);
	if (rc != 0) {
		check_err(err);
		check(r.ports == NULL && r.scsi == NULL && r.notes == NULL);
		return 0;
	}
	check(err[0] == '\0');
	check_objects(r.ports);
	check_objects(r.scsi);
	check(json_is_array(r.notes));
	check(json_array_size(r.ports) + json_array_size(r.scsi) > 0);
	round_trip(&r);
	lvx_result_free(&r);
	return 0;
}
