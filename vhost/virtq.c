/* SPDX-License-Identifier: BSD-3-Clause */
/* Stub: being written (see virtq.h). */
#include "virtq.h"
