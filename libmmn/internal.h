/* SPDX-License-Identifier: MIT */
/* Private to libmmn: never installed. */
#ifndef MMN_INTERNAL_H
#define MMN_INTERNAL_H

#include "config.h"

#include <mmn/mmn.h>

#define MMN_EXPORT __attribute__((visibility("default")))

/*
 * Misuse and broken invariants. In debug builds (--enable-debug) they abort
 * with a message naming the problem; otherwise they compile to nothing, or
 * to a counter where the caller keeps one.
 */
#ifdef MMN_DEBUG
#define MMN_DEBUG_ENABLED 1
#else
#define MMN_DEBUG_ENABLED 0
#endif

__attribute__((noreturn, format(printf, 3, 4)))
void mmn_bug(const char *file, int line, const char *fmt, ...);

/* Abort in debug builds when COND holds; evaluates COND only there. */
#define MMN_BUG_ON(cond, ...)						\
	do {								\
		if (MMN_DEBUG_ENABLED && (cond))			\
			mmn_bug(__FILE__, __LINE__, __VA_ARGS__);	\
	} while (0)

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#endif /* MMN_INTERNAL_H */
