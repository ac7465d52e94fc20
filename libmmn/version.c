/* SPDX-License-Identifier: MIT */
#include "internal.h"

const char *mmn_version(void)
{
	return MMN_VERSION_STRING;
}

bool mmn_version_check(unsigned int major, unsigned int minor, unsigned int micro)
{
	if (MMN_VERSION_MAJOR != major)
		return MMN_VERSION_MAJOR > major;
	if (MMN_VERSION_MINOR != minor)
		return MMN_VERSION_MINOR > minor;
	return MMN_VERSION_MICRO >= micro;
}
