/* The public header compiles alone as C11, and the version agrees. */
#include <mmn/mmn.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
	if (strcmp(mmn_version(), MMN_VERSION_STRING) != 0) {
		fprintf(stderr, "header %s, library %s\n", MMN_VERSION_STRING, mmn_version());
		return 1;
	}
	if (!mmn_version_check(MMN_VERSION_MAJOR, MMN_VERSION_MINOR, MMN_VERSION_MICRO) ||
	    mmn_version_check(MMN_VERSION_MAJOR + 1, 0, 0)) {
		fprintf(stderr, "mmn_version_check disagrees with the header\n");
		return 1;
	}
	return 0;
}
