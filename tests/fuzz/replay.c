/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target over its corpus as a regular test, with any compiler:
 * every file of each directory (or each file) named on the command line,
 * or of the corpus directory compiled in, is fed to LLVMFuzzerTestOneInput.
 * A broken property aborts, which fails the test.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static size_t inputs;

static int replay_file(const char *path)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	inputs++;
	return 0;
}

static int replay(const char *path)
{
	struct dirent **names;
	struct stat st;
	char file[4096];
	int n, ret = 0;

	if (stat(path, &st)) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	/* Sorted: the same order on every run. */
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: cannot list %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
			if (replay_file(file))
				ret = -1;
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	int ret = 0;

	if (argc < 2) {
		ret = replay(FUZZ_CORPUS);
	} else {
		for (int i = 1; i < argc; i++)
			if (replay(argv[i]))
				ret = -1;
	}
	if (ret == 0 && inputs == 0) {
		fprintf(stderr, "replay: no input found: the corpus is missing\n");
		return 1;
	}
	printf("replay: %zu inputs passed\n", inputs);
	return ret ? 1 : 0;
}
