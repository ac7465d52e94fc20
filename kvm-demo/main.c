/* SPDX-License-Identifier: MIT */
/*
 * kvm-demo: options, the main thread, the summary.
 *
 * Threads: the main thread builds the VM, starts one thread per vCPU, then
 * sleeps in poll() on a signalfd (SIGINT, SIGTERM: blocked in every thread)
 * and the VM's stop eventfd. Whoever stops the VM first (the guest's result
 * port, a failing vCPU, a signal) records why; the main thread then joins
 * the vCPU threads, tears the VM down and prints the summary.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "core/vm.h"
#include "config/domain.h"
#include "devices/vdev.h"
#include "devices/vhost-user/blk.h"
#include "control/vmctl.h"
#include "kvm-figures.h"

#define KD_DISK_DEFAULT_BYTES	(16ull << 20)	/* a --disk-image kvm-demo creates */

static void usage(FILE *f)
{
	fputs("usage: kvm-demo [--config FILE] [--guest IMAGE] [--timeout SECS]\n"
	      "                [--chaos SECS [--seed N] [--chaos-ops KIND,...] [--chaos-gap-ms MIN-MAX]\n"
	      "                 [--chaos-widen-us N]] [--ctl-script FILE] [--unplug-timeout MS]\n"
	      "                [--bench REPS] [--disk-image FILE] [--no-scenario|--quiet]\n"
	      "       kvm-demo [--config FILE] --dump-config\n"
	      "       kvm-demo --check\n"
	      "       kvm-demo ctl SOCKET COMMAND [ARGS...]\n"
	      "  --config FILE   libvirt domain XML (default: the built-in definition)\n"
	      "  --guest IMAGE   a flat guest image instead of the built-in self-test\n"
	      "  --timeout SECS  stop the VM with SIGTERM after SECS seconds\n"
	      "  --dump-config   print the definition as libvirt normalised it, and exit\n"
	      "  --chaos SECS    random memory operations for SECS seconds, then a report\n"
	      "  --seed N        the chaos random seed (default: from the clock; printed)\n"
	      "  --chaos-ops KIND,...  only these kinds: hotplug, unplug, setmem (balloon),\n"
	      "                  remap, protect, reclaim, nonblock-remap, device\n"
	      "  --chaos-gap-ms MIN[-MAX]  the pause between operations (default 5-104)\n"
	      "  --chaos-widen-us N  testing: sleep N us in each window of slot sync\n"
	      "  --ctl-script FILE  run a control session from FILE through the socket\n"
	      "  --unplug-timeout MS  how long the guest may take to answer (default 20000)\n"
	      "  --disk-image FILE  a virtio disk: FILE (created with 16 MiB if missing)\n"
	      "                  served by qemu-storage-daemon over vhost-user, which\n"
	      "                  kvm-demo starts and stops; the guest writes and verifies it\n"
	      "  --bench REPS    time REPS moves of boot RAM under device traffic (slot\n"
	      "                  remap, quiescence, device drain), print them for make bench\n"
	      "  --inject deaf-guest|guest-crash|triple-fault|unbracketed|disk-corrupt\n"
	      "                  testing: a guest that never answers the mailbox, one that\n"
	      "                  crashes at boot (an invalid instruction), the same crash\n"
	      "                  with the IDT wiped (a triple fault and the crash dump), one\n"
	      "                  change behind libmmn's back, or one byte of the disk image\n"
	      "                  changed before it is checked\n"
	      "  --no-scenario, --quiet  only the self-test: without them, a run that is\n"
	      "                  none of --chaos, --ctl-script, --bench, --guest hotplugs,\n"
	      "                  balloons, remaps, protects and unplugs memory while the\n"
	      "                  guest tests it and the device moves data, a line per step\n"
	      "  --check         report whether KVM is usable here; exit 0 if so, else 1\n", f);
}

