/* SPDX-License-Identifier: MIT */
/* A job's rules, loaded from a Microsoft Graph synchronizationSchema document:
 * the enabled User->User objectMapping's attribute mappings (expressions
 * compiled once) and its scoping filter, plus validation that reports every
 * problem with its JSON path. Loaded schemas are immutable and shareable.
 * Not the evaluation of mappings (mapping.h) or filters (scope_filter.h). */
#ifndef XTS_SCHEMA_H
#define XTS_SCHEMA_H

#include <stddef.h>

#include <jansson.h>

#include "expr.h"

struct xts_schema; /* opaque, immutable after load */

/* ---- problems found while loading ---------------------------------------- */

struct xts_schema_problem {
	char *path;    /* JSON path, e.g. "$.synchronizationRules[0].objectMappings[1]" */
	char *message; /* a sentence a person understands */
};

struct xts_schema_problems {
	struct xts_schema_problem *items;
	size_t count;
	size_t cap;
};

#define XTS_SCHEMA_PROBLEMS_INIT { NULL, 0, 0 }

/* Append a problem (printf-style message). Returns 0 or XTS_ENOMEM.
 * probs may be NULL (the problem is then dropped, 0 returned). */
int xts_schema_problem_add(struct xts_schema_problems *probs, const char *path,
			   const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Free every problem's strings and the array; probs is reset to empty. */
void xts_schema_problems_free(struct xts_schema_problems *probs);

/* ---- loading ------------------------------------------------------------- */

/* Load rules from a parsed synchronizationSchema document (doc borrowed).
 * Unknown fields are ignored. Every problem found is appended to probs (may be
 * NULL). Returns 0 with *out a new schema (free with xts_schema_free) when
 * there are no problems; XTS_ESCHEMA with *out NULL when there is at least
 * one; XTS_ENOMEM on allocation failure. Never blocks. */
int xts_schema_load_json(const json_t *doc, struct xts_schema **out,
			 struct xts_schema_problems *probs);
/* Same, reading the document from a file (blocks on file I/O). A file that
 * cannot be read or is not JSON is reported as a problem with path "$"
 * (message has the line/column) and XTS_ESCHEMA (or XTS_EIO for read errors). */
int xts_schema_load_file(const char *path, struct xts_schema **out,
			 struct xts_schema_problems *probs);
/* The built-in cross-tenant synchronization schema (schema/cross-tenant-schema.json,
 * embedded in the binary at build time). Returns 0 and a new *out, or an XTS_E* code. */
int xts_schema_builtin(struct xts_schema **out);
/* The built-in schema's JSON text (static, NUL-terminated). */
const char *xts_schema_builtin_text(void);
void xts_schema_free(struct xts_schema *s);

/* SHA-256 (lower-case hex, NUL-terminated in out[64]) of a canonical
 * serialization of the rules that affect results: mappings (sorted by target
 * name) and filters. Independent of key order, whitespace and unknown fields;
 * changes when any expression, flow setting, default or filter changes (the
 * engine then does a full resync). Returns 0 or XTS_ENOMEM. */
int xts_schema_fingerprint(const struct xts_schema *s, char out[65]);

/* Call cb once per distinct source attribute name (case-insensitively
 * distinct) that any mapping, the link mapping or any filter needs — for the
 * Graph $select. Names are borrowed from s. */
void xts_schema_foreach_source_attr(const struct xts_schema *s,
				    void (*cb)(const char *name, void *arg), void *arg);

/* ---- attribute mappings -------------------------------------------------- */

enum xts_source_type {
	XTS_SOURCE_ATTRIBUTE, /* portal "Direct": copy source attribute */
	XTS_SOURCE_CONSTANT,  /* a literal string */
	XTS_SOURCE_FUNCTION,  /* portal "Expression": compiled expression */
};

enum xts_flow_behavior {
	XTS_FLOW_WHEN_CHANGED, /* Graph default */
	XTS_FLOW_ALWAYS,
};

enum xts_flow_type {
	XTS_FLOWTYPE_ALWAYS, /* Graph default */
	XTS_FLOWTYPE_OBJECT_ADD_ONLY,
	XTS_FLOWTYPE_MULTI_VALUE_ADD_ONLY,
	XTS_FLOWTYPE_VALUE_ADD_ONLY,
	XTS_FLOWTYPE_ATTRIBUTE_ADD_ONLY,
};

/* One attributeMapping, read-only (all pointers borrowed from the schema). */
struct xts_schema_mapping {
	const char *target;        /* targetAttributeName */
	enum xts_source_type source_type;
	const char *source_text;   /* the source expression as written (or name) */
	const char *source_attr;   /* ATTRIBUTE: the source attribute name; else NULL */
	const char *constant;      /* CONSTANT: the literal; else NULL */
	const xts_expr *expr;      /* FUNCTION: the compiled expression; else NULL */
	const char *default_value; /* defaultValue, NULL when absent or "" */
	enum xts_flow_behavior flow_behavior;
	enum xts_flow_type flow_type;
	int matching_priority;     /* 0 = not used for matching */
	int export_missing_references;
	int is_link;               /* AltSecIdFromNetId([x]) or the matching mapping that
				      stands for the engine's own source-target link:
				      never evaluated or exported */
	int is_soft_delete;        /* target IsSoftDeleted: the provisioning service's
				      deprovision signal, handled by the engine (job
				      `deprovision`), never exported */
	int is_reference;          /* target is a reference (manager): the value is the
				      SOURCE tenant's object id; the engine must translate
				      it to the target's id (or drop it) */
};

/* Number of attribute mappings (including the link mapping). */
size_t xts_schema_mapping_count(const struct xts_schema *s);
/* The i-th mapping (document order), NULL if i is out of range. */
const struct xts_schema_mapping *xts_schema_mapping_at(const struct xts_schema *s, size_t i);
/* The mapping for a target attribute (case-insensitive), or NULL. */
const struct xts_schema_mapping *xts_schema_mapping_find(const struct xts_schema *s,
							 const char *target);
/* The link mapping (e.g. alternativeSecurityIds <- AltSecIdFromNetId([netId])), or NULL. */
const struct xts_schema_mapping *xts_schema_link_mapping(const struct xts_schema *s);
/* The source attribute the link reads (e.g. "netId"), or NULL. Borrowed. */
const char *xts_schema_link_source_attr(const struct xts_schema *s);
/* Matching mappings other than the link, ordered by ascending matchingPriority:
 * fills up to max pointers into out and returns how many exist. */
size_t xts_schema_matching(const struct xts_schema *s,
			   const struct xts_schema_mapping **out, size_t max);
/* Number of scoping filter groups (groups + inputFilterGroups + categoryFilterGroups). */
size_t xts_schema_filter_group_count(const struct xts_schema *s);

/* Parse a flowBehavior / flowType name (case-insensitive); -1 if unknown. */
int xts_flow_behavior_parse(const char *s);
int xts_flow_type_parse(const char *s);
const char *xts_flow_behavior_name(enum xts_flow_behavior b);
const char *xts_flow_type_name(enum xts_flow_type t);

#endif
