/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes as an xtsync.conf, through a real temp
 * file into xts_config_load (the path the daemon uses). Checks only that it
 * never crashes, leaks or reports success together with problems. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

/* libFuzzer ends with exit(): the input file goes with it. */
static void
remove_path(void)
{
	unlink(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	FILE *f;
	int ret;

	if (path[0] == '\0') {
		int fd;
		snprintf(path, sizeof(path), "/tmp/xts_fuzz_config.XXXXXX");
		fd = mkstemp(path);
		if (fd < 0 || atexit(remove_path) != 0)
			abort();
		close(fd);
		xts_log_init(XTS_LOG_CRIT, 0);
	}
	f = fopen(path, "w");
	if (f == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	ret = xts_config_load(path, &cfg, &p);
	if ((ret == 0) != (cfg != NULL) || (ret == 0 && p.n != 0))
		abort();
	xts_config_free(cfg);
	xts_config_problems_free(&p);
	return 0;
}