/* --check: everything kvm-demo needs from /dev/kvm. */
static int kvm_check(void)
{
	static const struct { long cap; const char *name; } caps[] = {
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	};
	bool ok = true;
	int fd, api, n;

	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("kvm-demo: /dev/kvm: %s\nkvm-demo: KVM is not usable here\n", strerror(errno));
		return 1;
	}
	printf("kvm-demo: /dev/kvm: opened\n");
	api = ioctl(fd, KVM_GET_API_VERSION, 0);
	printf("kvm-demo: API version %d: %s\n", api, api == 12 ? "ok" : "need 12");
	ok = api == 12;
	for (size_t i = 0; ok && i < sizeof(caps) / sizeof(caps[0]); i++) {
		n = ioctl(fd, KVM_CHECK_EXTENSION, caps[i].cap);
		printf("kvm-demo: %s: %s\n", caps[i].name, n > 0 ? "yes" : "missing");
		ok = ok && n > 0;
	}
	if (ok) {
		n = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
		printf("kvm-demo: KVM_CAP_NR_MEMSLOTS: %d (need %u)\n", n, 1 + KD_MAX_DIMMS);
		ok = n >= (int)(1 + KD_MAX_DIMMS);
		n = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
		printf("kvm-demo: KVM_CAP_MAX_VCPUS: %d\n", n);
	}
	if (ok) {
		int vm = ioctl(fd, KVM_CREATE_VM, 0);

		printf("kvm-demo: KVM_CREATE_VM: %s\n", vm >= 0 ? "ok" : strerror(errno));
		ok = vm >= 0;
		if (vm >= 0)
			close(vm);
	}
	close(fd);
	printf("kvm-demo: KVM is %s here\n", ok ? "usable" : "not usable");
	return ok ? 0 : 1;
}

static void *read_image(const char *path, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		kd_error("cannot read guest image %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)KD_HOTPLUG_GPA) {
		kd_error("guest image %s: not a regular file of at most 4 GiB", path);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		kd_error("guest image %s: out of memory", path);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0) {
			kd_error("cannot read guest image %s: %s", path,
				 n < 0 ? strerror(errno) : "file shrank");
			goto fail;
		}
		got += (size_t)n;
	}
	close(fd);
	*size = got;
	return buf;
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Entries of a /proc directory: open fds or threads, for the leak check. */
static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * The main thread's wait: until the VM stops or a signal asks it to.
 * --timeout sends SIGTERM to the process, so it takes the signal's path.
 */
static void wait_for_stop(struct vm *vm, int sfd, unsigned int timeout_s)
{
	struct pollfd fds[2] = {
		{ .fd = sfd, .events = POLLIN },
		{ .fd = vm->stop_fd, .events = POLLIN },
	};
	double deadline = kd_now() + timeout_s;
	bool timed_out = false;

	for (;;) {
		int ms = -1;

		if (timeout_s && !timed_out) {
			double left = deadline - kd_now();

			ms = left > 0 ? (int)(left * 1000) + 1 : 0;
		}
		int n = poll(fds, 2, ms);

		if (n == 0) {
			printf("kvm-demo: --timeout: %u s passed, sending SIGTERM\n", timeout_s);
			timed_out = true;
			kill(getpid(), SIGTERM);
			continue;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			kd_error("poll: %s", strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR, KD_EXIT_HOST);
			return;
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				printf("kvm-demo: %s: stopping the VM\n", strsignal((int)si.ssi_signo));
				vm_request_stop(vm, VM_STOP_SIGNAL, KD_EXIT_STOPPED);
			}
		}
		if (fds[1].revents & POLLIN)
			return;
	}
}

/*
 * The slots plugged when the VM stopped (before vm_destroy()): an unplugged
 * DIMM keeps its region, unplugged, and is not counted.
 */
static unsigned int plugged_slots(const struct vm *vm, uint64_t *bytes)
{
	unsigned int slots = 0;

	*bytes = 0;
	for (unsigned int i = 0; i < vm->nr_regions; i++) {
		if (!vm->regions[i].plugged)
			continue;
		slots++;
		*bytes += vm->regions[i].size;
	}
	return slots;
}

static void summary(struct vm *vm, unsigned int slots, uint64_t slots_bytes, double t_start,
		    double t_run, double t_end)
{
	const struct vm_config *cfg = vm->cfg;
	uint64_t verified = atomic_load(&vm->pages_verified) * KD_PAGE_SIZE;

	switch (vm->stop_reason) {
	case VM_STOP_GUEST:
		printf("kvm-demo: guest %s (result %d%s)\n",
		       vm->guest_result == KD_RESULT_PASS ? "passed" : "FAILED", vm->guest_result,
		       vm->guest_result == KD_RESULT_MISMATCH ? ": memory mismatch"
		       : vm->guest_result == KD_RESULT_BAD_BOOT ? ": bad boot info"
		       : vm->guest_result == KD_RESULT_EXCEPTION ? ": a CPU exception" : "");
		break;
	case VM_STOP_SIGNAL:
		printf("kvm-demo: stopped by a signal before the guest finished (%.2f s from the "
		       "signal to the end of teardown)\n", t_end - vm->stop_time);
		break;
	case VM_STOP_CONTROL:
		printf("kvm-demo: shut down (control socket or end of --chaos)\n");
		break;
	default:
		printf("kvm-demo: the VM stopped on an error\n");
		break;
	}
	printf("kvm-demo: summary: %u vCPUs, %u memory slots (%" PRIu64 " MiB, %s%s), "
	       "%" PRIu64 " MiB read back and verified by the guest (%" PRIu64 " MiB of RAM under test, %u passes), "
	       "%.2f s (setup %.2f s, guest %.2f s)\n",
	       vm->nr_vcpus, slots, slots_bytes >> 20, cfg->memfd ? "memfd" : "anonymous",
	       cfg->shared ? " shared" : " private", verified >> 20, vm->test_bytes >> 20,
	       vm->passes, t_end - t_start, t_run - t_start, t_end - t_run);
}

