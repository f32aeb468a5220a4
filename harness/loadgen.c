/* loadgen.c - one run of c10k-lab's HTTP/1.1 load generator (bin/loadgen's main is in
 * loadgen_main.c; bin/loadgen-mpi runs the same in one process per host, loadgen_mpi.c).
 *
 * loadgen_run() parses the options, raises the descriptor limit, starts one worker thread per -t (each
 * runs its own epoll loop over its share of the connections, see loadgen_engine.c), prints a
 * progress line per second, and after joining the threads adds their counters and histograms up
 * for the report. The threads share nothing while running but the start and end times and a stop
 * flag, so there is no lock anywhere on the request path. See docs/loadgen.md. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

/* Descriptors loadgen needs besides its connections: stdio, one epoll per thread, the JSON file. */
#define SPARE_DESCRIPTORS 16

const char *const error_class_names[ERROR_CLASSES] = {
    "connect", "read", "write", "timeout", "reset", "parse", "status", "body",
};

static volatile sig_atomic_t interrupted;

bool loadgen_interrupted(void)
{
    return interrupted;
}

static void on_signal(int signal_number)
{
    (void)signal_number;
    interrupted = 1;
}

static void install_signals(void)
{
    struct sigaction action = {.sa_handler = SIG_IGN};
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGPIPE, &action, NULL) != 0) {
        perror("loadgen: sigaction(SIGPIPE)");
        exit(1);
    }
    /* No SA_RESTART: the main thread's sleep must end at Ctrl-C. The handler stays installed:
     * `timeout` and a shell may both deliver the same Ctrl-C, and the second must not kill the
     * process before it has reported. */
    action.sa_handler = on_signal;
    action.sa_flags = 0;
    if (sigaction(SIGINT, &action, NULL) != 0 || sigaction(SIGTERM, &action, NULL) != 0) {
        perror("loadgen: sigaction");
        exit(1);
    }
}

/* Raises the soft descriptor limit as far as the hard limit allows, and says so when the
 * connections asked for cannot all be open at once (they then fail as connect errors). */
static void raise_nofile(const struct config *config, struct result *result)
{
    uint64_t needed = (uint64_t)config->connections + (uint64_t)config->idle + (uint64_t)config->threads +
                      SPARE_DESCRIPTORS;
    result->nofile_needed = needed;
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        perror("loadgen: getrlimit(RLIMIT_NOFILE)");
        return;
    }
    if (limit.rlim_cur < needed && limit.rlim_cur < limit.rlim_max) {
        struct rlimit raised = {.rlim_cur = needed < limit.rlim_max ? needed : limit.rlim_max, .rlim_max = limit.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) != 0)
            perror("loadgen: setrlimit(RLIMIT_NOFILE)");
        else
            limit = raised;
    }
    result->nofile_soft = limit.rlim_cur;
    result->nofile_hard = limit.rlim_max;
    if (limit.rlim_cur < needed)
        fprintf(stderr,
                "loadgen: -c %d + --idle %d need about %llu descriptors, but RLIMIT_NOFILE allows %llu "
                "(hard limit %llu); connections beyond it will fail as connect errors\n",
                config->connections, config->idle, (unsigned long long)needed,
                (unsigned long long)limit.rlim_cur, (unsigned long long)limit.rlim_max);
}

static void add_counters(struct counters *to, const struct counters *from)
{
    to->intended += from->intended;
    to->started += from->started;
    to->completed += from->completed;
    to->failed += from->failed;
    to->in_flight_at_end += from->in_flight_at_end;
    to->unsent_at_end += from->unsent_at_end;
    for (int i = 0; i < ERROR_CLASSES; i++)
        to->errors[i] += from->errors[i];
    to->connect_errors_without_request += from->connect_errors_without_request;
    to->censored += from->censored;
}

/* Adds one thread's histograms and counts of each path to the total's path and to its all-path
 * histograms (service time and send lag exist in open loop only). */
