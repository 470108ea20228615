/* SPDX-License-Identifier: MIT */
/* `xtsyncctl check-schema FILE`: load a synchronizationSchema file with the
 * same loader the daemon uses and print every problem with its JSON path.
 * Offline: it needs no config, daemon or network. */
#include <stdio.h>
#include <string.h>

#include "ctl_check_schema.h"
#include "err.h"
#include "schema.h"

int
xts_ctl_check_schema_main(int argc, char **argv)
{
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_schema *s = NULL;
	const char *file;
	size_t i;
	int r, ret = 2;

	if (argc != 2 || argv[1] == NULL || argv[1][0] == '\0' ||
	    (argv[1][0] == '-' && argv[1][1] != '\0')) {
		fprintf(stderr, "usage: xtsyncctl check-schema FILE\n");
		return 2;
	}
	file = argv[1];
	r = file[0] == '-' ? XTS_EINVAL : xts_schema_load_file(file, &s, &probs);
	for (i = 0; i < probs.count; i++)
		printf("%s: %s: %s\n", file, probs.items[i].path, probs.items[i].message);
	if (r == 0) {
		printf("%s: ok (%zu attribute mappings, %zu scoping filter groups)\n", file,
		       xts_schema_mapping_count(s), xts_schema_filter_group_count(s));
		ret = 0;
	} else if (probs.count == 0) {
		printf("%s: $: %s\n", file, xts_strerror(r));
	}
	fflush(stdout);
	xts_schema_free(s);
	xts_schema_problems_free(&probs);
	return ret;
}