/*
 * --disk-image FILE: the disk is FILE, served by qemu-storage-daemon,
 * which kvm-demo starts. A missing FILE is created (16 MiB of zeros).
 */
static int use_disk_image(struct vm_config *cfg, const char *path)
{
	int fd;

	if (cfg->disk_socket) {
		kd_error("--disk-image: the domain has a <disk> already (its backend at %s): "
			 "give one or the other", cfg->disk_socket);
		return -1;
	}
	if (!cfg->memfd || !cfg->shared) {
		kd_error("--disk-image: qemu-storage-daemon maps guest RAM from fds: the domain "
			 "needs <memoryBacking><source type='memfd'/><access mode='shared'/>");
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (ftruncate(fd, KD_DISK_DEFAULT_BYTES) < 0) {
			kd_error("--disk-image %s: %s", path, strerror(errno));
			close(fd);
			unlink(path);
			return -1;
		}
		close(fd);
		printf("kvm-demo: disk: created %s (%llu MiB of zeros)\n", path,
		       KD_DISK_DEFAULT_BYTES >> 20);
	} else if (errno != EEXIST) {
		kd_error("--disk-image %s: %s", path, strerror(errno));
		return -1;
	}
	cfg->disk_image = path;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "guest", required_argument, NULL, 'g' },
		{ "dump-config", no_argument, NULL, 'd' },
		{ "check", no_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },
		{ "chaos", required_argument, NULL, 'C' },
		{ "seed", required_argument, NULL, 'S' },
		{ "ctl-script", required_argument, NULL, 'P' },
		{ "unplug-timeout", required_argument, NULL, 'U' },
		{ "inject", required_argument, NULL, 'I' },
		{ "bench", required_argument, NULL, 'B' },
		{ "disk-image", required_argument, NULL, 'D' },
		{ "chaos-ops", required_argument, NULL, 'O' },
		{ "chaos-gap-ms", required_argument, NULL, 'O' },
		{ "chaos-widen-us", required_argument, NULL, 'O' },
		{ "no-scenario", no_argument, NULL, 'N' },
		{ "quiet", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL, *guest_path = NULL, *other = NULL;
	bool dump = false, check = false, no_scenario = false, scenario;
	unsigned int timeout_s = 0, chaos_s = 0, unplug_ms = 20000, bench_reps = 0;
	uint64_t seed = 0;
	const char *script_path = NULL, *disk_image = NULL;
	struct ctl_server ctl;
	bool broken = false, inject_deaf = false, inject_crash = false, inject_unbracketed = false;
	bool inject_triple = false, inject_disk = false;
	int fds_before, threads_before;
	struct vm_config cfg;
	struct vm vm;
	const void *image = kd_guest_image;
	void *image_buf = NULL;
	size_t image_size = (size_t)(kd_guest_image_end - kd_guest_image);
	sigset_t sigs;
	int sfd = -1, status = KD_EXIT_HOST, c, li = 0;
	double t_start, t_run;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return ctl_main(argc - 2, argv + 2);
	opterr = 0;	/* one line of our own instead of getopt's */
	while ((c = getopt_long(argc, argv, "c:g:h", opts, &li)) != -1) {
		/* --check and --dump-config ignore nothing silently: see below. */
		for (const struct option *o = opts; !other && c != 'c' && c != 'd' && c != 'k' &&
		     o->name; o++)
			if (o->val == c)
				other = o->name;
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'g': guest_path = optarg; break;
		case 'd': dump = true; break;
		case 'k': check = true; break;
		case 't': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (!*optarg || *end || v == 0 || v > 86400) {
				kd_error("--timeout '%s': expected seconds, 1 to 86400", optarg);
				return KD_EXIT_USAGE;
			}
			timeout_s = (unsigned int)v;
			break;
		}
		case 'C':
		case 'U':
		case 'S': {
			char *end;
			unsigned long long v, max = c == 'C' ? 86400 : c == 'U' ? 600000 : ~0ull;

			/* strtoull() takes "-1", " 5" and an overflow (as the maximum) too. */
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end || errno || v == 0 || v > max) {
				kd_error("--%s '%s': expected a number, 1 to %llu",
					 c == 'C' ? "chaos" : c == 'U' ? "unplug-timeout" : "seed",
					 optarg, max);
				return KD_EXIT_USAGE;
			}
			if (c == 'C')
				chaos_s = (unsigned int)v;
			else if (c == 'U')
				unplug_ms = (unsigned int)v;
			else
				seed = v;
			break;
		}
		case 'B': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (!*optarg || *end || v == 0 || v > KDFIG_MAX_VALUES) {
				kd_error("--bench '%s': expected a number of repetitions, 1 to %d",
					 optarg, KDFIG_MAX_VALUES);
				return KD_EXIT_USAGE;
			}
			bench_reps = (unsigned int)v;
			break;
		}
		case 'O':
			if (chaos_option(opts[li].name, optarg) < 0)
				return KD_EXIT_USAGE;
			break;
		case 'P': script_path = optarg; break;
		case 'D': disk_image = optarg; break;
		case 'N': no_scenario = true; break;
		case 'I':
			if (strcmp(optarg, "deaf-guest") == 0) {
				inject_deaf = true;
			} else if (strcmp(optarg, "guest-crash") == 0) {
				inject_crash = true;
			} else if (strcmp(optarg, "triple-fault") == 0) {
				inject_triple = true;
			} else if (strcmp(optarg, "unbracketed") == 0) {
				inject_unbracketed = true;
			} else if (strcmp(optarg, "disk-corrupt") == 0) {
				inject_disk = true;
			} else {
				kd_error("--inject '%s': expected deaf-guest, guest-crash, "
					 "triple-fault, unbracketed or disk-corrupt", optarg);
				return KD_EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); return 0;
		default:
			kd_error("option '%s' is unknown or needs a value (see kvm-demo --help)",
				 argv[optind - 1]);
			return KD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		kd_error("unexpected argument '%s' (see kvm-demo --help)", argv[optind]);
		return KD_EXIT_USAGE;
	}
	if (check && (other || dump || config_path)) {
		kd_error("--check takes no other option (not --%s)",
			 other ? other : dump ? "dump-config" : "config");
		return KD_EXIT_USAGE;
	}
	if (check)
		return kvm_check();
	if (dump && other) {
		kd_error("--dump-config prints the definition only: --config is its one option "
			 "(not --%s)", other);
		return KD_EXIT_USAGE;
	}
	if (chaos_options_given() && !chaos_s) {
		kd_error("--chaos-ops, --chaos-gap-ms and --chaos-widen-us shape --chaos: give "
			 "--chaos SECS too");
		return KD_EXIT_USAGE;
	}
	if (bench_reps && (chaos_s || script_path)) {
		kd_error("--bench: not with %s (it needs the memory to itself)",
			 chaos_s ? "--chaos" : "--ctl-script");
		return KD_EXIT_USAGE;
	}

	t_start = kd_now();
	if (config_load(&cfg, config_path) < 0)
		return KD_EXIT_USAGE;
	if (disk_image && !dump && use_disk_image(&cfg, disk_image) < 0) {
		config_free(&cfg);
		return KD_EXIT_USAGE;
	}
	if (dump) {
		fputs(cfg.xml, stdout);
		config_free(&cfg);
		return 0;
	}
	if (guest_path) {
		image = image_buf = read_image(guest_path, &image_size);
		if (!image) {
			config_free(&cfg);
			return KD_EXIT_USAGE;
		}
	}
	if (vm_check_image(&cfg, image, image_size) < 0) {
		free(image_buf);
		config_free(&cfg);
		return KD_EXIT_USAGE;
	}

	/* SIGINT and SIGTERM reach the main thread through a signalfd only. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
	    (sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) < 0 || vcpu_init_kick_signal() < 0) {
		kd_error("cannot set up signal handling: %s", strerror(errno));
		free(image_buf);
		config_free(&cfg);
		return KD_EXIT_HOST;
	}

	printf("kvm-demo: domain '%s': %u vCPUs, boot RAM %" PRIu64 " MiB, %u DIMM%s, "
	       "%s %s backing%s\n", cfg.name ? cfg.name : "", cfg.nr_vcpus, cfg.boot_ram >> 20,
	       cfg.nr_dimms, cfg.nr_dimms == 1 ? "" : "s", cfg.memfd ? "memfd" : "anonymous",
	       cfg.shared ? "shared" : "private", cfg.balloon ? ", balloon" : "");
	fds_before = count_entries("/proc/self/fd");
	threads_before = count_entries("/proc/self/task");
	if (bench_reps) {
		/* A device busy all along: the quiescence figures wait for its readers. */
		cfg.vdev_mode = KD_VDEV_MODE_TRAFFIC;
		cfg.vdev_requests = 1000000;
	}
	/* The default run shows memory changing under the guest and the device. */
	scenario = !no_scenario && !chaos_s && !script_path && !bench_reps && !guest_path;
	if (scenario && cfg.vdev_mode == KD_VDEV_MODE_OFF)
		cfg.vdev_mode = KD_VDEV_MODE_CHAOS;	/* batches between passes */
	if (chaos_s || script_path || bench_reps || scenario) {
		cfg.passes = 100000;	/* the guest tests until chaos, the script or the scenario ends */
		if (!seed)
			seed = (uint64_t)(kd_now() * 1e6);
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.listen_fd = ctl.wake_fd = -1;
	int created = vm_create(&vm, &cfg, image, image_size);

	if (created == 0) {
		vm.unplug_timeout_ms = unplug_ms;
		if ((chaos_s || script_path || bench_reps || scenario) && vm.mailbox)
			vm.mailbox->flags |= KD_MB_F_QUIET;
		if (inject_deaf && vm.mailbox)
			vm.mailbox->flags |= KD_MB_F_DEAF;
		if (inject_disk)
			vu_blk_inject_corruption(&vm);
		if ((inject_crash || inject_triple) && vm.mailbox)
			vm.mailbox->flags |= KD_MB_F_CRASH;
		/* No IDT: the crash cannot be reported, and the crash dump must say why. */
		if (inject_triple)
			memset(memory_gpa_to_hva(&vm, KD_IDT_GPA, KD_NR_VECTORS * KD_IDT_GATE_SIZE), 0,
			       KD_NR_VECTORS * KD_IDT_GATE_SIZE);
		if (chaos_s && vdev_chaos_enable(&vm) < 0)
			created = -1;
		if (scenario && cfg.vdev_mode == KD_VDEV_MODE_CHAOS && vdev_batches_enable(&vm, 8) < 0)
			created = -1;
	}
	if (created == 0 && vm_start(&vm) == 0) {
		t_run = kd_now();
		if (ctl_start(&ctl, &vm) < 0 ||
		    (script_path && ctl_script_start(&vm, &ctl, script_path) < 0) ||
		    (chaos_s && chaos_start(&vm, chaos_s, seed) < 0) ||
		    (bench_reps && bench_start(&vm, bench_reps) < 0) ||
		    (scenario && scenario_start(&vm) < 0))
			vm_request_stop(&vm, VM_STOP_ERROR, KD_EXIT_HOST);
		/*
		 * Testing the backstop: discard the mailbox page behind libmmn's
		 * back. With shared memfd backing its contents stay in the file.
		 */
		if (inject_unbracketed && vm.mailbox &&
		    madvise((void *)((uintptr_t)vm.mailbox & ~(KD_PAGE_SIZE - 1)), KD_PAGE_SIZE,
			    MADV_DONTNEED) < 0)
			kd_error("--inject unbracketed: madvise: %s", strerror(errno));
		wait_for_stop(&vm, sfd, timeout_s);
		if (chaos_s)
			broken = chaos_finish(&vm, stdout);
		bench_join();
		if (script_path && ctl_script_join())
			broken = true;
		ctl_stop(&ctl);
		if (scenario && scenario_finish(&vm, stdout))
			broken = true;
		if (!chaos_s && !scenario)
			kd_stats_print(&vm, stdout);
		uint64_t slots_bytes;
		unsigned int slots = plugged_slots(&vm, &slots_bytes);

		vm_destroy(&vm);
		summary(&vm, slots, slots_bytes, t_start, t_run, kd_now());
		status = vm.guest_result;
		broken |= vm.disk_broken;
		if (broken && status == 0)
			status = 1;
	} else {
		vm_destroy(&vm);
		status = KD_EXIT_HOST;
	}
	/* Teardown must give back every thread and fd the VM took. */
	if (count_entries("/proc/self/fd") != fds_before ||
	    count_entries("/proc/self/task") != threads_before) {
		kd_error("teardown leaked: %d fds and %d threads before the VM, %d and %d after",
			 fds_before, threads_before, count_entries("/proc/self/fd"),
			 count_entries("/proc/self/task"));
		status = KD_EXIT_HOST;
	}

	close(sfd);
	free(image_buf);
	config_free(&cfg);
	return status;
}
