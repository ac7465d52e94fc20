/* SPDX-License-Identifier: MIT */
#include "internal.h"

MMN_EXPORT const char *mmn_version(void)
{
	return MMN_VERSION_STRING;
}

static uint64_t version_key(uint64_t major, uint64_t minor, uint64_t micro)
{
	return major << 40 | minor << 20 | micro;
}

MMN_EXPORT bool mmn_version_check(unsigned int major, unsigned int minor,
				  unsigned int micro)
{
	return version_key(MMN_VERSION_MAJOR, MMN_VERSION_MINOR, MMN_VERSION_MICRO) >=
	       version_key(major, minor, micro);
}
