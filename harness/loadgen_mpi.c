/* loadgen_mpi.c - bin/loadgen-mpi: bin/loadgen's engine in one process per load host, under mpirun.
 *
 * Every rank runs loadgen_run() with the same options and drives its share of the connections and
 * of the rate (connection numbers are global, so the open-loop schedules of all ranks together
 * are as evenly spaced as one process's). Three moments are collective: a barrier once every rank
 * has set up its idle connections (so the warm-up starts together), a barrier at the measured
 * window's start (which measures how far the ranks have drifted apart), and the merge at the end:
 * counters and HDR histograms (one layout on every rank) summed with MPI_Reduce, extremes with
 * MPI_MIN and MPI_MAX, the per-second timelines gathered to rank 0 and added up there as bin/loadgen
 * adds up its threads', and each host's record gathered for the per-host section. Rank 0 reports.
 *
 * A host can die or vanish mid-run, and a blocking collective would then wait for it forever. So
 * every collective here is non-blocking and polled against a deadline, and each rank writes its own
 * result (--rank-json) before the merge starts. While the run lasts no rank sends another anything:
 * in Open MPI a send to a rank that has died aborts the sender, which would lose its result too.
 * Liveness goes instead through mpirun's own channel: under a driver (--phase-stdout) every rank
 * prints a beat a second, and the driver (harness/loadgen-cluster) notices and names a host whose
 * beats stop. When the merge cannot finish, the driver merges the files that exist into a result
 * marked partial (harness/merge_ranks.py). docs/distributed.md describes it all. */
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

/* How long a rank waits for the others at a collective, beyond the time the run itself needs. */
#define DEFAULT_CLUSTER_TIMEOUT_S 10.0
/* Polling a collective: often enough that the barrier's exit time is known to a few tens of µs. */
#define POLL_INTERVAL_NS 20000
/* Histograms merged: the all-path ones and, per path, response, service and send lag. */
#define MAX_HISTOGRAMS (3 + 3 * MAX_PATHS)

struct mpi_cluster {
    struct cluster hooks;         /* first: loadgen_run() is given &hooks */
    int rank;
    int size;
    const char *rank_json_prefix; /* NULL: no rank file */
    const char *host_names;       /* --host-names: rank i's host is the i-th; NULL: gethostname */
    bool phase_stdout;            /* --phase-stdout: lines for a driver on standard output */
    double timeout_s;
    struct config *config;
    struct host_record self;
    struct host_record *hosts;    /* rank 0: everyone's */
    struct cluster_report own, merged;
    MPI_Request window;
    bool window_pending;
    int beats;
    bool abandoned;               /* a collective was given up: MPI_Finalize could wait forever */
};

static int64_t realtime_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* --phase-stdout: the driver learns at once that this rank has given up on the others. */
static void tell_driver(struct mpi_cluster *cluster)
{
    if (!cluster->phase_stdout)
        return;
    printf("cluster-failed %d\n", cluster->rank);
    fflush(stdout);
}

/* Polls requests until all are complete (true) or the deadline passes, a call fails or the run is
 * interrupted (false, with a message naming what did not finish). */
static bool wait_for(struct mpi_cluster *cluster, MPI_Request *requests, int count, double seconds, const char *what)
{
    int64_t deadline = now_ns() + (int64_t)llround(seconds * 1e9);
    const char *problem = NULL;
    for (;;) {
        int done = 0;
        if (MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            problem = "an MPI call failed";
        else if (done)
            return true;
        else if (loadgen_interrupted())
            problem = "interrupted";
        else if (now_ns() >= deadline)
            problem = "timed out";
        if (problem != NULL)
            break;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = POLL_INTERVAL_NS};
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "loadgen-mpi: rank %d (%s): %s after waiting up to %.1f s for the other ranks: %s\n",
            cluster->rank, cluster->self.host, what, seconds, problem);
    cluster->abandoned = true;
    tell_driver(cluster);
    return false;
}

