/* loadgen_main.c - bin/loadgen: one process drives the whole load (docs/loadgen.md). */
#include "loadgen.h"

int main(int argc, char **argv)
{
    return loadgen_run(argc, argv, NULL);
}
