/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small OVSDB client (RFC 7047 JSON-RPC on a unix stream socket) for the
 * daemon's main loop: non-blocking, driven by one stable descriptor
 * (ovsdb_fd(), an internal epoll instance holding the socket and a timer)
 * and ovsdb_process(). It keeps a replica of the monitored columns
 * (monitor_cond + update2), answers echo requests, sends transactions with
 * request ids and reconnects with exponential backoff (1 s to 8 s).
 *
 * Everything the server sends is untrusted: messages are framed by a
 * scanner with a size limit, and every member of a reply or update is
 * type-checked against the monitored columns; a malformed message drops the
 * connection (the replica is rebuilt from the next snapshot).
 *
 * The replica holds rows in a normalized form: scalar columns as the JSON
 * value (string, integer, boolean), sets (uuid sets, optional values) as
 * JSON arrays of atoms (uuids as their strings), maps as JSON objects.
 */
#ifndef VHOSTD_OVSDB_H
#define VHOSTD_OVSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define OVSDB_MAX_MESSAGE (64u << 20) /* largest message accepted */
#define OVSDB_BACKOFF_MIN_MS 1000
#define OVSDB_BACKOFF_MAX_MS 8000
#define OVSDB_PROBE_MS 15000 /* send an echo after this much silence */
#define OVSDB_TICK_MS 200    /* period of the internal timer */

enum ovsdb_kind {
	OVSDB_STRING,      /* string, exactly one */
	OVSDB_INTEGER,     /* integer, exactly one */
	OVSDB_BOOLEAN,     /* boolean, exactly one */
	OVSDB_UUID_SET,    /* set of uuids, any size */
	OVSDB_OPT_INTEGER, /* integer, 0 or 1 */
	OVSDB_OPT_STRING,  /* string, 0 or 1 */
	OVSDB_MAP_SS,      /* map string -> string */
	OVSDB_MAP_SI,      /* map string -> integer */
};

struct ovsdb_column {
	const char *name;
	enum ovsdb_kind kind;
};

struct ovsdb_table {
	const char *name;
	const struct ovsdb_column *columns;
	size_t n_columns;
};

/* The tables and columns vhostd monitors in Open_vSwitch. */
extern const struct ovsdb_table ovsdb_vswitch_tables[];
extern const size_t ovsdb_vswitch_n_tables;

struct ovsdb;

/*
 * Reply to a request: @result is the "result" member (borrowed) on success,
 * NULL on failure with @error set (a server error, a failed operation of a
 * transaction, or the connection lost before the reply).
 */
typedef void (*ovsdb_reply_fn)(struct ovsdb *db, json_t *result, const char *error, void *arg);

struct ovsdb_callbacks {
	/* The initial snapshot is in the replica: (re)synchronize. */
	void (*connected)(struct ovsdb *db, void *arg);
	/* The connection dropped; the replica is empty until the next connected(). */
	void (*disconnected)(struct ovsdb *db, const char *why, void *arg);
	/* An update2 was applied to the replica. */
	void (*updated)(struct ovsdb *db, void *arg);
	/* Called on every internal timer tick (OVSDB_TICK_MS), connected or not. */
	void (*tick)(struct ovsdb *db, uint64_t now_ms, void *arg);
};

/*
 * A client for @remote ("unix:/path"). It does not connect before
 * ovsdb_enable(). Returns 0 or a negative errno (-EINVAL: bad remote,
 * with a message in @err).
 */
int ovsdb_create(struct ovsdb **out, const char *remote, const struct ovsdb_callbacks *cb,
	void *arg, char *err, size_t errlen);
void ovsdb_destroy(struct ovsdb *db);
/* Check a remote's syntax ("unix:/absolute/path"). */
int ovsdb_remote_check(const char *remote, char *err, size_t errlen);
/* Change the remote (reconnects if enabled). */
int ovsdb_set_remote(struct ovsdb *db, const char *remote, char *err, size_t errlen);
const char *ovsdb_remote(const struct ovsdb *db);

/* Start connecting (immediately) and keep reconnecting. */
void ovsdb_enable(struct ovsdb *db);
bool ovsdb_enabled(const struct ovsdb *db);

/* The descriptor the main loop polls for readability. Stable for the life of @db. */
int ovsdb_fd(const struct ovsdb *db);
/* Do the pending work without blocking. */
void ovsdb_process(struct ovsdb *db);

/* True once the monitor snapshot is in the replica. */
bool ovsdb_connected(const struct ovsdb *db);
/* "disabled", "backoff", "connecting", "connected". */
const char *ovsdb_state(const struct ovsdb *db);
/* The last connection error ("" when none). */
const char *ovsdb_last_error(const struct ovsdb *db);
/* Milliseconds until the next connection attempt (backoff), 0 otherwise. */
uint64_t ovsdb_backoff_left_ms(const struct ovsdb *db);
uint64_t ovsdb_reconnects(const struct ovsdb *db);

/*
 * Send a transaction on Open_vSwitch: @ops is an array of operations
 * (stolen). A reply whose operations failed is reported through @fn as an
 * error naming the first failure. Returns 0, or -ENOTCONN (@fn not called).
 */
int ovsdb_transact(struct ovsdb *db, json_t *ops, ovsdb_reply_fn fn, void *arg);

/* The replica: object uuid -> row of @table, or NULL when not monitored. */
json_t *ovsdb_rows(const struct ovsdb *db, const char *table);
json_t *ovsdb_row(const struct ovsdb *db, const char *table, const char *uuid);

/* Monotonic milliseconds. */
uint64_t ovsdb_now_ms(void);

/* ---- pure helpers (unit tests, fuzzing) ------------------------------------ */

/*
 * Length of the first complete JSON object at the start of @buf (leading
 * whitespace included), 0 when more bytes are needed, -1 when the bytes are
 * not a JSON object or it is larger than @max.
 */
long ovsdb_scan_message(const char *buf, size_t len, size_t max);

/*
 * Apply a <table-updates2> value to @replica (object table -> uuid -> row)
 * for the given tables. @initial: the value is the reply of monitor_cond.
 * Returns 0, or -EPROTO with a message in @err (the replica may then be
 * partly updated: resynchronize).
 */
int ovsdb_apply_update2(json_t *replica, const struct ovsdb_table *tables, size_t n_tables,
	json_t *updates, char *err, size_t errlen);

/*
 * Check the result of a transaction of @n_ops operations: 0, or -EPROTO
 * (malformed) / -EIO (an operation failed) with a message in @err.
 */
int ovsdb_check_txn_result(json_t *result, size_t n_ops, char *err, size_t errlen);

/* A valid uuid string (36 characters, 8-4-4-4-12 hex digits)? */
bool ovsdb_uuid_valid(const char *s);

/* Normalized-row accessors (NULL / "" / 0 when absent or of another type). */
const char *ovsdb_row_string(json_t *row, const char *column);
json_int_t ovsdb_row_integer(json_t *row, const char *column);
bool ovsdb_row_bool(json_t *row, const char *column);
/* Value of @key in a map column, or NULL. */
const char *ovsdb_row_map_string(json_t *row, const char *column, const char *key);
/* Does the set column hold the string/uuid @value? */
bool ovsdb_row_set_has(json_t *row, const char *column, const char *value);

#endif
