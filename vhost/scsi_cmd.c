/* SPDX-License-Identifier: BSD-3-Clause */
/* Stub: being written (see scsi_cmd.h). */
#include "scsi_cmd.h"
