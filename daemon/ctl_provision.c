/* SPDX-License-Identifier: MIT */
/* Printing of `xtsyncctl provision` and `xtsyncctl preview` answers. The
 * provision steps follow Microsoft's on-demand view ("Import user",
 * "Determine if user is in scope", "Match user between source and target
 * system", "Perform action"), plus the export of that action. */
#include <string.h>

#include "ctl_provision.h"

static const char *
step_title(const char *name)
{
	static const struct {
		const char *name, *title;
	} t[] = {
		{ "import", "Import user" },
		{ "scoping", "Determine if user is in scope" },
		{ "matching", "Match user between source and target system" },
		{ "processing", "Perform action" },
		{ "export", "Export to the target tenant" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, name) == 0)
			return t[i].title;
	return name;
}

static const char *
str(json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : dflt;
}

int
xts_ctl_print_provision(FILE *f, const char *job, json_t *resp)
{
	json_t *steps = json_object_get(resp, "steps"), *s;
	size_t i;
	int failed = 0;

	fprintf(f, "Provision on demand: job %s, user %s\n", job, str(resp, "user", "?"));
	json_array_foreach(steps, i, s) {
		const char *name = str(s, "name", "?"), *status = str(s, "status", "?");
		fprintf(f, "%zu. %s (%s): %s\n", i + 1, step_title(name), name, status);
		fprintf(f, "   %s\n", str(s, "description", ""));
		if (strcmp(status, "failure") == 0)
			failed = 1;
	}
	return failed;
}

void
xts_ctl_print_preview(FILE *f, const char *job, json_t *resp)
{
	json_t *plan = json_object_get(resp, "plan"), *l;
	const char *note = str(resp, "note", "");
	size_t i;

	fprintf(f, "Plan of the next cycle of job %s (%zu lines; nothing was written):\n", job,
		json_array_size(plan));
	json_array_foreach(plan, i, l)
		if (json_is_string(l))
			fprintf(f, "  %s\n", json_string_value(l));
	if (note[0] != '\0')
		fprintf(f, "note: %s\n", note);
}
