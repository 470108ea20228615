/* SPDX-License-Identifier: MIT */
/* `xtsyncctl check-schema FILE`: validate a synchronizationSchema file offline.
 * Not the daemon's --check-config (that calls xts_schema_load_file itself). */
#ifndef XTS_CTL_CHECK_SCHEMA_H
#define XTS_CTL_CHECK_SCHEMA_H

/* argv[0] is "check-schema", argv[1] the file. Prints each problem as
 * "FILE: $.json.path: message" (stdout) and returns 2 if there is any (or on
 * usage error), else prints "FILE: ok (N attribute mappings, M scoping filter
 * groups)" and returns 0. Blocks on file I/O. */
int xts_ctl_check_schema_main(int argc, char **argv);

#endif
