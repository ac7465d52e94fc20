/* SPDX-License-Identifier: MIT */
/*
 * qemu-storage-daemon as kvm-demo's disk backend: started on a private
 * socket (in a fresh directory only this user can enter) exporting IMAGE
 * as a writable vhost-user-blk device, and stopped at exit.
 */
#ifndef KVM_DEMO_VHOST_USER_QSD_H
#define KVM_DEMO_VHOST_USER_QSD_H

#include <stddef.h>
#include <sys/types.h>

/* The program run: $KD_QSD if set, else this one from PATH. */
#define QSD_PROGRAM	"qemu-storage-daemon"

struct qsd {
	pid_t pid;		/* 0: not running */
	char dir[64];		/* the private directory */
	char socket[96];	/* DIR/disk.sock */
};

/* Returns 0, or -1 with one line naming the problem in ERR. */
int qsd_start(struct qsd *q, const char *image, char *err, size_t errlen);
/*
 * Wait up to TIMEOUT_MS for it to exit; 1 with its wait status in *STATUS
 * (reaped), 0 if it still runs or was not running.
 */
int qsd_wait(struct qsd *q, unsigned int timeout_ms, int *status);
/*
 * SIGTERM, then wait up to TIMEOUT_MS for it to exit, then SIGKILL; the
 * directory goes. Returns its wait status, or -1 if it had to be killed.
 */
int qsd_stop(struct qsd *q, unsigned int timeout_ms);

#endif
