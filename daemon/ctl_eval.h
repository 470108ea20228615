/* SPDX-License-Identifier: MIT */
/* `xtsyncctl eval [--attributes JSON|@FILE] EXPRESSION`: evaluate a mapping
 * expression offline against a JSON attribute object. Needs no daemon and
 * reads no config; it never contacts a tenant. */
#ifndef XTS_CTL_EVAL_H
#define XTS_CTL_EVAL_H

/* argv[0] is "eval". Prints the result as compact JSON (string, array,
 * boolean, number or null) on stdout and returns 0. A syntax error prints
 * "error: column N: message" on stderr and returns 2; an @FILE that cannot
 * be read prints "xtsyncctl: cannot read FILE: reason" and returns 2; invalid
 * --attributes (or a usage error) prints a message and returns 2; a runtime
 * error prints "error: message" and returns 1. Blocks on reading @FILE. */
int xts_ctl_eval_main(int argc, char **argv);

#endif
