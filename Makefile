# c10k-lab build. `make` builds every server and the load generator into bin/;
# `make test` installs what is missing, builds, and runs every test suite;
# `make SANITIZE=address,undefined` (or thread) builds into build/san-*/ instead.

# Every server; the conformance suite and the benchmark harness discover servers from this list.
SERVERS := iterative epoll-lt fork-per-conn prefork prefork-fdpass thread-per-conn thread-pool prethread select poll epoll-et libuv io-uring \
    multi-reactor reuseport leader-follower reactor-workers coroutine actor csp
# Servers with threads, which also get a ThreadSanitizer build in `make test`.
THREADED_SERVERS := thread-per-conn thread-pool prethread multi-reactor reuseport leader-follower reactor-workers actor csp
# Servers that serve one connection at a time; the conformance suite skips its concurrency cases.
SERIAL_SERVERS := iterative
# Servers that serve a fixed number of connections at once (a pool of processes); the suite skips
# its case that holds 100 connections at the descriptor limit.
BOUNDED_SERVERS := prefork prefork-fdpass
# How the conformance suite runs the servers: NAME, or NAME:FLAG,FLAG... for one configuration.
# Every accept discipline is run; a pool gets enough workers for the cases with three clients at
# once, and the thread pools enough threads to reach the descriptor limit of 64.
CONFORMANCE := iterative epoll-lt epoll-lt:--defer-accept=1 epoll-lt:--accept-hold=0 fork-per-conn \
    prefork:--workers=4 prefork:--workers=4,--accept-lock=flock prefork:--workers=4,--accept-lock=mutex \
    prefork-fdpass:--workers=4 thread-per-conn thread-pool:--threads=128 \
    prethread:--threads=128 prethread:--threads=128,--accept-lock=mutex \
    select poll epoll-et libuv io-uring \
    multi-reactor:--threads=3 multi-reactor:--threads=3,--balance=least \
    reuseport:--threads=3 reuseport:--threads=3,--listen=shared reuseport:--threads=3,--listen=exclusive \
    leader-follower:--threads=3 \
    reactor-workers:--workers=4 reactor-workers:--workers=4,--handoff=splice reactor-workers:--workers=4,--handoff=ring \
    coroutine actor:--threads=2,--workers=4 csp:--workers=4 \
    epoll-et:--defer-accept=1 poll:--defer-accept=1 select:--defer-accept=1 \
    multi-reactor:--threads=3,--defer-accept=1 coroutine:--defer-accept=1 epoll-et:--accept-hold=0

# Configurations that differ from another one in this list only in how threads synchronise (a
# balance rule, a listener mode, a locked hand-off): the plain build runs them, the sanitizer
# builds run the others only, so `make test` stays within its time budget. (The lock-free ring of
# reactor-workers is not among them: it is the one TSan most needs to see.) The --defer-accept
# configurations are plain-only too, but epoll-lt's, which the sanitizers run, and so are epoll-lt
# and epoll-et without their accept hold (the same loops, without the read at accept).
CONFORMANCE_PLAIN_ONLY := epoll-lt:--accept-hold=0 epoll-et:--accept-hold=0 \
    multi-reactor:--threads=3,--balance=least \
    reuseport:--threads=3,--listen=shared reuseport:--threads=3,--listen=exclusive \
    reactor-workers:--workers=4,--handoff=splice \
    epoll-et:--defer-accept=1 poll:--defer-accept=1 select:--defer-accept=1 \
    multi-reactor:--threads=3,--defer-accept=1 coroutine:--defer-accept=1

CC := gcc
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
            -Wmissing-prototypes -Wpointer-arith -Wvla
CFLAGS := -std=c11 -O2 -g $(WARNINGS) -D_GNU_SOURCE -pthread -MMD -MP
LDFLAGS := -pthread
# For experiments and perfcheck's self-test (-DC10K_INJECT_NS=N: a busy wait per request).
EXTRA_CFLAGS ?=
CFLAGS += $(EXTRA_CFLAGS)
LDLIBS :=

comma := ,
SANITIZE ?=
ifeq ($(SANITIZE),)
  BUILD := build
  BINDIR := bin
else
  BUILD := build/san-$(subst $(comma),-,$(SANITIZE))
  BINDIR := $(BUILD)/bin
  CFLAGS += -O1 -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=$(SANITIZE)
endif
OBJ := $(BUILD)/obj

