/* SPDX-License-Identifier: MIT */
/* Internal to the config module: the key table's row type and key types.
 * Other modules use config.h (and xts_config_dump_keys for the table). */
#ifndef XTS_CONFIG_KEYS_H
#define XTS_CONFIG_KEYS_H

#include <stddef.h>

enum xts_key_type {
	XTS_KT_STRING,         /* free text, no control characters */
	XTS_KT_PATH,           /* file or directory path (need not exist) */
	XTS_KT_FILE,           /* path of a file that must exist when set */
	XTS_KT_SECRET,         /* path or systemd credential name; must not be group/other-readable */
	XTS_KT_URL,            /* https://, or http:// to a loopback host */
	XTS_KT_SMTP_URL,       /* smtp:// or smtps:// */
	XTS_KT_DURATION,       /* integer with s/m/h suffixes -> uint64_t ms */
	XTS_KT_INT,            /* long long within [min, max] */
	XTS_KT_RATIO,          /* double in (0, 1] */
	XTS_KT_BOOL,           /* true/false/yes/no/on/off/1/0 */
	XTS_KT_ENUM,           /* index into names -> int-sized enum */
	XTS_KT_LOGLEVEL,       /* log level name -> XTS_LOG_* */
	XTS_KT_GUID,           /* 8-4-4-4-12 hex */
	XTS_KT_GUID_OR_DOMAIN, /* GUID or DNS domain */
	XTS_KT_GUID_LIST,      /* comma-separated GUIDs -> struct xts_strlist */
	XTS_KT_EMAIL,          /* one address */
	XTS_KT_EMAIL_LIST,     /* comma-separated addresses -> struct xts_strlist */
	XTS_KT_TENANT,         /* name of a [tenant] section */
	XTS_KT_GROUP,          /* Unix group name (must exist) or empty */
};

struct xts_key_def {
	const char *section;          /* "daemon", "smtp", "tenant", "job" */
	const char *name;
	enum xts_key_type type;
	size_t offset;                /* into the section's struct */
	long long min, max;           /* XTS_KT_INT bounds; XTS_KT_DURATION bounds in ms */
	const char *def;              /* default, as text parsed like a value */
	const char *const *names;     /* XTS_KT_ENUM / XTS_KT_LOGLEVEL value names */
	int reloadable;               /* a reload applies a change without restart */
	int required;                 /* must be set in the section */
	const char *desc;             /* one line for --dump-keys and the docs */
};

/* Terminated by a row with name == NULL. */
extern const struct xts_key_def xts_config_keys[];

#endif
