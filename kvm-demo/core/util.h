/* SPDX-License-Identifier: MIT */
/* The bottom of kvm-demo: constants and helpers every layer uses (util.c). */
#ifndef KVM_DEMO_CORE_UTIL_H
#define KVM_DEMO_CORE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#define KD_PAGE_SIZE		4096ull

/* Exit statuses besides the guest's own result (a KD_RESULT_*, guest/abi.h). */
#define KD_EXIT_USAGE		2	/* bad option or bad input: nothing started */
#define KD_EXIT_HOST		3	/* KVM or host failure, or the guest crashed */
#define KD_EXIT_STOPPED		4	/* stopped by SIGINT or SIGTERM before the guest's result */

/* Errors: "kvm-demo: " + message on stderr, one line. */
__attribute__((format(printf, 1, 2)))
void kd_error(const char *fmt, ...);
/* The calling thread's last kd_error() message, for control replies. */
const char *kd_last_error(void);
double kd_now(void);		/* CLOCK_MONOTONIC seconds */
void kd_sleep_ms(unsigned int ms);	/* the whole time, across signals */

/*
 * Format one error line into ERR (ERRLEN bytes); returns -1: "return
 * kd_err(...)". Inline so that code built alone (the control parser in
 * its tests and fuzzers) needs no other file.
 */
__attribute__((format(printf, 3, 4)))
static inline int kd_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

#endif
