/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * vhostctl verbs "libvirt import|remove|xml" and "doctor" (kept out of
 * vhostctl.c). argv starts after the verb's first word; the return value is
 * vhostctl's exit status (0, 1 failed, 2 usage).
 */

#ifndef VHOSTD_VHOSTCTL_LIBVIRT_H
#define VHOSTD_VHOSTCTL_LIBVIRT_H

#include <stdbool.h>

#define VHOSTCTL_LIBVIRT_USAGE                                                                     \
	"  libvirt import [--bridge BR] [--ovs-bridge BR] [--dry-run] [--exist-ok] [--hook] "      \
	"FILE|-\n"                                                                                 \
	"                                   create the vhostd objects of a domain XML or\n"        \
	"                                   of <interface>/<qemu:commandline> elements;\n"         \
	"                                   attach the ports it puts on OVS to BR\n"               \
"  libvirt remove [--hook] FILE|-   delete the objects that XML describes\n"               \
	"  libvirt xml NAME...              the XML to paste into a domain for ports\n"            \
	"                                   and scsi controllers\n"                                \
	"  doctor [--root DIR]              host checks with a verdict and a fix each\n"

int vhostctl_libvirt(const char *sock, int timeout_ms, bool json, int argc, char **argv);
int vhostctl_doctor(const char *sock, int timeout_ms, bool json, int argc, char **argv);

#endif /* VHOSTD_VHOSTCTL_LIBVIRT_H */
