/* SPDX-License-Identifier: MIT */
/* The sync engine as the daemon's job runner (see struct xts_job_runner in
 * jobs.h). Only the constructor is public; everything else goes through the
 * function table. Not used by xtsyncctl's offline commands. */
#ifndef XTS_RUNNER_ENGINE_H
#define XTS_RUNNER_ENGINE_H

#include <uv.h>

#include "jobs.h"

/* Fill *out with the engine runner on loop (borrowed; must outlive it).
 * The store, provisioning log and tenants are opened by out->configure.
 * Returns 0 or XTS_ENOMEM (then *out is zeroed). Never blocks. */
int xts_runner_engine_init(uv_loop_t *loop, struct xts_job_runner *out);

#endif
