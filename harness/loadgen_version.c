/* loadgen_version.c - the only loadgen object rebuilt when `git describe` changes (loadgen.mk). */
#include "loadgen.h"

#ifndef LOADGEN_VERSION
#define LOADGEN_VERSION "unknown"
#endif
#ifndef LOADGEN_COMMIT
#define LOADGEN_COMMIT "unknown"
#endif

const char loadgen_version[] = LOADGEN_VERSION;
const char loadgen_commit[] = LOADGEN_COMMIT;
