/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostd: the daemon. Loads the config (a file, or the embedded default),
 * starts DPDK and the PMD threads, applies the config through the same code
 * as the control socket, then serves the control socket until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <rte_eal.h>

#include "config.h"
#include "ctl_methods.h"
#include "ctl_server.h"
#include "datapath.h"
#include "eal.h"
#include "fsutil.h"
#include "log.h"
#include "mac_table.h"
#include "ovs_attach.h"
#include "vhost_net.h"
#include "vhost_scsi.h"
#include "vhostd_version.h"

extern const char vhostd_default_config[];

static void
usage(FILE *f)
{
	fprintf(f, "usage: vhostd [-c CONFIG.json] [--check] [--no-huge] [--version]\n"
		   "  -c, --config FILE  configuration file (default: the embedded default,\n"
		   "                     see configs/vhostd.json)\n"
		   "      --check        validate the configuration and exit\n"
		   "      --no-huge      run without hugepages (development only)\n"
		   "      --print-default-config\n"
		   "  -V, --version\n");
}

static char *
read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long len;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && len < (16 << 20) &&
		fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc(len + 1);
		if (buf != NULL && fread(buf, 1, len, f) == (size_t)len) {
			buf[len] = '\0';
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	if (buf == NULL)
		snprintf(err, errlen, "%s: cannot read (not a regular file below 16 MiB?)", path);
	return buf;
}

/* The signals the main loop takes from its signalfd. */
static void
handled_signals(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGHUP);
}

static int
event_loop(struct ctl_server *ctl)
{
	struct itimerspec one_second = {{1, 0}, {1, 0}};
	int ep, sfd, tfd;
	sigset_t mask;

	handled_signals(&mask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || tfd < 0 || ep < 0 || timerfd_settime(tfd, 0, &one_second, NULL) < 0) {
		VLOG_ERR("main loop: %s", strerror(errno));
		return -errno;
	}
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &(struct epoll_event){.events = EPOLLIN, .data.fd = sfd});
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &(struct epoll_event){.events = EPOLLIN, .data.fd = tfd});
	epoll_ctl(ep, EPOLL_CTL_ADD, vhost_net_event_fd(),
		&(struct epoll_event){.events = EPOLLIN, .data.fd = vhost_net_event_fd()});
	epoll_ctl(ep, EPOLL_CTL_ADD, vhost_scsi_event_fd(),
		&(struct epoll_event){.events = EPOLLIN, .data.fd = vhost_scsi_event_fd()});
	epoll_ctl(ep, EPOLL_CTL_ADD, ctl_server_fd(ctl),
		&(struct epoll_event){.events = EPOLLIN, .data.fd = ctl_server_fd(ctl)});
	/* OVSDB client (ovs-plugin): socket and timers behind one descriptor. */
	if (ovs_fd() >= 0)
		epoll_ctl(ep, EPOLL_CTL_ADD, ovs_fd(),
			&(struct epoll_event){.events = EPOLLIN, .data.fd = ovs_fd()});
	for (;;) {
		struct epoll_event ev[4];
		int n = epoll_wait(ep, ev, 4, -1);

		if (n < 0 && errno == EINTR)
			continue;
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;

			if (fd == sfd) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP)
					continue; /* no reload: use the control socket */
				VLOG_INFO("signal %u: shutting down", si.ssi_signo);
				close(ep);
				close(sfd);
				close(tfd);
				return 0;
			} else if (fd == tfd) {
				uint64_t ticks;

				if (read(tfd, &ticks, sizeof(ticks)) != sizeof(ticks))
					continue;
				__atomic_add_fetch(&mac_clock_s, (uint32_t)ticks, __ATOMIC_RELAXED);
				dp_lock();
				for (int b = 0; b < DP_MAX_BRIDGES; b++)
					if (dp.bridges[b] != NULL)
						mac_table_age(dp.bridges[b]->macs);
				dp_unlock();
				vhost_scsi_tick();
				/* Queue loads for pmd.show and the rebalance. */
				dp_sched_tick();
			} else if (fd == vhost_net_event_fd()) {
				vhost_net_handle_events();
			} else if (fd == vhost_scsi_event_fd()) {
				vhost_scsi_handle_events();
			} else if (fd == ovs_fd()) {
				ovs_process();
			} else {
				ctl_server_process(ctl);
			}
		}
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 'k'},
		{"no-huge", no_argument, NULL, 'n'},
		{"print-default-config", no_argument, NULL, 'p'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct daemon_conf d;
	struct ctl_server *ctl = NULL;
	struct ctl_error err = {0};
	const char *config_path = NULL;
	char *text, msg[512];
	bool check = false, no_huge = false;
	json_t *doc;
	sigset_t mask;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'n':
			no_huge = true;
			break;
		case 'p':
			fputs(vhostd_default_config, stdout);
			return 0;
		case 'V':
			printf("vhostd %s\n", VHOSTD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	memset(&d, 0, sizeof(d));
	if (config_path != NULL) {
		text = read_file(config_path, msg, sizeof(msg));
		if (text == NULL) {
			fprintf(stderr, "vhostd: %s\n", msg);
			return 1;
		}
	} else {
		text = strdup(vhostd_default_config);
	}
	doc = config_parse_text(text, config_path ? config_path : "embedded default config", &err);
	free(text);
	if (doc == NULL || config_parse_daemon(doc, &d, &err) < 0 ||
		config_apply(doc, &d, true, &err) < 0) {
		fprintf(stderr, "vhostd: %s\n", err.message);
		json_decref(doc);
		return 1;
	}
	if (config_path != NULL && realpath(config_path, d.config_path) == NULL)
		snprintf(d.config_path, sizeof(d.config_path), "%s", config_path);
	if (check) {
		printf("vhostd: %s: configuration is valid\n",
			config_path ? config_path : "embedded default config");
		json_decref(doc);
		return 0;
	}
	if (no_huge)
		d.no_huge = true;
	vlog_level = d.log_level;

	/* Signals are taken from a signalfd; every thread inherits the mask. */
	handled_signals(&mask);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = fs_mkdir_p(d.run_dir);
	if (rc < 0) {
		fprintf(stderr, "vhostd: cannot create run-dir %s: %s\n", d.run_dir, strerror(-rc));
		return 1;
	}
	rc = eal_start(&d, argv[0], msg, sizeof(msg));
	if (rc < 0) {
		fprintf(stderr, "vhostd: %s\n", msg);
		return 1;
	}
	rc = dp_init();
	if (rc == 0)
		rc = ctl_server_create(&ctl, d.ctl_socket, 0660, d.ctl_group);
	if (rc < 0) {
		VLOG_ERR("control socket %s: %s%s", d.ctl_socket, strerror(-rc),
			rc == -EADDRINUSE ? " (another vhostd is running?)" : "");
		rte_eal_cleanup();
		return 1;
	}
	ctl_methods_register(ctl, &d);
	ovs_methods_register(ctl, &d);
	rc = config_apply(doc, &d, false, &err);
	json_decref(doc);
	if (rc < 0) {
		VLOG_ERR("config: %s", err.message);
		dp_shutdown();
		ctl_server_destroy(ctl);
		rte_eal_cleanup();
		return 1;
	}
	VLOG_INFO("vhostd %s ready; control socket %s", VHOSTD_VERSION, d.ctl_socket);
	event_loop(ctl);

	ovs_shutdown();
	dp_shutdown();
	ctl_server_destroy(ctl);
	rte_eal_cleanup();
	VLOG_INFO("stopped");
	return 0;
}