/* The i-th name of --host-names, into name; false when there is none. */
static bool host_name_of(const struct mpi_cluster *cluster, int rank, char *name, size_t size)
{
    const char *list = cluster->host_names;
    for (int i = 0; list != NULL && i < rank; i++) {
        list = strchr(list, ',');
        if (list != NULL)
            list++;
    }
    if (list == NULL || *list == '\0' || *list == ',')
        return false;
    size_t len = strcspn(list, ",");
    snprintf(name, size, "%.*s", (int)(len < size ? len : size - 1), list);
    return true;
}

/* --phase-stdout: one line a second on mpirun's channel, by which the driver knows this rank and
 * the network to its host are alive. */
static void beat(struct cluster *hooks)
{
    struct mpi_cluster *cluster = (struct mpi_cluster *)hooks;
    if (cluster->phase_stdout) {
        printf("beat %d %d\n", cluster->rank, ++cluster->beats);
        fflush(stdout);
    }
}

static int share_of(int total, int rank, int size)
{
    return total / size + (rank < total % size);
}

static void take_share(struct cluster *hooks, struct config *config)
{
    struct mpi_cluster *cluster = (struct mpi_cluster *)hooks;
    if (config->connections < cluster->size) {
        fprintf(stderr, "loadgen-mpi: -c %d is fewer connections than the %d ranks; every rank needs one\n",
                config->connections, cluster->size);
        exit(2);
    }
    cluster->config = config;
    cluster->own.connections_total = cluster->merged.connections_total = config->connections;
    cluster->own.idle_total = cluster->merged.idle_total = config->idle;
    cluster->own.rate_total = cluster->merged.rate_total = config->rate;
    config->cluster_rank = cluster->rank;
    config->cluster_size = cluster->size;
    config->cluster_connections = config->connections;
    config->cluster_rate = config->rate;
    int connections = share_of(config->connections, cluster->rank, cluster->size);
    config->rate = config->rate * connections / config->connections;
    config->connections = connections;
    config->idle = share_of(config->idle, cluster->rank, cluster->size);
    if (config->threads > connections)
        config->threads = connections;
    cluster->self.connections = (uint64_t)connections;
    cluster->self.idle = (uint64_t)config->idle;
}

static bool start_together(struct cluster *hooks)
{
    struct mpi_cluster *cluster = (struct mpi_cluster *)hooks;
    MPI_Request barrier;
    if (MPI_Ibarrier(MPI_COMM_WORLD, &barrier) != MPI_SUCCESS) {
        fprintf(stderr, "loadgen-mpi: rank %d: MPI_Ibarrier failed\n", cluster->rank);
        cluster->abandoned = true;
        return false;
    }
    /* The others may still be connecting their idle connections, each bounded by --timeout. */
    bool started = wait_for(cluster, &barrier, 1, cluster->timeout_s + 2 * cluster->config->timeout_s,
                            "the start barrier");
    cluster->self.start_realtime_ns = realtime_ns();
    return started;
}

/* The ranks' windows start warm-up seconds after the start on each one's own clock; this barrier
 * shows how far apart that left them. It is polled here, in the main thread, which has nothing else
 * to do during the window but print progress. */
static void window_starts(struct cluster *hooks)
{
    struct mpi_cluster *cluster = (struct mpi_cluster *)hooks;
    if (cluster->abandoned)
        return;
    if (MPI_Ibarrier(MPI_COMM_WORLD, &cluster->window) != MPI_SUCCESS) {
        fprintf(stderr, "loadgen-mpi: rank %d: MPI_Ibarrier failed\n", cluster->rank);
        cluster->abandoned = true;
        return;
    }
    cluster->window_pending = true;
    if (wait_for(cluster, &cluster->window, 1, cluster->timeout_s, "the measured window's barrier")) {
        cluster->window_pending = false;
        cluster->self.window_realtime_ns = realtime_ns();
    }
}

