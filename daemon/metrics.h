/* SPDX-License-Identifier: MIT */
/* The `metrics_file`: the job table's status written as a Prometheus text
 * exposition file for node_exporter's textfile collector. It only turns the
 * status JSON into text and replaces the file (or removes it when the caller
 * stops using it); it keeps no state and serves nothing over the network. */
#ifndef XTS_METRICS_H
#define XTS_METRICS_H

#include <jansson.h>

#include "buf.h"

/* Append the exposition text for status (borrowed: the array
 * xts_jobs_status() returns, or an object with that array as "jobs") to out.
 * A job object without a string "name" is skipped; a field the status lacks
 * (or has as null) gives no sample. Returns 0, XTS_EINVAL when status is
 * neither shape, or XTS_ENOMEM (out then holds a partial text). */
int xts_metrics_format(const json_t *status, struct xts_buf *out);

/* Replace the file at path with the exposition text for status (borrowed, as
 * above): written to a temporary file in the same directory (mode 0644, no
 * secrets in it), then renamed over path, so a reader sees the old file or
 * the new one, never a part. Not fsynced. On failure the temporary file is
 * removed, one warning naming path is logged, and a negative XTS_E* is
 * returned (from errno, or XTS_ENOMEM/XTS_EINVAL); 0 on success. Blocks
 * only for the local file system calls on one small file. */
int xts_metrics_write(const char *path, const json_t *status);

/* Remove the file at path, which xts_metrics_write wrote and nothing updates
 * any more (a textfile collector would keep exporting its stale values).
 * Returns 0 when it was removed, XTS_ENOENT when it was already gone (said
 * nowhere), or another negative XTS_E* after one warning naming path. Only
 * path itself is unlinked. Blocks only for one unlink(2). */
int xts_metrics_remove(const char *path);

#endif
