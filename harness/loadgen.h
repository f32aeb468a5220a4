/* loadgen.h - what the parts of bin/loadgen share: the configuration, the per-thread statistics
 * and the interfaces between loadgen_options.c (the command line), loadgen_engine.c (one epoll
 * loop per thread), loadgen_mix.h (which path a --mix request takes), loadgen_stats.c (histograms
 * and the timeline), loadgen.c (threads, merging) and loadgen_report.c (text and JSON). */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "hdr.h"
#include "loadgen_mix.h"

#define LOADGEN_SCHEMA "c10k-lab/loadgen/2"
#define MAX_EXPECT_STATUS 16
/* Histograms hold microseconds up to an hour; 3 significant digits as the issue asks. */
#define LATENCY_HIGHEST_US INT64_C(3600000000)
#define LATENCY_DIGITS 3
/* The timeline's per-second histograms are coarser: 2 digits, buckets under 0.8 % of their value
 * wide (26 KB of counters instead of 190 KB, and fewer non-empty buckets to keep per second). */
#define TIMELINE_DIGITS 2
/* The timeline covers at most the first hour of the measured window (bounded memory). */
#define MAX_TIMELINE_SECONDS 3600

extern const char loadgen_version[];
extern const char loadgen_commit[];

/* Why a request (or, for connect, a connection attempt) failed. The order is the report's. */
enum error_class {
    ERR_CONNECT, /* socket(), bind() or connect() failed, or a connect was refused or timed out */
    ERR_READ,    /* read() failed, or the server closed before the response was complete */
    ERR_WRITE,   /* write() failed (other than a reset) */
    ERR_TIMEOUT, /* no complete response within --timeout */
    ERR_RESET,   /* ECONNRESET or EPIPE: the server reset the connection */
    ERR_PARSE,   /* the response was malformed (framing, status line, headers) */
    ERR_STATUS,  /* a well-formed response with an unexpected status */
    ERR_BODY,    /* a well-formed response whose body length differs from --expect-bytes */
    ERROR_CLASSES
};
extern const char *const error_class_names[ERROR_CLASSES];

/* One request target. paths[0] is the URL's path; --mix adds the others, in the order given. */
struct request_path {
    char *path;                   /* origin form, starting with '/' */
    int32_t weight;               /* share of the requests, millionths (MIX_WHOLE = 100 %) */
    char *request;                /* one copy of its request (path 0: the start of `request`, not owned) */
    size_t request_len;
};

struct config {
    /* The target. */
    const char *url;
    char *host;                   /* as written in the URL, without brackets */
    char *host_header;            /* HOST[:PORT] as written in the URL */
    int port;
    char *path;                   /* origin form, starting with '/' */
    struct request_path paths[MAX_PATHS];
    int path_count;               /* 1 without --mix */
    struct sockaddr_storage address;
    socklen_t address_len;

    /* Load shape. */
    int connections;
    int threads;
    double duration_s;
    double warmup_s;
    double rate;                  /* requests/s over all connections; 0 = closed loop */
    int pipeline;
    bool close;                   /* a new connection for every request */
    int idle;                     /* extra connections held open and silent */
    double timeout_s;

    /* The request. */
    const char *method;
    long long body_bytes;         /* -1: no body */
    const char **headers;         /* -H values, "Name: value" */
    int header_count;
    uint32_t *sources;            /* --source addresses, network byte order */
    int source_count;

    /* Checks and output. */
    int expect_status[MAX_EXPECT_STATUS];
    int expect_status_count;      /* 0: any 2xx */
    long long expect_bytes;       /* -1: not checked */
    const char *json_path;
    int phase_fd;                 /* --phase-fd: "measure" and "end" are written here; -1: none */
    bool quiet;
    bool progress;

    /* bin/loadgen-mpi: this process is one of cluster_size, and drives its share of the connections
     * and of the rate. Connection numbers are global (this process's k-th connection is
     * cluster_rank + k * cluster_size), so that the open-loop schedules of all processes together
     * are as evenly spaced as one process's. bin/loadgen: rank 0 of 1. */
    int cluster_rank;
    int cluster_size;
    int cluster_connections;      /* -c over all processes */
    double cluster_rate;          /* -R over all processes */

    /* Derived once, read by every thread. */
    char *request;                /* path 0's request `pipeline` times over, so a batch is one write */
    size_t request_len;           /* of one copy */
    size_t longest_request;       /* of all the paths' requests */
    bool head_request;
    int64_t timeout_ns;
};

/* Parses the command line into config (prints the usage and exits 2 on a bad argument). */
void options_parse(int argc, char **argv, struct config *config);
void options_free(struct config *config);

/* Counters over one class of requests (measured or warm-up). "started" counts a request once it
 * is written (or, with --close, once its connection is being opened); every started request ends
 * exactly once as completed or failed, or is still in flight when the run stops. */
struct counters {
    uint64_t intended;            /* open loop: requests whose intended send time has come */
    uint64_t started;
    uint64_t completed;
    uint64_t failed;
    uint64_t in_flight_at_end;
    uint64_t unsent_at_end;       /* open loop: intended but not yet sent when the run stopped */
    uint64_t errors[ERROR_CLASSES];
    uint64_t connect_errors_without_request; /* keep-alive connects: no request was started */
    uint64_t censored;            /* timeouts recorded in the histograms at the timeout value */
};