/* Visits every counter that adds up over the ranks, in one order: packs them into values, or
 * (unpack) stores the sums back. Returns how many there are (values NULL: only counts). */
static size_t visit_counters(struct counters *counters, uint64_t *values, size_t n, bool unpack)
{
#define FIELD(field)                    \
    do {                                \
        if (values != NULL && unpack)   \
            (field) = values[n];        \
        else if (values != NULL)        \
            values[n] = (field);        \
        n++;                            \
    } while (0)
    FIELD(counters->intended);
    FIELD(counters->started);
    FIELD(counters->completed);
    FIELD(counters->failed);
    FIELD(counters->in_flight_at_end);
    FIELD(counters->unsent_at_end);
    for (int i = 0; i < ERROR_CLASSES; i++)
        FIELD(counters->errors[i]);
    FIELD(counters->connect_errors_without_request);
    FIELD(counters->censored);
    return n;
}

static size_t visit_sums(struct result *result, struct hdr **histograms, int histogram_count, uint64_t *values,
                         bool unpack)
{
    struct run_stats *total = &result->total;
    size_t n = visit_counters(&total->measured, values, 0, unpack);
    n = visit_counters(&total->warmup, values, n, unpack);
    FIELD(total->bytes_read);
    FIELD(total->bytes_written);
    FIELD(total->connections_opened);
    FIELD(total->closed_by_server);
    for (int p = 0; p < result->config->path_count; p++) {
        FIELD(total->paths[p].failed);
        FIELD(total->paths[p].censored);
        FIELD(total->paths[p].in_flight_at_end);
    }
    FIELD(total->idle.requested);
    FIELD(total->idle.established);
    FIELD(total->idle.failed);
    FIELD(total->idle.closed_by_peer);
    FIELD(total->idle.open_at_end);
    FIELD(result->fairness.connections);
    FIELD(result->fairness.responses);
    FIELD(result->fairness.served);
    for (int h = 0; h < histogram_count; h++) {
        FIELD(histograms[h]->total);
        FIELD(histograms[h]->clamped);
    }
    return n;
}

/* The same for the sums that are not integers. */
static size_t visit_real_sums(struct result *result, struct hdr **histograms, int histogram_count, double *values,
                              bool unpack)
{
    size_t n = 0;
    FIELD(result->total.cpu_user_s);
    FIELD(result->total.cpu_sys_s);
    FIELD(result->process_user_s);
    FIELD(result->process_sys_s);
    FIELD(result->fairness.sum_squares);
    for (int h = 0; h < histogram_count; h++) {
        FIELD(histograms[h]->sum);
        FIELD(histograms[h]->sum_squares);
    }
    return n;
}
#undef FIELD

/* Every histogram of the merged total; the same list on every rank (same options). */
static int list_histograms(struct result *result, struct hdr **histograms)
{
    bool open_loop = result->config->rate > 0;
    struct run_stats *total = &result->total;
    int count = 0;
    histograms[count++] = &total->response;
    if (open_loop) {
        histograms[count++] = &total->service;
        histograms[count++] = &total->lag;
    }
    for (int p = 0; p < result->config->path_count; p++) {
        histograms[count++] = &total->paths[p].response;
        if (open_loop) {
            histograms[count++] = &total->paths[p].service;
            histograms[count++] = &total->paths[p].lag;
        }
    }
    return count;
}

/* One rank's threads' timelines as bytes: per thread its second and entry counts, its seconds, its
 * loose errors and its entries. Every part is a multiple of 8 bytes, so rank 0 can read them in
 * place from the gathered buffer. */
static size_t timeline_size(const struct timeline *timeline)
{
    return 2 * sizeof(uint64_t) + timeline->second_count * (size_t)timeline->path_count * sizeof(struct second_stats) +
           timeline->second_count * sizeof(uint64_t) + timeline->entry_count * sizeof(struct sparse_entry);
}

static char *put(char *to, const void *from, size_t size)
{
    memcpy(to, from, size);
    return to + size;
}

