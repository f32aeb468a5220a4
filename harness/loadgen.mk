# harness/loadgen.mk - bin/loadgen, bin/loadgen-mpi (where OpenMPI is installed), their test
# servers, tests and benchmark; and bin/floor, the benchmark's reference responder (harness/floor.c,
# docs/floor.md).
# Included at the end of the Makefile, so it uses CC, CFLAGS, LDFLAGS, OBJ, BINDIR, BUILD, VERSION.

# The engine, shared by bin/loadgen (loadgen_main.c) and bin/loadgen-mpi (loadgen_mpi.c).
LOADGEN_SRCS := harness/loadgen.c harness/loadgen_options.c harness/loadgen_engine.c \
                harness/loadgen_stats.c harness/loadgen_report.c harness/loadgen_version.c \
                harness/hdr.c harness/http_response.c
LOADGEN_OBJS := $(LOADGEN_SRCS:%.c=$(OBJ)/%.o)
# OpenMPI's compiler wrapper says where mpi.h and libmpi are; without it there is no loadgen-mpi
# (`make deps` installs it; the Makefile is read before, so the build runs as a second make).
MPICC := $(shell command -v mpicc 2>/dev/null)
LOADGEN_JANSSON_CFLAGS := $(shell pkg-config --cflags jansson 2>/dev/null)
LOADGEN_JANSSON_LIBS := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
LOADGEN_COMMIT := $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
# Test programs go under the build directory (build/tests/loadgen, or build/san-*/tests/loadgen).
LOADGEN_TEST_BIN := $(BUILD)/tests/loadgen

.PHONY: test-loadgen bench-loadgen loadgen-test-programs
all: $(BINDIR)/loadgen $(BINDIR)/floor

$(OBJ)/harness/loadgen_report.o: CFLAGS += $(LOADGEN_JANSSON_CFLAGS)
# Every function starts on a 64-byte line, so the hot loop's place in the instruction cache does not
# depend on the size of whatever code is linked before it. Without this, 32 bytes added to the
# options parser (cold) moved the engine's functions by half a line and changed loadgen's CPU per
# pipelined request by 2 % (perfcheck, 20 simultaneous pairs: +2.1 % or -1.9 %, by which way it
# moved); with it, the same padding changed nothing measurable (+0.3 %, -0.1..+0.7). That was
# enough to make perfcheck warn about loadgen for changes that did not touch the engine.
$(LOADGEN_OBJS): CFLAGS += -falign-functions=64
$(LOADGEN_OBJS): harness/loadgen.mk
# Like servers/common/version.o: the version is compiled into one small object, rebuilt only when
# `git describe` changes.
$(OBJ)/harness/loadgen_version.o: $(BUILD)/version.txt
$(OBJ)/harness/loadgen_version.o: CFLAGS += -DLOADGEN_VERSION='"$(VERSION)"' -DLOADGEN_COMMIT='"$(LOADGEN_COMMIT)"'

# An explicit rule, so the Makefile's pattern rule for servers ($(BINDIR)/%) does not apply.
$(BINDIR)/loadgen: $(LOADGEN_OBJS) $(OBJ)/harness/loadgen_main.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LOADGEN_JANSSON_LIBS) -lm

ifneq ($(MPICC),)
all: $(BINDIR)/loadgen-mpi
$(OBJ)/harness/loadgen_mpi.o: CFLAGS += $(shell $(MPICC) --showme:compile)
$(BINDIR)/loadgen-mpi: $(LOADGEN_OBJS) $(OBJ)/harness/loadgen_mpi.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LOADGEN_JANSSON_LIBS) $(shell $(MPICC) --showme:link) -lm
endif

# The floor is one file that links nothing of servers/common (it is not a server) and is not in
# SERVERS (it does not speak docs/protocol.md, so the conformance suite must not run it).
$(OBJ)/harness/floor.o: $(BUILD)/version.txt
$(OBJ)/harness/floor.o: CFLAGS += -DFLOOR_VERSION='"$(VERSION)"'
$(BINDIR)/floor: $(OBJ)/harness/floor.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $<

$(LOADGEN_TEST_BIN)/test_server: tests/loadgen/test_server.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

$(LOADGEN_TEST_BIN)/test_units: tests/loadgen/test_units.c $(OBJ)/harness/hdr.o $(OBJ)/harness/http_response.o \
                                $(OBJ)/harness/loadgen_stats.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iharness -o $@ $^ $(LDFLAGS) -lm

# Everything tests/loadgen/run.sh needs; it builds this itself when run without `make`.
loadgen-test-programs: $(BINDIR)/loadgen $(BINDIR)/epoll-lt $(BINDIR)/iterative $(LOADGEN_TEST_BIN)/test_server $(LOADGEN_TEST_BIN)/test_units

test-loadgen: loadgen-test-programs
	LOADGEN=$(BINDIR)/loadgen EPOLL_LT=$(BINDIR)/epoll-lt LOADGEN_TEST_BIN=$(LOADGEN_TEST_BIN) tests/loadgen/run.sh

bench-loadgen: $(BINDIR)/loadgen $(BINDIR)/epoll-lt
	LOADGEN=$(BINDIR)/loadgen EPOLL_LT=$(BINDIR)/epoll-lt harness/bench_loadgen.sh
