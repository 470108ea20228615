/* SPDX-License-Identifier: MIT */
/* Reading secrets (client secrets, private keys, SMTP passwords) from files
 * or systemd credentials ($CREDENTIALS_DIRECTORY/<name>). Refuses files that
 * group or others can read. Never logs a secret's content, only its name. */
#ifndef XTS_SECRET_H
#define XTS_SECRET_H

#include <stddef.h>

/* Largest secret accepted (a PEM private key with chain fits easily). */
#define XTS_SECRET_MAX (64 * 1024)

/* 1 when spec is a systemd credential name (no '/'), 0 when it is a path. */
int xts_secret_is_credential(const char *spec);

/* Resolve spec to the file it names: a path is copied, a credential name
 * becomes $CREDENTIALS_DIRECTORY/<name>. Returns 0 and *out (free with
 * xts_free); XTS_EINVAL for an empty/invalid credential name; XTS_ENOENT when
 * spec is a credential and $CREDENTIALS_DIRECTORY is not set; XTS_ENOMEM. */
int xts_secret_resolve(const char *spec, char **out);

/* Check, without reading, that spec names a regular file not readable by
 * group or others. Returns 0, or an XTS_E* code with a sentence in why
 * (always NUL-terminated; whylen > 0). Blocks on stat(2). */
int xts_secret_check(const char *spec, char *why, size_t whylen);

/* Read the secret named by spec (path or credential name) into *out, a
 * NUL-terminated copy with one trailing "\n" (or "\r\n") removed. The caller
 * wipes and frees it with xts_secret_free. Returns 0, XTS_ENOENT, XTS_EPERM
 * (group/other-readable or not a regular file), XTS_ETOOBIG, XTS_EINVAL
 * (contains a NUL byte), XTS_EIO or XTS_ENOMEM; the reason is logged (file
 * name only, never content). Blocks on file I/O. */
int xts_secret_read(const char *spec, char **out);

/* Wipe (explicit_bzero) and free a secret from xts_secret_read; NULL is ok. */
void xts_secret_free(char *secret);

#endif