static char *pack_timelines(const struct worker *workers, int count, size_t *size)
{
    *size = sizeof(uint64_t);
    for (int t = 0; t < count; t++)
        *size += timeline_size(&workers[t].stats.timeline);
    char *buffer = malloc(*size), *at = buffer;
    if (buffer == NULL)
        return NULL;
    uint64_t threads = (uint64_t)count;
    at = put(at, &threads, sizeof threads);
    for (int t = 0; t < count; t++) {
        const struct timeline *timeline = &workers[t].stats.timeline;
        uint64_t header[2] = {timeline->second_count, timeline->entry_count};
        at = put(at, header, sizeof header);
        at = put(at, timeline->seconds, timeline->second_count * (size_t)timeline->path_count * sizeof *timeline->seconds);
        at = put(at, timeline->loose_errors, timeline->second_count * sizeof *timeline->loose_errors);
        at = put(at, timeline->entries, timeline->entry_count * sizeof *timeline->entries);
    }
    return buffer;
}

/* Rank 0: views of the other ranks' timelines in the gathered bytes, after its own threads' (the
 * first timeline lends timeline_merge its histogram layout, so it must be a real one). */
static int merge_timelines(struct mpi_cluster *cluster, struct worker *workers, struct result *result, const char *bytes,
                           const int *sizes, const int *offsets)
{
    int path_count = result->config->path_count;
    size_t capacity = (size_t)cluster->config->threads, count = 0;
    for (int r = 1; r < cluster->size; r++)
        capacity += (size_t)(sizes[r] / 8); /* more than the threads it can hold */
    const struct timeline **timelines = calloc(capacity, sizeof *timelines);
    struct timeline *views = calloc(capacity, sizeof *views);
    if (timelines == NULL || views == NULL) {
        free(timelines);
        free(views);
        return -ENOMEM;
    }
    size_t seconds = workers[0].stats.timeline.second_count;
    for (int t = 0; t < cluster->config->threads; t++)
        timelines[count++] = &workers[t].stats.timeline;
    for (int r = 1; r < cluster->size; r++) {
        const char *at = bytes + offsets[r];
        uint64_t threads;
        memcpy(&threads, at, sizeof threads);
        at += sizeof threads;
        for (uint64_t t = 0; t < threads; t++) {
            struct timeline *view = &views[count];
            uint64_t header[2];
            memcpy(header, at, sizeof header);
            at += sizeof header;
            view->second_count = header[0];
            view->entry_count = header[1];
            view->path_count = path_count;
            view->seconds = (struct second_stats *)at;
            at += view->second_count * (size_t)path_count * sizeof *view->seconds;
            view->loose_errors = (uint64_t *)at;
            at += view->second_count * sizeof *view->loose_errors;
            view->entries = (struct sparse_entry *)at;
            at += view->entry_count * sizeof *view->entries;
            if (view->second_count < seconds)
                seconds = view->second_count;
            timelines[count++] = view;
        }
    }
    size_t run_seconds = (size_t)ceil(result->duration_s);
    if (run_seconds < seconds)
        seconds = run_seconds;
    free(result->timeline);
    free(result->timeline_paths);
    result->timeline = calloc(seconds ? seconds : 1, sizeof *result->timeline);
    result->timeline_paths = calloc(seconds ? seconds * (size_t)path_count : 1, sizeof *result->timeline_paths);
    int error = -ENOMEM;
    if (result->timeline != NULL && result->timeline_paths != NULL) {
        result->timeline_len = seconds;
        error = timeline_merge(timelines, (int)count, seconds, result->timeline, result->timeline_paths);
    }
    free(timelines);
    free(views);
    return error;
}

