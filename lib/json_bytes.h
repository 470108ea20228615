/* SPDX-License-Identifier: MIT */
/* Eight bytes of JSON string text at a time: which of them a JSON string
 * cannot hold as they are. Shared by the fast JSON parser (lib/json_load.c:
 * where a plain run of string text ends) and the store's JSON writer
 * (lib/store.c: whether a string needs escaping). */
#ifndef XTS_JSON_BYTES_H
#define XTS_JSON_BYTES_H

#include <stdint.h>

#define XTS_BYTES_ONES ((uint64_t)0x0101010101010101ULL)
#define XTS_BYTES_HIGHS ((uint64_t)0x8080808080808080ULL)

/* The high bit of each byte of w that is '"', '\\' or a control byte
 * (< 0x20); 0 when there is none. has_zero(x) = (x - 0x01..01) & ~x &
 * 0x80..80 is exact as a whole-word test; a borrow may also flag bytes
 * above a true match, never one below the first, so the lowest flag is
 * exact. Bytes >= 0x80 (UTF-8) are never flagged: ~x clears their top bit. */
static inline uint64_t
xts_json_special8(uint64_t w)
{
	uint64_t q = w ^ (XTS_BYTES_ONES * '"'), bs = w ^ (XTS_BYTES_ONES * '\\');
	uint64_t lt = (w - XTS_BYTES_ONES * 0x20) & ~w;

	return (lt | ((q - XTS_BYTES_ONES) & ~q) | ((bs - XTS_BYTES_ONES) & ~bs)) & XTS_BYTES_HIGHS;
}

#endif