struct idle_stats {
    uint64_t requested;
    uint64_t established;
    uint64_t failed;              /* could not connect (socket, connect or timeout) */
    uint64_t closed_by_peer;      /* established, then closed by the server during the run */
    uint64_t open_at_end;
    double setup_s;               /* until every idle connect had succeeded or failed */
};

/* Measured requests of one path. Its completed count is response.total - censored, so the hot
 * path records a response once, in its path's histogram. */
struct path_stats {
    struct hdr response;          /* as run_stats.response, for this path */
    struct hdr service;           /* open loop only (closed loop: never allocated) */
    struct hdr lag;
    uint64_t failed;
    uint64_t censored;
    uint64_t in_flight_at_end;
};

/* One path in one second of the timeline: counts, the exact maximum, and the latencies as a
 * sparse copy of that second's histogram (index, count pairs in `struct timeline`'s entries). */
struct second_stats {
    uint64_t completed;
    uint64_t errors;
    int64_t max_us;               /* -1: no latency sample */
    uint32_t first_entry;
    uint32_t entry_count;
};

struct sparse_entry {
    int32_t index;
    uint32_t count;
};

struct timeline {
    struct second_stats *seconds; /* second_count * path_count, one row of paths per second */
    uint64_t *loose_errors;       /* per second: connect errors that failed no request */
    size_t second_count;          /* ceil(-d), at most MAX_TIMELINE_SECONDS */
    bool truncated;               /* -d is longer: later seconds are not recorded */
    int path_count;
    struct sparse_entry *entries;
    size_t entry_count;
    size_t entry_cap;
    struct hdr current[MAX_PATHS]; /* the second being filled, per path (TIMELINE_DIGITS) */
    int64_t current_second;       /* -1: none yet */
    struct second_stats sink;     /* takes the counts of seconds beyond a truncated timeline */
};

struct run_stats {
    struct counters measured;
    struct counters warmup;
    uint64_t bytes_read;          /* during the measured window */
    uint64_t bytes_written;
    uint64_t connections_opened;  /* connects that succeeded, whole run */
    uint64_t closed_by_server;    /* keep-alive connections the server closed between requests */
    /* All paths together; only in the merged total (a thread records per path, below). */
    struct hdr response;          /* latency; from the intended send time in open loop */
    struct hdr service;           /* open loop: from the actual send */
    struct hdr lag;               /* open loop: actual send - intended send */
    struct path_stats paths[MAX_PATHS];
    struct timeline timeline;     /* only in a thread */
    struct idle_stats idle;
    double cpu_user_s;            /* this thread's CPU time in the measured window */
    double cpu_sys_s;
};

/* What the threads share while running. */
struct run_control {
    pthread_barrier_t ready;      /* every thread has set up its idle connections */
    pthread_barrier_t go;         /* the main thread has set the start time */
    int64_t start_ns;
    int64_t measure_ns;           /* start + warm-up: measured samples start here */
    int64_t end_ns;
    atomic_bool stop;             /* Ctrl-C: every thread stops at its next loop */
};

struct conn;
struct idle_conn;
struct fairness;

struct worker {
    int id;
    pthread_t thread;
    const struct config *config;
    struct run_control *control;
    int epoll_fd;
    struct conn *conns;
    uint32_t conn_count;
    uint32_t first_conn;          /* global number of conns[0]; conns[j] is first_conn + j*threads */
    struct idle_conn *idle;
    uint32_t idle_count;
    char *read_buffer;
    size_t read_size;
    uint32_t next_source;
    struct run_stats stats;
    int64_t finished_ns;          /* when the loop stopped (at most end_ns) */
    /* Read by the main thread for the progress line; written with relaxed stores. */
    _Atomic uint64_t progress_done;
    _Atomic uint64_t progress_errors;
    _Atomic uint32_t progress_open;
    /* The engine's private state. */
    struct engine_state *engine;
};

/* loadgen_engine.c */
int worker_init(struct worker *worker, int id, const struct config *config, struct run_control *control);
void *worker_main(void *worker);
void worker_destroy(struct worker *worker);
int64_t now_ns(void);
/* Adds this thread's connections to fairness (after the thread has finished). */
void worker_add_fairness(const struct worker *worker, struct fairness *fairness);

/* Statistics helpers (loadgen_stats.c). A thread's statistics (merged = false) have per-path
 * histograms and a timeline; the merged total (merged = true) has the all-path histograms too. */
int run_stats_init(struct run_stats *stats, const struct config *config, bool merged);
void run_stats_destroy(struct run_stats *stats);
/* Makes `second` the timeline's current second (flushing the one before). Returns false when it is
 * beyond a truncated timeline. Seconds only move forward; a later sample is clamped to the last. */
bool timeline_move_to(struct timeline *timeline, int64_t second);
void timeline_flush(struct timeline *timeline);

