/* version.c - the only object rebuilt when `git describe` changes (see the Makefile). */
#include "options.h"

#ifndef C10K_VERSION
#define C10K_VERSION "unknown"
#endif

const char c10k_version[] = C10K_VERSION;
