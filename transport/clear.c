/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "cbdt.h"