static int add_paths(struct run_stats *total, const struct run_stats *stats, const struct config *config)
{
    bool open_loop = config->rate > 0;
    for (int p = 0; p < config->path_count; p++) {
        struct path_stats *to = &total->paths[p];
        const struct path_stats *from = &stats->paths[p];
        if (hdr_add(&to->response, &from->response) != 0 || hdr_add(&total->response, &from->response) != 0)
            return -EINVAL;
        if (open_loop && (hdr_add(&to->service, &from->service) != 0 || hdr_add(&to->lag, &from->lag) != 0 ||
                          hdr_add(&total->service, &from->service) != 0 || hdr_add(&total->lag, &from->lag) != 0))
            return -EINVAL;
        to->failed += from->failed;
        to->censored += from->censored;
        to->in_flight_at_end += from->in_flight_at_end;
    }
    return 0;
}

/* Adds every thread's statistics into result->total and builds the merged timeline. */
static int merge(struct worker *workers, int count, struct result *result)
{
    const struct config *config = result->config;
    struct run_stats *total = &result->total;
    int64_t finished = 0;
    for (int t = 0; t < count; t++) {
        const struct run_stats *stats = &workers[t].stats;
        add_counters(&total->measured, &stats->measured);
        add_counters(&total->warmup, &stats->warmup);
        total->bytes_read += stats->bytes_read;
        total->bytes_written += stats->bytes_written;
        total->connections_opened += stats->connections_opened;
        total->closed_by_server += stats->closed_by_server;
        if (add_paths(total, stats, config) != 0)
            return -EINVAL;
        total->idle.requested += stats->idle.requested;
        total->idle.established += stats->idle.established;
        total->idle.failed += stats->idle.failed;
        total->idle.closed_by_peer += stats->idle.closed_by_peer;
        total->idle.open_at_end += stats->idle.open_at_end;
        if (stats->idle.setup_s > total->idle.setup_s)
            total->idle.setup_s = stats->idle.setup_s;
        worker_add_fairness(&workers[t], &result->fairness);
        total->cpu_user_s += stats->cpu_user_s;
        total->cpu_sys_s += stats->cpu_sys_s;
        if (workers[t].finished_ns > finished)
            finished = workers[t].finished_ns;
    }
    double duration = (double)(finished - workers[0].control->measure_ns) / 1e9;
    result->duration_s = duration > 0 ? duration : 0;

    /* The timeline covers the seconds actually run (all of them unless interrupted), up to its
     * cap. */
    size_t seconds = workers[0].stats.timeline.second_count;
    size_t run_seconds = (size_t)ceil(result->duration_s);
    if (run_seconds < seconds)
        seconds = run_seconds;
    size_t paths = (size_t)config->path_count;
    result->timeline = calloc(seconds ? seconds : 1, sizeof *result->timeline);
    result->timeline_paths = calloc(seconds ? seconds * paths : 1, sizeof *result->timeline_paths);
    const struct timeline **timelines = calloc((size_t)count, sizeof *timelines);
    if (result->timeline == NULL || result->timeline_paths == NULL || timelines == NULL) {
        free(timelines);
        return -ENOMEM;
    }
    result->timeline_len = seconds;
    for (int t = 0; t < count; t++)
        timelines[t] = &workers[t].stats.timeline;
    int error = timeline_merge(timelines, count, seconds, result->timeline, result->timeline_paths);
    free(timelines);
    return error;
}

/* One line a second on stderr: what the threads have published since the last line. */
static void print_progress(struct worker *workers, int count, int64_t since_start_ns, uint64_t *last_done,
                           uint64_t *last_errors, double interval_s)
{
    uint64_t done = 0, errors = 0, open = 0;
    for (int t = 0; t < count; t++) {
        done += atomic_load_explicit(&workers[t].progress_done, memory_order_relaxed);
        errors += atomic_load_explicit(&workers[t].progress_errors, memory_order_relaxed);
        open += atomic_load_explicit(&workers[t].progress_open, memory_order_relaxed);
    }
    fprintf(stderr, "loadgen: %6.1fs  %10.0f req/s  %8llu errors  %6llu connections open\n",
            (double)since_start_ns / 1e9, (double)(done - *last_done) / interval_s,
            (unsigned long long)(errors - *last_errors), (unsigned long long)open);
    *last_done = done;
    *last_errors = errors;
}

