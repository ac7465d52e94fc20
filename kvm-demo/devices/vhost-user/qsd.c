/* SPDX-License-Identifier: MIT */
/* Starting and stopping qemu-storage-daemon (see qsd.h). */
#define _GNU_SOURCE
#include "qsd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int qsd_start(struct qsd *q, const char *image, char *err, size_t errlen)
{
	const char *prog = getenv("KD_QSD") ? getenv("KD_QSD") : QSD_PROGRAM;
	char blk[4200], exp[256];
	const char *tmp = getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 32 ? getenv("TMPDIR") :
			  "/tmp";
	int pipefd[2];
	ssize_t n;
	int child_errno = 0;

	memset(q, 0, sizeof(*q));
	if (strchr(image, ',')) {
		/* qemu's option syntax would split the name. */
		snprintf(err, errlen, "disk image %s: a comma in the name is not supported", image);
		return -1;
	}
	if (access(image, R_OK | W_OK)) {
		snprintf(err, errlen, "disk image %s: %s", image, strerror(errno));
		return -1;
	}
	snprintf(q->dir, sizeof(q->dir), "%s/kvm-demo-disk.XXXXXX", tmp);
	if (!mkdtemp(q->dir)) {
		snprintf(err, errlen, "disk: mkdtemp %s: %s", q->dir, strerror(errno));
		q->dir[0] = 0;
		return -1;
	}
	snprintf(q->socket, sizeof(q->socket), "%s/disk.sock", q->dir);
	snprintf(blk, sizeof(blk), "driver=file,node-name=file0,filename=%s", image);
	snprintf(exp, sizeof(exp), "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,"
		 "addr.path=%s,writable=on", q->socket);
	/* A close-on-exec pipe tells exec failure (errno comes back) from success (EOF). */
	if (pipe2(pipefd, O_CLOEXEC)) {
		snprintf(err, errlen, "disk: pipe: %s", strerror(errno));
		rmdir(q->dir);
		return -1;
	}
	q->pid = fork();
	if (q->pid == 0) {
		char *argv[] = { (char *)prog, "--blockdev", blk, "--blockdev",
				 "driver=raw,node-name=disk0,file=file0", "--export", exp, NULL };
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Its own process group: a ^C at the terminal is kvm-demo's to handle. */
		setpgid(0, 0);
		execvp(prog, argv);
		child_errno = errno;
		if (write(pipefd[1], &child_errno, sizeof(child_errno)) < 0)
			_exit(127);
		_exit(127);
	}
	close(pipefd[1]);
	if (q->pid < 0) {
		snprintf(err, errlen, "disk: fork: %s", strerror(errno));
		close(pipefd[0]);
		rmdir(q->dir);
		q->pid = 0;
		return -1;
	}
	do
		n = read(pipefd[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n > 0) {
		snprintf(err, errlen, "disk: cannot run %s: %s", prog, strerror(child_errno));
		waitpid(q->pid, NULL, 0);
		q->pid = 0;
		rmdir(q->dir);
		return -1;
	}
	return 0;
}

/* Wait for the process to end, at most TIMEOUT_MS, without reaping it. */
static void wait_exit(pid_t pid, unsigned int timeout_ms)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	if (pidfd < 0)
		return;
	while (poll(&p, 1, (int)timeout_ms) < 0 && errno == EINTR)
		;
	close(pidfd);
}

int qsd_wait(struct qsd *q, unsigned int timeout_ms, int *status)
{
	if (q->pid <= 0)
		return 0;
	wait_exit(q->pid, timeout_ms);
	if (waitpid(q->pid, status, WNOHANG) != q->pid)
		return 0;
	q->pid = 0;
	return 1;
}

static void remove_dir(struct qsd *q)
{
	if (!q->dir[0])
		return;
	unlink(q->socket);
	rmdir(q->dir);
	q->dir[0] = 0;
}

int qsd_stop(struct qsd *q, unsigned int timeout_ms)
{
	int status = -1;

	if (q->pid <= 0) {
		remove_dir(q);
		return 0;
	}
	kill(q->pid, SIGTERM);
	wait_exit(q->pid, timeout_ms);
	if (waitpid(q->pid, &status, WNOHANG) != q->pid) {
		kill(q->pid, SIGKILL);
		waitpid(q->pid, NULL, 0);
		status = -1;
	}
	q->pid = 0;
	remove_dir(q);
	return status;
}
