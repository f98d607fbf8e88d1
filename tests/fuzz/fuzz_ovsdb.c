/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the OVSDB client's parsers (ovs-plugin/ovsdb.c):
 * the input is a stream of server messages, framed by ovsdb_scan_message();
 * every update2-shaped message is applied to a replica that starts from a
 * valid snapshot, and every reply's result is checked as a transaction
 * result. Nothing may crash, leak or read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "ovsdb.h"

#define U1 "11111111-1111-1111-1111-111111111111"
#define U2 "22222222-2222-2222-2222-222222222222"
#define U3 "33333333-3333-3333-3333-333333333333"

static const char snapshot[] =
	"{\"Open_vSwitch\": {\"" U1
	"\": {\"initial\": {\"next_cfg\": 1, \"bridges\": [\"uuid\", \"" U2 "\"]}}},"
	" \"Bridge\": {\"" U2 "\": {\"initial\": {\"name\": \"br0\", \"ports\": [\"uuid\", \"" U3
	"\"]}}},"
	" \"Port\": {\"" U3 "\": {\"initial\": {\"name\": \"p\", \"tag\": 1, \"external_ids\": "
			    "[\"map\", [[\"a\", \"b\"]]]}}}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	json_t *replica = json_object(), *snap;
	char err[256];
	size_t off = 0;
	long n;

	for (size_t t = 0; t < ovsdb_vswitch_n_tables; t++)
		json_object_set_new(replica, ovsdb_vswitch_tables[t].name, json_object());
	snap = json_loads(snapshot, 0, NULL);
	ovsdb_apply_update2(
		replica, ovsdb_vswitch_tables, ovsdb_vswitch_n_tables, snap, err, sizeof(err));
	json_decref(snap);
	while (off < size && (n = ovsdb_scan_message(buf + off, size - off, 1 << 20)) > 0) {
		json_t *msg = json_loadb(buf + off, (size_t)n,
			JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, NULL);
		json_t *params = json_object_get(msg, "params");

		off += (size_t)n;
		if (msg == NULL)
			break;
		if (json_is_array(params) && json_array_size(params) == 2)
			ovsdb_apply_update2(replica, ovsdb_vswitch_tables, ovsdb_vswitch_n_tables,
				json_array_get(params, 1), err, sizeof(err));
		if (json_object_get(msg, "result") != NULL)
			ovsdb_check_txn_result(json_object_get(msg, "result"),
				json_array_size(json_object_get(msg, "result")) / 2, err,
				sizeof(err));
		/* the accessors on whatever rows are there */
		{
			const char *tn, *uuid;
			json_t *rows, *row;

			json_object_foreach(replica, tn, rows)
				json_object_foreach(rows, uuid, row) {
					(void)ovsdb_row_string(row, "name");
					(void)ovsdb_row_integer(row, "tag");
					(void)ovsdb_row_map_string(row, "external_ids", "a");
					(void)ovsdb_row_set_has(row, "ports", U3);
				}
		}
		json_decref(msg);
	}
	json_decref(replica);
	return 0;
}