/* The merge proper. Rank 0's result becomes everyone's; the others' is only sent. */
static bool merge(struct mpi_cluster *cluster, struct worker *workers, struct result *result)
{
    bool root = cluster->rank == 0;
    struct hdr *histograms[MAX_HISTOGRAMS];
    int histogram_count = list_histograms(result, histograms);
    size_t sum_count = visit_sums(result, histograms, histogram_count, NULL, false);
    size_t real_count = visit_real_sums(result, histograms, histogram_count, NULL, false);
    /* Extremes: the fairness minimum and the histograms' minima (INT64_MAX while empty), then the
     * maxima of the same. */
    size_t extreme_count = 1 + (size_t)histogram_count;
    uint64_t *sums = calloc(sum_count, sizeof *sums), *minima = calloc(extreme_count, sizeof *minima);
    uint64_t *maxima = calloc(extreme_count, sizeof *maxima);
    double *reals = calloc(real_count, sizeof *reals);
    int *timeline_sizes = calloc((size_t)cluster->size, sizeof *timeline_sizes);
    int *timeline_offsets = calloc((size_t)cluster->size, sizeof *timeline_offsets);
    size_t packed_size = 0;
    char *packed = pack_timelines(workers, cluster->config->threads, &packed_size), *gathered = NULL;
    cluster->hosts = root ? calloc((size_t)cluster->size, sizeof *cluster->hosts) : NULL;
    bool ok = sums && minima && maxima && reals && timeline_sizes && timeline_offsets && packed && (!root || cluster->hosts);
    if (!ok)
        fprintf(stderr, "loadgen-mpi: rank %d: out of memory for the merge\n", cluster->rank);
    if (ok && packed_size > INT32_MAX) {
        fprintf(stderr, "loadgen-mpi: rank %d: its timeline (%zu bytes) is too large to gather\n", cluster->rank,
                packed_size);
        ok = false;
    }
    double extremes_real[2] = {result->total.idle.setup_s, result->duration_s};
    int own_size = (int)packed_size;
    if (ok) {
        visit_sums(result, histograms, histogram_count, sums, false);
        visit_real_sums(result, histograms, histogram_count, reals, false);
        minima[0] = result->fairness.min_per_connection;
        maxima[0] = result->fairness.max_per_connection;
        for (int h = 0; h < histogram_count; h++) {
            minima[1 + h] = (uint64_t)histograms[h]->min;
            maxima[1 + h] = (uint64_t)histograms[h]->max;
        }
        /* One round of collectives, all in flight at once; the root's own values are reduced in
         * place. A pending window barrier comes first: collectives complete in the order begun. */
        MPI_Request requests[8 + MAX_HISTOGRAMS];
        int n = 0;
        if (cluster->window_pending)
            requests[n++] = cluster->window;
        MPI_Comm world = MPI_COMM_WORLD;
        int calls = MPI_SUCCESS;
        calls |= MPI_Igather(&cluster->self, sizeof cluster->self, MPI_BYTE, cluster->hosts, sizeof cluster->self,
                             MPI_BYTE, 0, world, &requests[n++]);
        calls |= MPI_Ireduce(root ? MPI_IN_PLACE : sums, sums, (int)sum_count, MPI_UINT64_T, MPI_SUM, 0, world,
                             &requests[n++]);
        calls |= MPI_Ireduce(root ? MPI_IN_PLACE : reals, reals, (int)real_count, MPI_DOUBLE, MPI_SUM, 0, world,
                             &requests[n++]);
        calls |= MPI_Ireduce(root ? MPI_IN_PLACE : minima, minima, (int)extreme_count, MPI_UINT64_T, MPI_MIN, 0, world,
                             &requests[n++]);
        calls |= MPI_Ireduce(root ? MPI_IN_PLACE : maxima, maxima, (int)extreme_count, MPI_UINT64_T, MPI_MAX, 0, world,
                             &requests[n++]);
        calls |= MPI_Ireduce(root ? MPI_IN_PLACE : extremes_real, extremes_real, 2, MPI_DOUBLE, MPI_MAX, 0, world,
                             &requests[n++]);
        calls |= MPI_Igather(&own_size, 1, MPI_INT, timeline_sizes, 1, MPI_INT, 0, world, &requests[n++]);
        for (int h = 0; h < histogram_count; h++) {
            uint64_t *counts = histograms[h]->counts;
            calls |= MPI_Ireduce(root ? MPI_IN_PLACE : counts, counts, histograms[h]->counts_len, MPI_UINT64_T, MPI_SUM,
                                 0, world, &requests[n++]);
        }
        ok = calls == MPI_SUCCESS && wait_for(cluster, requests, n, cluster->timeout_s, "the merge");
        cluster->window_pending = false;
    }
    /* Second round: the timelines, now that rank 0 knows how long each is. */
    if (ok && root) {
        size_t total = 0;
        for (int r = 0; r < cluster->size; r++) {
            timeline_offsets[r] = (int)total;
            total += (size_t)timeline_sizes[r];
        }
        gathered = total <= INT32_MAX ? malloc(total ? total : 1) : NULL;
        if (gathered == NULL)
            fprintf(stderr, "loadgen-mpi: rank 0: cannot hold the gathered timelines (%zu bytes)\n", total);
    }
    if (ok) {
        /* A root that could not allocate still takes part, or the others would wait for it. */
        MPI_Request request;
        int call = MPI_Igatherv(packed, own_size, MPI_BYTE, gathered, timeline_sizes, timeline_offsets, MPI_BYTE, 0,
                                MPI_COMM_WORLD, &request);
        ok = call == MPI_SUCCESS && wait_for(cluster, &request, 1, cluster->timeout_s, "gathering the timelines") &&
             (!root || gathered != NULL);
    }
    if (ok && root) {
        visit_sums(result, histograms, histogram_count, sums, true);
        visit_real_sums(result, histograms, histogram_count, reals, true);
        result->fairness.min_per_connection = minima[0];
        result->fairness.max_per_connection = maxima[0];
        for (int h = 0; h < histogram_count; h++) {
            histograms[h]->min = (int64_t)minima[1 + h];
            histograms[h]->max = (int64_t)maxima[1 + h];
        }
        result->total.idle.setup_s = extremes_real[0];
        result->duration_s = extremes_real[1];
        if (merge_timelines(cluster, workers, result, gathered, timeline_sizes, timeline_offsets) != 0) {
            fprintf(stderr, "loadgen-mpi: rank 0: out of memory merging the timelines\n");
            ok = false;
        }
    }
    free(sums);
    free(minima);
    free(maxima);
    free(reals);
    free(timeline_sizes);
    free(timeline_offsets);
    free(packed);
    free(gathered);
    return ok;
}

