/* harness-probe: checks what kvm-run hands to a program, then exits with
 * the status it was asked for, so that a test can see kvm-run pass a
 * status through (and fail when it does not).
 *
 *   harness-probe STATUS [WORD [FILE...]]   check, then exit STATUS
 *   harness-probe --hang                    never exit (for --timeout)
 *
 * WORD and $PROBE_WORD must both equal PROBE_WORD below (quoting
 * survives); each FILE must start with "kvm-run probe"; the working
 * directory must be $PROBE_CWD when set. Any mismatch: exit 1.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_WORD	"it's \"quoted\" $HOME `x` \\ ;"
#define FILE_PREFIX	"kvm-run probe"

static int check_file(const char *path)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");

	if (!f) {
		printf("harness-probe: cannot open %s\n", path);
		return 0;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);

	fclose(f);
	buf[n] = '\0';
	if (strncmp(buf, FILE_PREFIX, strlen(FILE_PREFIX)) != 0) {
		printf("harness-probe: %s does not start with '%s'\n", path, FILE_PREFIX);
		return 0;
	}
	printf("harness-probe: %s ok\n", path);
	return 1;
}

static int check_word(const char *what, const char *word)
{
	if (!word || strcmp(word, PROBE_WORD) != 0) {
		printf("harness-probe: %s is [%s], expected [%s]\n", what,
		       word ? word : "(unset)", PROBE_WORD);
		return 0;
	}
	printf("harness-probe: %s ok\n", what);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--hang") == 0) {
		for (;;)
			pause();
	}
	if (argc < 2) {
		fprintf(stderr, "usage: harness-probe STATUS [WORD [FILE...]] | --hang\n");
		return 1;
	}

	char *end;
	long status = strtol(argv[1], &end, 10);

	if (*end || status < 0 || status > 255) {
		fprintf(stderr, "harness-probe: STATUS must be 0..255, got '%s'\n", argv[1]);
		return 1;
	}

	int ok = 1;
	const char *want_cwd = getenv("PROBE_CWD");
	char cwd[4096];

	if (want_cwd) {
		if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, want_cwd) != 0) {
			printf("harness-probe: cwd is %s, expected %s\n", cwd, want_cwd);
			ok = 0;
		} else {
			printf("harness-probe: cwd ok\n");
		}
	}
	if (argc >= 3) {
		ok &= check_word("argument", argv[2]);
		ok &= check_word("$PROBE_WORD", getenv("PROBE_WORD"));
	}
	for (int i = 3; i < argc; i++)
		ok &= check_file(argv[i]);
	if (!ok)
		return 1;
	printf("harness-probe: exiting with %ld\n", status);
	return (int)status;
}
