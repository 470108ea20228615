/* SPDX-License-Identifier: MIT */
/* `xtsyncctl test-connection JOB` (offline; implemented in ctl_testconn.c):
 * tokens for both tenants of a job and the cross-tenant access policy check,
 * printed with Microsoft's error codes. It changes nothing anywhere. */
#ifndef XTS_CTL_TEST_CONNECTION_H
#define XTS_CTL_TEST_CONNECTION_H

#include "config.h"

/* argv[0] is "test-connection", argv[1] the job. Runs its own uv loop (blocks
 * until the check ends). Prints the result lines to stdout. Returns the exit
 * code: 0 ok, 1 failure, 2 usage. */
int xts_ctl_test_connection_main(const struct xts_config *cfg, int argc, char **argv);

#endif
