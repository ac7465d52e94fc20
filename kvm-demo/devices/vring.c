/* SPDX-License-Identifier: MIT */
/* The descriptor-chain walker; see vring.h. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "devices/vring.h"

int vring_walk(const struct kd_vring_desc *table, unsigned int queue_size, unsigned int head,
	       struct vring_seg *segs, unsigned int max_segs)
{
	uint64_t visited[KD_VDEV_QUEUE_MAX / 64] = { 0 };
	unsigned int n = 0, idx = head;
	bool seen_write = false;

	if (queue_size == 0 || queue_size > KD_VDEV_QUEUE_MAX)
		return -EINVAL;
	for (;;) {
		struct kd_vring_desc d;

		if (idx >= queue_size)
			return -EINVAL;
		if (visited[idx / 64] & (1ull << (idx % 64)))
			return -ELOOP;
		visited[idx / 64] |= 1ull << (idx % 64);
		if (n >= max_segs)
			return -E2BIG;
		/* One read of the descriptor: the guest may be rewriting it. */
		memcpy(&d, (const void *)&table[idx], sizeof(d));
		if (d.flags & KD_VRING_F_INDIRECT)
			return -ENOTSUP;
		if (d.len == 0)
			return -EINVAL;
		if (d.addr + d.len - 1 < d.addr)
			return -EOVERFLOW;
		if (d.flags & KD_VRING_F_WRITE)
			seen_write = true;
		else if (seen_write)
			return -EPROTO;
		segs[n].gpa = d.addr;
		segs[n].len = d.len;
		segs[n].write = (d.flags & KD_VRING_F_WRITE) != 0;
		n++;
		if (!(d.flags & KD_VRING_F_NEXT))
			return (int)n;
		idx = d.next;
	}
}
