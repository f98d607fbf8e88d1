/* SPDX-License-Identifier: BSD-3-Clause */
/* Stub: being written (see lun.h). */
#include "lun.h"