static int finish(struct cluster *hooks, struct worker *workers, struct result *result)
{
    struct mpi_cluster *cluster = (struct mpi_cluster *)hooks;
    struct host_record *self = &cluster->self;
    const struct counters *measured = &result->total.measured;
    self->interrupted = result->interrupted;
    self->completed = measured->completed;
    self->responses_in_window = result->fairness.responses;
    for (int i = 0; i < ERROR_CLASSES; i++)
        self->errors += measured->errors[i];
    self->cpu_s = result->total.cpu_user_s + result->total.cpu_sys_s;

    /* This rank's own result first: it is what survives a merge that cannot finish. */
    int status = 0;
    if (cluster->rank_json_prefix != NULL) {
        char path[4096];
        int length = snprintf(path, sizeof path, "%s.rank%d.json", cluster->rank_json_prefix, cluster->rank);
        result->cluster = &cluster->own;
        if (length < 0 || (size_t)length >= sizeof path)
            fprintf(stderr, "loadgen-mpi: --rank-json: the path is too long\n");
        if (length < 0 || (size_t)length >= sizeof path || report_json(path, result) != 0)
            status = -1;
        result->cluster = NULL;
    }
    if (result->interrupted || cluster->abandoned) {
        fprintf(stderr, "loadgen-mpi: rank %d (%s): stopped early, so not merging; its own result is %s\n",
                cluster->rank, self->host, cluster->rank_json_prefix ? "in its --rank-json file" : "lost (no --rank-json)");
        cluster->abandoned = true;
        return -1;
    }
    if (!merge(cluster, workers, result))
        return -1;
    if (cluster->rank != 0)
        return status < 0 ? -1 : 1;
    /* The report describes the whole load. */
    cluster->config->connections = cluster->merged.connections_total;
    cluster->config->idle = cluster->merged.idle_total;
    cluster->config->rate = cluster->merged.rate_total;
    cluster->merged.hosts = cluster->hosts;
    result->cluster = &cluster->merged;
    return status < 0 ? -1 : 0;
}

