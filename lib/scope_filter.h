/* SPDX-License-Identifier: MIT */
/* Scoping filters (Graph "filter": groups of clauses, AND within a group, OR
 * across groups), compiled once (regexes included) and evaluated per source
 * user. Operators and semantics follow Microsoft's "scoping filters" page.
 * Not the assigned-users/groups scope of a job (that is the engine's). */
#ifndef XTS_SCOPE_FILTER_H
#define XTS_SCOPE_FILTER_H

#include <jansson.h>

#include "schema.h"

struct xts_filter; /* compiled filter of one objectMapping, immutable */

/* Compile a Graph "filter" object (scope borrowed; NULL or json null means
 * "no filter": everyone is in scope). path is the JSON path of scope for
 * problem messages. Every problem (unknown operator, bad regex, wrong type,
 * missing operand) is appended to probs. Returns 0 and a new *out, XTS_ESCHEMA
 * if there was any problem (*out NULL), or XTS_ENOMEM. */
int xts_filter_compile(const json_t *scope, const char *path, struct xts_filter **out,
		       struct xts_schema_problems *probs);
void xts_filter_free(struct xts_filter *f);

/* Evaluate a compiled filter against a source user (borrowed). Sets *in_scope
 * to 1 or 0. When 0 and reason is non-NULL, *reason points at a description of
 * the failing clause (e.g. "group 'US' clause 'department EQUALS \"Sales\"' is
 * false") borrowed from f. The three group sets (groups, inputFilterGroups,
 * categoryFilterGroups) must each be satisfied; an empty set is satisfied.
 * Returns 0 (or XTS_EINVAL for NULL arguments). Pure; never blocks. */
int xts_filter_eval(const struct xts_filter *f, const json_t *source_user, int *in_scope,
		    const char **reason);
/* Only inputFilterGroups: an object failing it is not processed at all (and,
 * per Graph, is NOT deprovisioned). Same conventions as xts_filter_eval. */
int xts_filter_eval_input(const struct xts_filter *f, const json_t *source_user, int *in_scope,
			  const char **reason);

/* Call cb for every sourceOperandName used by the filter (names borrowed). */
void xts_filter_foreach_attr(const struct xts_filter *f,
			     void (*cb)(const char *name, void *arg), void *arg);
/* Number of filter groups across the three sets. */
size_t xts_filter_group_count(const struct xts_filter *f);
/* Append a canonical JSON form of the filter to arr (for the fingerprint). 0 or XTS_ENOMEM. */
int xts_filter_canonical(const struct xts_filter *f, json_t *arr);

/* The schema's scoping filter on a source user (see xts_filter_eval). */
int xts_scope_filter_eval(const struct xts_schema *s, const json_t *source_user, int *in_scope,
			  const char **reason);
/* The schema's inputFilterGroups only (see xts_filter_eval_input). */
int xts_scope_filter_eval_input(const struct xts_schema *s, const json_t *source_user,
				int *in_scope, const char **reason);
/* The schema's compiled filter (borrowed; never NULL for a loaded schema). */
const struct xts_filter *xts_schema_filter(const struct xts_schema *s);

#endif