/* Records a sample of `path` that ended in `second` of the window (latency_us < 0: an error
 * without a latency) and returns the counts to add it to. Inline: it runs for every response. */
static inline struct second_stats *timeline_record(struct timeline *timeline, int64_t second, int path,
                                                   int64_t latency_us)
{
    if (second != timeline->current_second && !timeline_move_to(timeline, second))
        return &timeline->sink;
    if (latency_us >= 0)
        hdr_record(&timeline->current[path], latency_us);
    return &timeline->seconds[(size_t)timeline->current_second * (size_t)timeline->path_count + (size_t)path];
}

/* The merged result of a run, for the report: one second, of all paths or of one. */
struct timeline_point {
    uint64_t completed;
    uint64_t errors;
    int64_t p50_us;               /* -1 when the second had no latency sample */
    int64_t p99_us;
    int64_t max_us;
};

/* Adds up the threads' timelines: points[s] for all paths, path_points[s * path_count + p] for
 * path p. Returns 0 or -ENOMEM. */
int timeline_merge(const struct timeline *const *timelines, int count, size_t seconds, struct timeline_point *points,
                   struct timeline_point *path_points);

/* The successful responses that arrived in the measured window (whenever their request began:
 * the throughput), and how evenly the server shared them among the connections. A server that
 * serves one connection at a time (the iterative one) shows its latency only for the connection it
 * serves; the others are starved, not fast. Counted per connection, added up after the run. */
struct fairness {
    uint64_t connections;
    uint64_t responses;
    uint64_t served;              /* connections with at least one response in the window */
    uint64_t min_per_connection;
    uint64_t max_per_connection;
    double sum_squares;           /* for Jain's index, responses^2 / (connections * sum_squares) */
};

/* What bin/loadgen-mpi knows of one process (rank) of a run: gathered to rank 0 for the per-host
 * section of the merged result. Sent as bytes: every rank runs the same build. */
struct host_record {
    char host[64];                /* the name it runs on (gethostname), or what the hostfile said */
    int32_t rank;
    int32_t interrupted;          /* stopped early: Ctrl-C, a signal from mpirun, a failed start */
    uint64_t connections;         /* its share of -c and --idle */
    uint64_t idle;
    uint64_t completed;           /* measured requests completed */
    uint64_t responses_in_window;
    uint64_t errors;
    int64_t init_realtime_ns;     /* CLOCK_REALTIME after MPI_Init */
    int64_t start_realtime_ns;    /* after the barrier before the warm-up */
    int64_t window_realtime_ns;   /* after the barrier at the measured window's start; -1: none */
    double cpu_s;                 /* its threads' CPU in the window */
};

/* The "cluster" section of a document: one rank's own (merged = false) or rank 0's merged one. */
struct cluster_report {
    bool merged;
    int size;
    const struct host_record *self;
    const struct host_record *hosts; /* merged: `size` records in rank order */
    int connections_total;
    int idle_total;
    double rate_total;
};

struct result {
    const struct config *config;
    const struct cluster_report *cluster; /* bin/loadgen-mpi only */
    struct run_stats total;       /* counters and histograms of all threads added together */
    struct fairness fairness;     /* over the connections of all threads */
    struct timeline_point *timeline;
    struct timeline_point *timeline_paths; /* timeline_len * path_count */
    size_t timeline_len;
    double duration_s;            /* of the measured window actually run */
    bool interrupted;
    double process_user_s;        /* getrusage(RUSAGE_SELF) at exit: the whole run */
    double process_sys_s;
    uint64_t nofile_soft;
    uint64_t nofile_hard;
    uint64_t nofile_needed;
    char started_at[32];          /* UTC, ISO 8601 */
};

/* bin/loadgen-mpi (loadgen_mpi.c) runs loadgen_run() once per host; these are the points where its
 * processes must agree. bin/loadgen passes no cluster. */
struct cluster {
    /* After the options: turns config into this process's share (cluster_* fields, -c, --idle, -R). */
    void (*share)(struct cluster *cluster, struct config *config);
    /* Every thread has set up its idle connections: waits for the other processes. false: they
     * did not all come in time (the run is then stopped at once, as if interrupted). */
    bool (*start)(struct cluster *cluster);
    /* The measured window begins (called only with a warm-up). */
    void (*window)(struct cluster *cluster);
    /* Once a second while the run lasts. */
    void (*tick)(struct cluster *cluster);
    /* This process's own result is complete. Returns 0 when result now holds the merged result of
     * every process and this process reports it, 1 when another process reports, -1 on failure
     * (what failed is on stderr). */
    int (*finish)(struct cluster *cluster, struct worker *workers, struct result *result);
};

/* loadgen.c: one whole run (what main does); returns the exit status. */
int loadgen_run(int argc, char **argv, struct cluster *cluster);
/* Whether Ctrl-C or SIGTERM came. */
bool loadgen_interrupted(void);

/* loadgen_report.c */
void report_text(FILE *out, const struct result *result);
/* Writes the JSON document; returns 0 or -1 (with a message on stderr). */
int report_json(const char *path, const struct result *result);
bool result_saturated(const struct result *result);
bool result_accounting_ok(const struct counters *counters, bool open_loop);

#endif