static void usage_error(const char *problem, const char *value)
{
    fprintf(stderr, "loadgen-mpi: %s%s%s\n", problem, value ? ": " : "", value ? value : "");
    fprintf(stderr, "usage: mpirun ... loadgen-mpi [--rank-json PREFIX] [--cluster-timeout S] [--host-names A,B,...] "
                    "[loadgen options] URL\n(see loadgen-mpi --help)\n");
    exit(2);
}

static void print_help(void)
{
    printf("loadgen-mpi: bin/loadgen in one process per host, under mpirun (docs/distributed.md).\n"
           "Options of its own (every other option is bin/loadgen's, below; -c, --idle and -R are totals\n"
           "over all ranks, shared out evenly):\n"
           "  --rank-json PREFIX    every rank writes its own result to PREFIX.rankN.json before merging\n"
           "  --cluster-timeout S   how long a rank waits for the others at a barrier or the merge\n"
           "                        (default %.0f s; the start barrier adds twice --timeout)\n"
           "  --host-names A,B,...  rank N's host is the N-th name (default: its hostname)\n"
           "  --phase-stdout        lines for a driver (harness/loadgen-cluster) on stdout, which mpirun\n"
           "                        forwards: rank 0 --phase-fd's \"measure\" and \"end\"; every rank\n"
           "                        \"beat RANK N\" each second and \"cluster-failed RANK\" if it gives up\n\n",
           DEFAULT_CLUSTER_TIMEOUT_S);
    fflush(stdout);
}

/* Takes loadgen-mpi's own options out of argv, in place; the rest is bin/loadgen's. */
static int take_own_options(int argc, char **argv, struct mpi_cluster *cluster)
{
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--phase-stdout") == 0) {
            cluster->phase_stdout = true;
            continue;
        }
        const char *names[] = {"--rank-json", "--cluster-timeout", "--host-names"};
        const char *value = NULL;
        int which = -1;
        for (int k = 0; k < 3 && which < 0; k++) {
            size_t len = strlen(names[k]);
            if (strncmp(arg, names[k], len) == 0 && (arg[len] == '\0' || arg[len] == '=')) {
                which = k;
                if (arg[len] == '=')
                    value = arg + len + 1;
                else if (i + 1 < argc)
                    value = argv[++i];
                else
                    usage_error("a value is missing after", arg);
            }
        }
        if (which < 0) {
            if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
                print_help();
            if (strcmp(arg, "--") == 0) {
                while (i < argc)
                    argv[kept++] = argv[i++];
                break;
            }
            argv[kept++] = argv[i];
            continue;
        }
        if (which == 0) {
            if (*value == '\0')
                usage_error("--rank-json needs a path prefix", NULL);
            cluster->rank_json_prefix = value;
        } else if (which == 1) {
            char *end;
            errno = 0;
            double seconds = strtod(value, &end);
            if (errno != 0 || end == value || *end != '\0' || !(seconds > 0) || seconds > 3600)
                usage_error("--cluster-timeout takes seconds, more than 0 and at most 3600", value);
            cluster->timeout_s = seconds;
        } else {
            cluster->host_names = value;
        }
    }
    argv[kept] = NULL;
    return kept;
}

