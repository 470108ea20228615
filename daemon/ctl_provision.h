/* SPDX-License-Identifier: MIT */
/* Human-readable printing of the daemon's answers to `xtsyncctl provision`
 * (the on-demand steps, numbered as Microsoft's provision-on-demand view
 * shows them) and `xtsyncctl preview` (the plan lines). */
#ifndef XTS_CTL_PROVISION_H
#define XTS_CTL_PROVISION_H

#include <jansson.h>
#include <stdio.h>

/* Print the answer of `provision JOB USER`. Returns 0 when every step
 * succeeded or was skipped, 1 when a step failed. */
int xts_ctl_print_provision(FILE *f, const char *job, json_t *resp);
/* Print the answer of `preview JOB`: one plan line a line, then the note. */
void xts_ctl_print_preview(FILE *f, const char *job, json_t *resp);

#endif