# The coroutines (coro.c) need libboost_context: only the servers built on them link it, and the
# processes and channels built on the coroutines (scheduler.c, chan.c) with it.
CORO_OBJS := $(OBJ)/servers/common/coro.o
CSP_OBJS := $(CORO_OBJS) $(OBJ)/servers/common/scheduler.o $(OBJ)/servers/common/chan.o
COMMON_SRCS := $(filter-out servers/common/coro.c servers/common/scheduler.c servers/common/chan.c,$(wildcard servers/common/*.c))
COMMON_OBJS := $(COMMON_SRCS:%.c=$(OBJ)/%.o)
SERVER_BINS := $(SERVERS:%=$(BINDIR)/%)

.PHONY: all servers deps test fuzz clean print-servers print-threaded-servers print-serial-servers print-bounded-servers print-conformance print-conformance-plain-only print-cflags \
        bench bench-quick bench-netns bench-switch bench-ring figures grade plots perfcheck perfcheck-power
all: servers $(BINDIR)/coro-switch $(BINDIR)/ring-bench $(BINDIR)/conn-cost

servers: $(SERVER_BINS)

# The version string is compiled into one object, rebuilt only when `git describe` changes.
$(BUILD)/version.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(OBJ)/servers/common/version.o: $(BUILD)/version.txt
$(OBJ)/servers/common/version.o: CFLAGS += -DC10K_VERSION='"$(VERSION)"'
.PHONY: FORCE
FORCE:

# Keep objects that only pattern rules mention; make would otherwise delete them as intermediate.
.SECONDARY:

$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BINDIR)/%: $(OBJ)/servers/%.o $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SERVER_LIBS_$*)

# A server's own libraries, linked into that server alone; the packages that provide them.
SERVER_LIBS_libuv := -luv
SERVER_LIBS_io-uring := -luring
SERVER_LIBS_coroutine := -lboost_context
$(BINDIR)/coroutine: $(CORO_OBJS)
SERVER_LIBS_csp := -lboost_context
$(BINDIR)/csp: $(CSP_OBJS)
SERVER_HEADER_libuv := uv.h
SERVER_HEADER_io-uring := liburing.h
SERVER_PACKAGE_libuv := libuv1-dev
SERVER_PACKAGE_io-uring := liburing-dev
# Without the library's headers the compiler's error would hide the fix: say which package and
# that `make deps` installs it.
$(OBJ)/servers/libuv.o $(OBJ)/servers/io-uring.o: $(OBJ)/servers/%.o: servers/%.c
	@echo '#include <$(SERVER_HEADER_$*)>' | $(CC) -E -x c - >/dev/null 2>&1 || \
	    { echo "bin/$*: needs $(SERVER_PACKAGE_$*), which is not installed: run 'make deps'" \
	           "(or apt-get install $(SERVER_PACKAGE_$*))" >&2; exit 1; }
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# What one coroutine switch costs with each candidate (docs/coroutine.md): fcontext, ucontext, libpcl.
$(OBJ)/harness/coro_switch.o: CFLAGS += -Iservers/common
$(BINDIR)/coro-switch: $(OBJ)/harness/coro_switch.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lboost_context -lpcl
bench-switch: $(BINDIR)/coro-switch
	taskset -c $(or $(CPU),0) $(BINDIR)/coro-switch

# The Disruptor-style ring against a locked queue and a channel, one producer and one consumer (docs/actor.md):
# pinned to CPUs 0 and 1 (PRODUCER_CPU=, CONSUMER_CPU= to change), batch sizes 1 to 256.
$(OBJ)/harness/ring_bench.o: CFLAGS += -Iservers/common
$(BINDIR)/ring-bench: $(OBJ)/harness/ring_bench.o $(CSP_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lboost_context
bench-ring: $(BINDIR)/ring-bench
	$(BINDIR)/ring-bench $(if $(PRODUCER_CPU),--producer-cpu $(PRODUCER_CPU)) $(if $(CONSUMER_CPU),--consumer-cpu $(CONSUMER_CPU))

# What a new connection's own flow of control costs: fork, pthread_create, a pool hand-off, and fork
# against the parent's resident memory (make figures, figure 2).
$(BINDIR)/conn-cost: $(OBJ)/harness/conn_cost.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^

print-servers:
	@echo $(SERVERS)
print-threaded-servers:
	@echo $(THREADED_SERVERS)
print-serial-servers:
	@echo $(SERIAL_SERVERS)
print-bounded-servers:
	@echo $(BOUNDED_SERVERS)
print-conformance:
	@echo $(CONFORMANCE)
print-conformance-plain-only:
	@echo $(CONFORMANCE_PLAIN_ONLY)
print-cflags:
	@echo $(CFLAGS)

# Installs the Debian packages the suite needs; a no-op (< 2 s) when all are present.
deps:
	@./harness/deps.sh

# --- tests -------------------------------------------------------------------------------------
TEST_BIN := build/tests

$(TEST_BIN)/test_http: tests/test_http.c $(OBJ)/servers/common/http.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iservers/common -o $@ $^ $(LDFLAGS)

# The connection core, driven with no socket at all; linked with the objects of servers/common
# (of the sanitizer build too: build/san-*/tests/test_conn).
$(BUILD)/tests/test_conn: tests/test_conn.c $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iservers/common -o $@ $^ $(LDFLAGS)

# The coroutines, on their own (of the sanitizer build too: build/san-*/tests/test_coro).
$(BUILD)/tests/test_coro: tests/test_coro.c $(CORO_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iservers/common -o $@ $(filter %.c %.o,$^) $(LDFLAGS) -lboost_context

# The channels and the processes of the CSP server (plain, ASan+UBSan and TSan builds).
$(BUILD)/tests/test_chan: tests/test_chan.c $(CSP_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iservers/common -o $@ $(filter %.c %.o,$^) $(LDFLAGS) -lboost_context

# A fault injector for tests/family.py: every Nth epoll_ctl(EPOLL_CTL_ADD) fails with ENOSPC.
$(TEST_BIN)/epoll_ctl_fails.so: tests/epoll_ctl_fails.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

# libFuzzer target, built with clang; the parser is compiled in with the fuzzer's instrumentation.
FUZZ_FLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -Iservers/common -fsanitize=fuzzer,address,undefined
$(TEST_BIN)/fuzz_http: tests/fuzz_http.c servers/common/http.c servers/common/http.h servers/common/http_syntax.h
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -o $@ tests/fuzz_http.c servers/common/http.c

FUZZ_SECONDS ?= 60
fuzz: $(TEST_BIN)/fuzz_http
	@mkdir -p build/fuzz-corpus
	$(TEST_BIN)/fuzz_http -max_total_time=$(FUZZ_SECONDS) -max_len=9000 build/fuzz-corpus tests/fuzz-corpus/http

test: deps
	@./tests/run.sh

bench bench-quick:
	@./run_all.sh $(if $(filter bench-quick,$@),--quick)

# One scenario with the load from three hosts (namespace hosts here; docs/distributed.md).
bench-netns:
	@./harness/bench-netns.sh $(BENCH_ARGS)

# Base against candidate, side by side: did anything get slower? (docs/perfcheck.md)
BASE ?= HEAD~1
perfcheck: deps
	@python3 harness/perfcheck --base $(BASE) $(PERFCHECK_ARGS)

# How often perfcheck catches an injected 3 % and 10 % slowdown, and its false alarms on A/A:
# 20 whole runs per level (about 25 minutes; POWER_ARGS="--runs 5" for a quick look).
perfcheck-power: deps
	@python3 harness/perfcheck-power $(POWER_ARGS)

# The teaching figures (docs/figures.md): measured here, written to docs/figures/ (FIGURES=1,4 or
# FIGURES="c10k mix" picks some).
figures: deps all
	@python3 harness/figures.py $(if $(FIGURES),--figures "$(FIGURES)")

# An exercise's autograder (docs/teaching/): make grade EX=1 [SOURCE=my-echo.c]; exit 0 on full marks.
grade:
	@test -n "$(EX)" || { echo "usage: make grade EX=N [SOURCE=FILE] (exercises: $(notdir $(wildcard docs/teaching/exercises/*)))" >&2; exit 2; }
	@grader=$$(ls docs/teaching/exercises/$(EX)-*/grade.py 2>/dev/null | head -1); \
	test -n "$$grader" || { echo "make grade: no exercise $(EX) (exercises: $(notdir $(wildcard docs/teaching/exercises/*)))" >&2; exit 2; }; \
	python3 "$$grader" $(SOURCE)

# Redraws the plots and the report of a finished run from its results.json, measuring nothing.
RUN ?= results/latest
plots:
	@python3 harness/report.py $(RUN)

clean:
	rm -rf bin build

-include harness/loadgen.mk
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