/* --phase-stdout: a descriptor of its own onto standard output, which loadgen writes with write(2)
 * while its report goes through stdio (flushed before), so the lines come out in order. */
static char **add_phase_fd(int *argc, char **argv, struct mpi_cluster *cluster)
{
    if (!cluster->phase_stdout || cluster->rank != 0)
        return argv;
    static char number[16];
    int fd = dup(STDOUT_FILENO);
    char **longer = calloc((size_t)*argc + 3, sizeof *longer);
    if (fd < 0 || longer == NULL) {
        fprintf(stderr, "loadgen-mpi: --phase-stdout: %s\n", strerror(errno));
        exit(1);
    }
    snprintf(number, sizeof number, "%d", fd);
    longer[0] = argv[0];
    longer[1] = "--phase-fd";
    longer[2] = number;
    for (int i = 1; i <= *argc; i++)
        longer[i + 2] = argv[i];
    *argc += 2;
    return longer;
}

/* The i-th name of --host-names, or this machine's name. */
static void name_host(struct mpi_cluster *cluster)
{
    char *name = cluster->self.host;
    size_t size = sizeof cluster->self.host;
    if (host_name_of(cluster, cluster->rank, name, size))
        return;
    if (gethostname(name, size) != 0)
        snprintf(name, size, "rank%d", cluster->rank);
    name[size - 1] = '\0';
}

int main(int argc, char **argv)
{
    /* The threads MPI_Init starts (PMIx, progress) must not take the stop signal: delivered to
     * one of them, it would not interrupt the main thread's sleep, and mpirun's SIGKILL a second
     * after its SIGTERM would come before this rank had written its file. */
    sigset_t stop_signals, previous;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    int provided = 0;
    if (pthread_sigmask(SIG_BLOCK, &stop_signals, &previous) != 0 ||
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS ||
        pthread_sigmask(SIG_SETMASK, &previous, NULL) != 0) {
        fprintf(stderr, "loadgen-mpi: MPI_Init_thread failed\n");
        return 1;
    }
    struct mpi_cluster cluster = {
        .hooks = {.share = take_share, .start = start_together, .window = window_starts, .tick = beat,
                  .finish = finish},
        .timeout_s = DEFAULT_CLUSTER_TIMEOUT_S,
    };
    cluster.self.init_realtime_ns = realtime_ns();
    cluster.self.window_realtime_ns = -1;
    /* Failures come back as return codes, so that a rank can still say what it knows. */
    if (MPI_Comm_rank(MPI_COMM_WORLD, &cluster.rank) != MPI_SUCCESS ||
        MPI_Comm_size(MPI_COMM_WORLD, &cluster.size) != MPI_SUCCESS ||
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN) != MPI_SUCCESS) {
        fprintf(stderr, "loadgen-mpi: cannot learn this process's rank\n");
        return 1;
    }
    if (provided < MPI_THREAD_FUNNELED)
        fprintf(stderr, "loadgen-mpi: MPI gives thread level %d, less than FUNNELED; only the main thread calls it\n",
                provided);
    cluster.self.rank = cluster.rank;
    cluster.own.size = cluster.merged.size = cluster.size;
    cluster.own.self = cluster.merged.self = &cluster.self;
    cluster.merged.merged = true;
    argc = take_own_options(argc, argv, &cluster);
    char **loadgen_argv = add_phase_fd(&argc, argv, &cluster);
    name_host(&cluster);

    int status = loadgen_run(argc, loadgen_argv, &cluster.hooks);
    if (loadgen_argv != argv)
        free(loadgen_argv);
    free(cluster.hosts);
    if (cluster.abandoned) {
        /* MPI_Finalize would wait for ranks that are gone. */
        fflush(stdout);
        fflush(stderr);
        _exit(status != 0 ? status : 1);
    }
    if (MPI_Finalize() != MPI_SUCCESS) {
        fprintf(stderr, "loadgen-mpi: MPI_Finalize failed\n");
        return 1;
    }
    return status;
}
