/* SPDX-License-Identifier: MIT */
/* xtsync error codes: every fallible function returns 0 or a negative XTS_E*
 * value. Foreign errors (errno, HTTP, Graph, SQLite, OpenSSL) are mapped at the
 * boundary where they occur and their detail is logged there, once. */
#ifndef XTS_ERR_H
#define XTS_ERR_H

#define XTS_ERRNO_MAP(X)                                                      \
	X(ENOMEM, "out of memory")                                            \
	X(EINVAL, "invalid argument")                                         \
	X(EIO, "input/output error")                                          \
	X(ENOENT, "not found")                                                \
	X(EEXIST, "already exists")                                           \
	X(EPERM, "permission denied")                                         \
	X(ERANGE, "value out of range")                                       \
	X(EPARSE, "parse error")                                              \
	X(ECONFIG, "configuration error")                                     \
	X(ESCHEMA, "invalid synchronization schema")                          \
	X(EEXPR, "expression evaluation error")                               \
	X(EHTTP, "HTTP transport error")                                      \
	X(ETLS, "TLS error")                                                  \
	X(ETIMEDOUT, "timed out")                                             \
	X(ETHROTTLED, "throttled by the service")                             \
	X(ESERVER, "server error")                                            \
	X(EGRAPH, "Microsoft Graph returned an error")                        \
	X(EAUTH, "authentication failed (credentials)")                       \
	X(EPOLICY, "cross-tenant access policy forbids it")                   \
	X(EGONE, "delta token no longer valid (resync needed)")               \
	X(ETOOBIG, "response or request too large")                           \
	X(EFOREIGN, "link points at a foreign host")                          \
	X(ESTORE, "state store error")                                        \
	X(ENOSPC, "no space left on device")                                  \
	X(ECANCELED, "canceled")                                              \
	X(EAGAIN, "try again")                                                \
	X(EHELD, "held by a safety guard")                                    \
	X(EINTERNAL, "internal error")                                        \
	X(EBUSY, "the state store is locked by another process")              \
	X(EPARTIAL, "completed with failures (retried on later cycles)")

enum xts_err {
	XTS_OK = 0,
#define XTS__ENUM(name, msg) XTS_##name,
	XTS__FIRST = -1000,
	XTS_ERRNO_MAP(XTS__ENUM)
#undef XTS__ENUM
	XTS__LAST
};
/* Values are negative: XTS_ENOMEM == -999 and so on. They are stored (an
 * op's last_error), so new codes go at the end of the map. */

/* Human-readable message for an XTS_E* code (static string, never NULL). */
const char *xts_strerror(int err);
/* Symbolic name, e.g. "XTS_ENOMEM" (static string, never NULL). */
const char *xts_errname(int err);
/* Map a positive errno value to an XTS_E* code. */
int xts_err_from_errno(int e);

#endif