/* --phase-fd: tells a driver (bench.py) when the measured window begins and ends, so it samples
 * the server's counters around the window rather than around the whole run. */
struct phase_announcer {
    int fd;                       /* -1: no --phase-fd, or given up after a failed write */
};

/* Writes one line. The reader may have gone (EPIPE: SIGPIPE is ignored) or stopped reading; the
 * run matters more than the line, so a failure is reported once and the descriptor dropped. A
 * descriptor that is not writable at once (a full pipe, a stopped terminal) counts as a failure:
 * blocking here would hold the main thread past the end of the window. */
static void phase_announce(struct phase_announcer *phase, const char *line)
{
    if (phase->fd < 0)
        return;
    const char *problem = NULL;
    size_t len = strlen(line), written = 0;
    while (written < len && problem == NULL) {
        struct pollfd ready = {.fd = phase->fd, .events = POLLOUT};
        int polled = poll(&ready, 1, 0);
        if (polled < 0 && errno == EINTR)
            continue;
        if (polled < 0) {
            problem = strerror(errno);
            break;
        }
        if (polled == 0) {
            problem = "not writable (nobody reading?)";
            break;
        }
        ssize_t n = write(phase->fd, line + written, len - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            problem = strerror(errno);
        else if (n == 0)
            problem = "wrote nothing";
        else
            written += (size_t)n;
    }
    if (problem != NULL) {
        fprintf(stderr, "loadgen: --phase-fd %d: cannot write \"%.*s\": %s; no more phase lines\n", phase->fd,
                (int)(len - 1), line, problem);
        close(phase->fd);
        phase->fd = -1;
    }
}

static void phase_close(struct phase_announcer *phase)
{
    if (phase->fd >= 0 && close(phase->fd) != 0)
        fprintf(stderr, "loadgen: --phase-fd %d: close: %s\n", phase->fd, strerror(errno));
    phase->fd = -1;
}

static void sleep_until(int64_t deadline_ns)
{
    struct timespec deadline = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    /* Returns early (EINTR) on a signal, which is what the caller wants. */
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
}

int loadgen_run(int argc, char **argv, struct cluster *cluster)
{
    struct config config;
    options_parse(argc, argv, &config);
    if (cluster != NULL)
        cluster->share(cluster, &config);
    install_signals();

    struct result result = {.config = &config};
    raise_nofile(&config, &result);
    time_t wall = time(NULL);
    struct tm utc;
    if (gmtime_r(&wall, &utc) == NULL || strftime(result.started_at, sizeof result.started_at, "%Y-%m-%dT%H:%M:%SZ", &utc) == 0)
        strcpy(result.started_at, "unknown");

    struct run_control control = {0};
    atomic_init(&control.stop, false);
    if (pthread_barrier_init(&control.ready, NULL, (unsigned)config.threads + 1) != 0 ||
        pthread_barrier_init(&control.go, NULL, (unsigned)config.threads + 1) != 0) {
        fprintf(stderr, "loadgen: pthread_barrier_init failed\n");
        return 1;
    }
    struct worker *workers = calloc((size_t)config.threads, sizeof *workers);
    if (workers == NULL || run_stats_init(&result.total, &config, true) != 0) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    for (int t = 0; t < config.threads; t++) {
        int error = worker_init(&workers[t], t, &config, &control);
        if (error != 0) {
            fprintf(stderr, "loadgen: setting up thread %d: %s\n", t, strerror(-error));
            return 1;
        }
    }

    /* The workers never see SIGINT/SIGTERM; the main thread handles them. */
    sigset_t blocked, previous;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &blocked, &previous) != 0) {
        fprintf(stderr, "loadgen: pthread_sigmask failed\n");
        return 1;
    }
    for (int t = 0; t < config.threads; t++) {
        int error = pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]);
        if (error != 0) {
            fprintf(stderr, "loadgen: pthread_create: %s\n", strerror(error));
            return 1;
        }
    }
    if (pthread_sigmask(SIG_SETMASK, &previous, NULL) != 0) {
        fprintf(stderr, "loadgen: pthread_sigmask failed\n");
        return 1;
    }

    /* Idle connections are set up before the clock starts, so they do not eat into the run. */
    pthread_barrier_wait(&control.ready);
    /* Every process's warm-up starts together (bin/loadgen-mpi); one that cannot start stops. */
    if (cluster != NULL && !interrupted && !cluster->start(cluster))
        interrupted = 1;
    control.start_ns = now_ns();
    control.measure_ns = control.start_ns + (int64_t)llround(config.warmup_s * 1e9);
    control.end_ns = control.measure_ns + (int64_t)llround(config.duration_s * 1e9);
    pthread_barrier_wait(&control.go);

    bool progress = !config.quiet && (config.progress || isatty(STDERR_FILENO));
    struct phase_announcer phase = {.fd = config.phase_fd};
    bool measure_announced = false;
    uint64_t last_done = 0, last_errors = 0;
    int64_t tick = control.start_ns;
    while (!interrupted) {
        int64_t next_tick = tick + 1000000000;
        int64_t wake = next_tick < control.end_ns ? next_tick : control.end_ns;
        /* The window's start is announced when it comes, not at the next progress tick. */
        if (!measure_announced && control.measure_ns < wake)
            wake = control.measure_ns;
        sleep_until(wake);
        int64_t now = now_ns();
        if (!measure_announced && now >= control.measure_ns) {
            phase_announce(&phase, "measure\n");
            measure_announced = true;
            if (cluster != NULL && config.warmup_s > 0)
                cluster->window(cluster);
        }
        if (interrupted || now >= control.end_ns)
            break;
        if (now >= next_tick) {
            if (cluster != NULL)
                cluster->tick(cluster);
            if (progress)
                print_progress(workers, config.threads, now - control.start_ns, &last_done, &last_errors,
                               (double)(now - tick) / 1e9);
            tick = now;
        }
    }
    if (interrupted) {
        atomic_store(&control.stop, true);
        result.interrupted = true;
    }
    /* Before the join: closing 10 000 idle connections and merging take a while, and none of it
     * belongs to the window. After an interruption "end" comes too (perhaps without "measure"). */
    phase_announce(&phase, "end\n");
    phase_close(&phase);
    for (int t = 0; t < config.threads; t++) {
        int error = pthread_join(workers[t].thread, NULL);
        if (error != 0)
            fprintf(stderr, "loadgen: pthread_join: %s\n", strerror(error));
    }

    int status = 0;
    if (merge(workers, config.threads, &result) != 0) {
        fprintf(stderr, "loadgen: out of memory merging the results\n");
        return 1;
    }
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) == 0) {
        result.process_user_s = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6;
        result.process_sys_s = (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
    }
    /* Several processes: one reports what all measured (or each only its own file, if they could
     * not merge). */
    bool reporter = true;
    if (cluster != NULL) {
        int merged = cluster->finish(cluster, workers, &result);
        if (merged < 0)
            status = 1;
        reporter = merged == 0;
    }
    bool json_to_stdout = config.json_path != NULL && strcmp(config.json_path, "-") == 0;
    if (reporter && !config.quiet)
        report_text(json_to_stdout ? stderr : stdout, &result);
    if (reporter && config.json_path != NULL && report_json(config.json_path, &result) != 0)
        status = 1;
    bool open_loop = config.rate > 0;
    if (!result_accounting_ok(&result.total.measured, open_loop) || !result_accounting_ok(&result.total.warmup, open_loop)) {
        fprintf(stderr, "loadgen: the request accounting does not add up: this is a loadgen bug\n");
        status = 1;
    }

    for (int t = 0; t < config.threads; t++)
        worker_destroy(&workers[t]);
    free(workers);
    free(result.timeline);
    free(result.timeline_paths);
    run_stats_destroy(&result.total);
    pthread_barrier_destroy(&control.ready);
    pthread_barrier_destroy(&control.go);
    options_free(&config);
    return status;
}
