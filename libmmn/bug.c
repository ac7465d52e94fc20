/* SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void mmn_bug(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "libmmn: BUG at %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}
