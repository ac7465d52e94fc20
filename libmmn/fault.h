/* SPDX-License-Identifier: MIT */
/*
 * Fault injection points: every call that can fail, so that a test build
 * can make each fail in turn. fault_inject(SITE) is the constant false in
 * the library. Built with -DMMN_FAULT_INJECTION (tests only), it asks the
 * test's mmn_fault_inject() whether this call fails; when it returns true
 * it has set errno, and the caller acts as if the call had failed so.
 */
#ifndef MMN_FAULT_H
#define MMN_FAULT_H

#include "internal.h"

#ifdef MMN_FAULT_INJECTION
bool mmn_fault_inject(const char *site);
#define fault_inject(site) mmn_fault_inject(site)
#else
#define fault_inject(site) false
#endif

#endif /* MMN_FAULT_H */
