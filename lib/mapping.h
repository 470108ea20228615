/* SPDX-License-Identifier: MIT */
/* Applying a schema's attribute mappings to one source user (what the target
 * should hold) and diffing that against what was last exported (what to
 * PATCH). Pure functions over jansson values; no I/O, no store, no Graph. */
#ifndef XTS_MAPPING_H
#define XTS_MAPPING_H

#include <time.h>

#include <jansson.h>

#include "expr.h"
#include "schema.h"

/* Evaluate every mapping of s for source_user (borrowed).
 * - is_create: 1 when the target object is about to be created; ObjectAddOnly
 *   mappings are evaluated only then, and defaultValue is used only then (when
 *   the result is null or empty).
 * - The link mapping is skipped; IgnoreFlowIfNullOrEmpty omits the attribute;
 *   any other null result is kept as json null (the diff never writes a null).
 * On success returns 0, *target_attrs is a new object {targetAttr: value} and
 * *redacted a new array of target attribute names whose values must be logged
 * as "[Redact]" (redacted may be NULL). On an expression error returns
 * XTS_EEXPR, err->message names the target attribute, and nothing is returned.
 * XTS_ENOMEM / XTS_EINVAL otherwise. Never blocks. */
int xts_mapping_apply(const struct xts_schema *s, const json_t *source_user, int is_create,
		      json_t **target_attrs, json_t **redacted, struct xts_expr_error *err);
/* Same with an explicit evaluation context template (Now(), random source);
 * ctx->attrs is ignored (source_user is used). ctx may be NULL. */
int xts_mapping_apply_ctx(const struct xts_schema *s, const json_t *source_user, int is_create,
			  const struct xts_expr_ctx *ctx, json_t **target_attrs,
			  json_t **redacted, struct xts_expr_error *err);

/* The attributes to PATCH on an update (see docs/internals/schema.md):
 * desired: result of xts_mapping_apply(is_create=0) (borrowed);
 * last_exported: what was last written to the target, or NULL (borrowed).
 * FlowWhenChanged attributes are included when desired != last exported
 * (JSON equality, absent == null, arrays order-sensitive); FlowAlways
 * attributes are included in every non-empty update (whenever any attribute
 * changed) and whenever they differ; ObjectAddOnly never; AttributeAddOnly
 * only when nothing was exported before; ValueAddOnly/MultiValueAddOnly never
 * remove values (arrays become last ∪ desired). Attributes in desired that no
 * mapping names are compared as FlowWhenChanged.
 * Returns 0 and *changes a new object (empty when nothing to do), or an XTS_E* code. */
int xts_mapping_diff(const struct xts_schema *s, const json_t *desired,
		     const json_t *last_exported, json_t **changes);
/* The same, and with reassert set every other value of desired that is not
 * empty and flows on updates (flowType Always, or a single-valued
 * MultiValueAddOnly) rides along as if FlowAlways, also when nothing changed:
 * for a user that changed in the source, whose target may have been edited
 * since it was written ("If you make changes to the user in the source
 * tenant, then during the next synchronization cycle, the user in the target
 * tenant is updated to match the user in the source tenant",
 * cross-tenant-synchronization-faq.yml). */
int xts_mapping_diff_ex(const struct xts_schema *s, const json_t *desired, const json_t *last_exported,
			int reassert, json_t **changes);

#endif
