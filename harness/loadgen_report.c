/* loadgen_report.c - the human summary (in the spirit of wrk's) and the JSON document
 * (schema c10k-lab/loadgen/2, every field documented in docs/loadgen.md). */
#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "loadgen.h"

/* A run could not keep its rate when fewer than this share of the offered requests completed ... */
#define SATURATION_ACHIEVED_SHARE 0.98
/* ... or when the 99th percentile of the send lag exceeds this. */
#define SATURATION_LAG_P99_US 1000

static const double percentiles[] = {50, 75, 90, 99, 99.9, 99.99};
static const char *const percentile_keys[] = {"p50_us", "p75_us", "p90_us", "p99_us", "p99_9_us", "p99_99_us"};
#define PERCENTILE_COUNT (sizeof percentiles / sizeof percentiles[0])

static bool open_loop(const struct result *result)
{
    return result->config->rate > 0;
}

bool result_accounting_ok(const struct counters *counters, bool is_open_loop)
{
    uint64_t request_errors = 0;
    for (int i = 0; i < ERROR_CLASSES; i++)
        request_errors += counters->errors[i];
    request_errors -= counters->connect_errors_without_request;
    bool ok = counters->started == counters->completed + counters->failed + counters->in_flight_at_end &&
              counters->failed == request_errors;
    if (is_open_loop)
        ok = ok && counters->intended == counters->started + counters->unsent_at_end;
    return ok;
}

static double offered_rate(const struct result *result)
{
    return result->duration_s > 0 ? (double)result->total.measured.intended / result->duration_s : 0;
}

/* Jain's fairness index over the connections' responses: 1 when all got the same share, 1/n when
 * one connection got everything. */
static double jain_index(const struct fairness *fairness)
{
    if (fairness->sum_squares <= 0 || fairness->connections == 0)
        return 0;
    double responses = (double)fairness->responses;
    return responses * responses / ((double)fairness->connections * fairness->sum_squares);
}

static double achieved_rate(const struct result *result)
{
    return result->duration_s > 0 ? (double)result->total.measured.completed / result->duration_s : 0;
}

bool result_saturated(const struct result *result)
{
    return achieved_rate(result) < SATURATION_ACHIEVED_SHARE * offered_rate(result) ||
           hdr_value_at_percentile(&result->total.lag, 99) > SATURATION_LAG_P99_US;
}

static uint64_t total_errors(const struct counters *counters)
{
    uint64_t sum = 0;
    for (int i = 0; i < ERROR_CLASSES; i++)
        sum += counters->errors[i];
    return sum;
}

/* --- text ------------------------------------------------------------------------------------- */

static const char *format_us(double us, char *buffer, size_t size)
{
    if (us < 1000)
        snprintf(buffer, size, "%.0fus", us);
    else if (us < 1000000)
        snprintf(buffer, size, "%.2fms", us / 1000);
    else
        snprintf(buffer, size, "%.2fs", us / 1000000);
    return buffer;
}

static const char *format_bytes(double bytes, char *buffer, size_t size)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    int unit = 0;
    while (bytes >= 1024 && unit < 4) {
        bytes /= 1024;
        unit++;
    }
    snprintf(buffer, size, unit ? "%.2f%s" : "%.0f%s", bytes, units[unit]);
    return buffer;
}

static void latency_row(FILE *out, const char *name, const struct hdr *hdr)
{
    char cell[32];
    fprintf(out, "  %-9s", name);
    if (hdr->total == 0) {
        fprintf(out, "  (no samples)\n");
        return;
    }
    fprintf(out, "%10s", format_us(hdr_mean(hdr), cell, sizeof cell));
    fprintf(out, "%10s", format_us(hdr_stdev(hdr), cell, sizeof cell));
    for (size_t i = 0; i < PERCENTILE_COUNT; i++)
        fprintf(out, "%10s", format_us((double)hdr_value_at_percentile(hdr, percentiles[i]), cell, sizeof cell));
    fprintf(out, "%10s\n", format_us((double)hdr->max, cell, sizeof cell));
}

/* A --mix share as given: "10", "0.5", "33.3333" (4 decimals at most, trailing zeros dropped). */
static const char *format_percent(int32_t millionths, char *buffer, size_t size)
{
    snprintf(buffer, size, "%.4f", (double)millionths / (MIX_WHOLE / 100));
    char *end = buffer + strlen(buffer);
    while (end > buffer && end[-1] == '0')
        *--end = '\0';
    if (end > buffer && end[-1] == '.')
        *--end = '\0';
    return buffer;
}

/* --mix: one line per path, its share, requests and latency. */
static void paths_text(FILE *out, const struct result *result)
{
    const struct config *config = result->config;
    char p50[32], p99[32], max[32], percent[32];
    int width = 4;
    for (int p = 0; p < config->path_count; p++)
        if ((int)strlen(config->paths[p].path) > width)
            width = (int)strlen(config->paths[p].path);
    if (width > 40)
        width = 40;
    fprintf(out, "  Paths:\n");
    for (int p = 0; p < config->path_count; p++) {
        const struct path_stats *path = &result->total.paths[p];
        const struct hdr *hdr = &path->response;
        fprintf(out, "    %-*s %8s%% %10llu requests %8llu errors", width, config->paths[p].path,
                format_percent(config->paths[p].weight, percent, sizeof percent),
                (unsigned long long)(hdr->total - path->censored),
                (unsigned long long)path->failed);
        if (hdr->total == 0)
            fprintf(out, "  (no latency samples)\n");
        else
            fprintf(out, "  p50 %9s  p99 %9s  max %9s\n",
                    format_us((double)hdr_value_at_percentile(hdr, 50), p50, sizeof p50),
                    format_us((double)hdr_value_at_percentile(hdr, 99), p99, sizeof p99),
                    format_us((double)hdr->max, max, sizeof max));
    }
}

/* When a host left the start barrier, or (window) the one at the measured window's start. */
static int64_t barrier_exit_ns(const struct host_record *host, bool window)
{
    return window ? host->window_realtime_ns : host->start_realtime_ns;
}

/* The spread of one barrier's exit times over the hosts (host < 0), or one host's offset from the
 * earliest, in ms; -1: some host has none. */
static double skew_ms(const struct cluster_report *cluster, bool window, int host)
{
    int64_t earliest = INT64_MAX, latest = INT64_MIN;
    for (int i = 0; i < cluster->size; i++) {
        int64_t t = barrier_exit_ns(&cluster->hosts[i], window);
        if (t < 0)
            return -1;
        earliest = t < earliest ? t : earliest;
        latest = t > latest ? t : latest;
    }
    int64_t value = host < 0 ? latest : barrier_exit_ns(&cluster->hosts[host], window);
    return (double)(value - earliest) / 1e6;
}

void report_text(FILE *out, const struct result *result)
{
    const struct config *config = result->config;
    const struct run_stats *total = &result->total;
    const struct counters *measured = &total->measured;
    char a[32], b[32];

    fprintf(out, "loadgen %s: %s\n", loadgen_version, config->url);
    fprintf(out, "  %s, %d thread%s, %d connection%s, pipeline %d%s, %.2fs", open_loop(result) ? "open loop" : "closed loop",
            config->threads, config->threads == 1 ? "" : "s", config->connections, config->connections == 1 ? "" : "s",
            config->pipeline, config->close ? ", a new connection per request" : "", config->duration_s);
    if (config->warmup_s > 0)
        fprintf(out, " after %.2fs warm-up", config->warmup_s);
    if (open_loop(result))
        fprintf(out, ", %.1f requests/s offered", config->rate);
    fprintf(out, "%s\n", result->interrupted ? " (interrupted)" : "");

    fprintf(out, "  %-9s%10s%10s%10s%10s%10s%10s%10s%10s%10s\n", "Latency", "mean", "stdev", "p50", "p75", "p90",
            "p99", "p99.9", "p99.99", "max");
    latency_row(out, open_loop(result) ? "response" : "latency", &total->response);
    if (open_loop(result)) {
        latency_row(out, "service", &total->service);
        latency_row(out, "send lag", &total->lag);
        fprintf(out, "  (response time counts from the intended send time, corrected for coordinated omission)\n");
    }
    if (config->path_count > 1)
        paths_text(out, result);
    fprintf(out, "  %llu responses in %.2fs, %s read, %s written\n", (unsigned long long)result->fairness.responses,
            result->duration_s, format_bytes((double)total->bytes_read, a, sizeof a),
            format_bytes((double)total->bytes_written, b, sizeof b));
    double seconds = result->duration_s > 0 ? result->duration_s : 1;
    fprintf(out, "Requests/sec: %12.2f\n", (double)result->fairness.responses / seconds);
    fprintf(out, "Transfer/sec: %12s\n", format_bytes((double)total->bytes_read / seconds, a, sizeof a));

    if (total_errors(measured) == 0) {
        fprintf(out, "Errors: none\n");
    } else {
        fprintf(out, "Errors:");
        for (int i = 0; i < ERROR_CLASSES; i++)
            fprintf(out, " %s %llu%s", error_class_names[i], (unsigned long long)measured->errors[i],
                    i + 1 < ERROR_CLASSES ? "," : "\n");
        if (measured->censored > 0)
            fprintf(out, "  %llu timed-out requests are in the latency histogram as censored samples at %s\n",
                    (unsigned long long)measured->censored, format_us(config->timeout_s * 1e6, a, sizeof a));
        if (measured->connect_errors_without_request > 0)
            fprintf(out, "  %llu connect errors happened before any request on that connection\n",
                    (unsigned long long)measured->connect_errors_without_request);
    }
    fprintf(out, "Accounting: started %llu = completed %llu + failed %llu + in flight %llu: %s\n",
            (unsigned long long)measured->started, (unsigned long long)measured->completed,
            (unsigned long long)measured->failed, (unsigned long long)measured->in_flight_at_end,
            result_accounting_ok(measured, open_loop(result)) ? "ok" : "MISMATCH (a loadgen bug)");
    if (open_loop(result)) {
        fprintf(out, "Rate: offered %.2f/s (%llu intended, %llu not yet sent at the end), achieved %.2f/s, send lag p99 %s: %s\n",
                offered_rate(result), (unsigned long long)measured->intended,
                (unsigned long long)measured->unsent_at_end, achieved_rate(result),
                format_us((double)hdr_value_at_percentile(&total->lag, 99), a, sizeof a),
                result_saturated(result) ? "SATURATED (achieved < 98% of offered, or send lag p99 > 1ms)" : "kept");
    }
    if (config->warmup_s > 0) {
        const struct counters *warmup = &total->warmup;
        fprintf(out, "Warm-up (not measured): started %llu, completed %llu, failed %llu, in flight %llu\n",
                (unsigned long long)warmup->started, (unsigned long long)warmup->completed,
                (unsigned long long)warmup->failed, (unsigned long long)warmup->in_flight_at_end);
    }
    if (config->idle > 0) {
        const struct idle_stats *idle = &total->idle;
        fprintf(out, "Idle: %llu requested, %llu established, %llu failed, %llu closed by the server, %llu open at the end (set up in %.2fs)\n",
                (unsigned long long)idle->requested, (unsigned long long)idle->established,
                (unsigned long long)idle->failed, (unsigned long long)idle->closed_by_peer,
                (unsigned long long)idle->open_at_end, idle->setup_s);
    }
    const struct fairness *fairness = &result->fairness;
    fprintf(out, "Connections: %llu of %llu served; responses per connection min %llu, max %llu; Jain's index %.3f%s\n",
            (unsigned long long)fairness->served, (unsigned long long)fairness->connections,
            (unsigned long long)fairness->min_per_connection, (unsigned long long)fairness->max_per_connection,
            jain_index(fairness), fairness->served < fairness->connections ? " (the others were starved)" : "");
    double cpu = total->cpu_user_s + total->cpu_sys_s;
    fprintf(out, "Loadgen CPU: %.2fs (user %.2fs, sys %.2fs)", cpu, total->cpu_user_s, total->cpu_sys_s);
    if (result->fairness.responses > 0)
        fprintf(out, ", %.2fus per request", cpu * 1e6 / (double)result->fairness.responses);
    fprintf(out, "\n");
    const struct cluster_report *cluster = result->cluster;
    if (cluster != NULL && cluster->merged) {
        fprintf(out, "Hosts: %d, start skew %.3f ms\n", cluster->size,
                skew_ms(cluster, false, -1));
        for (int i = 0; i < cluster->size; i++) {
            const struct host_record *host = &cluster->hosts[i];
            fprintf(out, "  rank %d %-20s %6llu connections %10llu requests %8llu errors  CPU %.2fs\n", host->rank,
                    host->host, (unsigned long long)host->connections, (unsigned long long)host->completed,
                    (unsigned long long)host->errors, host->cpu_s);
        }
    }
    fflush(out);
}

/* --- JSON ------------------------------------------------------------------------------------- */

/* Builders that remember a failure instead of checking every call: jansson returns NULL (or -1)
 * only when out of memory, and one check at the end then covers the whole document. */
struct builder {
    bool failed;
};

static void set(struct builder *builder, json_t *object, const char *key, json_t *value)
{
    if (value == NULL || json_object_set_new(object, key, value) != 0)
        builder->failed = true;
}

static void append(struct builder *builder, json_t *array, json_t *value)
{
    if (value == NULL || json_array_append_new(array, value) != 0)
        builder->failed = true;
}

static json_t *integer(uint64_t value)
{
    return json_integer((json_int_t)value);
}

static json_t *latency_json(struct builder *builder, const struct hdr *hdr)
{
    json_t *object = json_object();
    if (object == NULL) {
        builder->failed = true;
        return NULL;
    }
    set(builder, object, "count", integer(hdr->total));
    set(builder, object, "min_us", integer(hdr->total ? (uint64_t)hdr->min : 0));
    set(builder, object, "mean_us", json_real(hdr_mean(hdr)));
    set(builder, object, "stdev_us", json_real(hdr_stdev(hdr)));
    set(builder, object, "max_us", integer((uint64_t)hdr->max));
    for (size_t i = 0; i < PERCENTILE_COUNT; i++)
        set(builder, object, percentile_keys[i], integer((uint64_t)hdr_value_at_percentile(hdr, percentiles[i])));
    set(builder, object, "clamped", integer(hdr->clamped));
    json_t *buckets = json_array();
    for (int32_t i = hdr_next_nonzero(hdr, 0); i >= 0 && buckets; i = hdr_next_nonzero(hdr, i + 1))
        append(builder, buckets, json_pack("[II]", (json_int_t)hdr_lowest_at_index(hdr, i), (json_int_t)hdr->counts[i]));
    set(builder, object, "histogram", buckets);
    return object;
}

static json_t *counters_json(struct builder *builder, const struct counters *counters, bool is_open_loop)
{
    json_t *object = json_object();
    if (object == NULL) {
        builder->failed = true;
        return NULL;
    }
    set(builder, object, "intended", is_open_loop ? integer(counters->intended) : json_null());
    set(builder, object, "started", integer(counters->started));
    set(builder, object, "completed", integer(counters->completed));
    set(builder, object, "failed", integer(counters->failed));
    set(builder, object, "in_flight_at_end", integer(counters->in_flight_at_end));
    set(builder, object, "unsent_at_end", is_open_loop ? integer(counters->unsent_at_end) : json_null());
    set(builder, object, "accounting_ok", json_boolean(result_accounting_ok(counters, is_open_loop)));
    return object;
}

/* The first "model name" line of /proc/cpuinfo. */
static void cpu_model(char *buffer, size_t size)
{
    snprintf(buffer, size, "unknown");
    FILE *cpuinfo = fopen("/proc/cpuinfo", "r");
    if (cpuinfo == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, cpuinfo)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                colon[strcspn(colon, "\n")] = '\0';
                snprintf(buffer, size, "%s", colon);
            }
            break;
        }
    }
    fclose(cpuinfo);
}

static json_t *environment_json(struct builder *builder, const struct result *result)
{
    json_t *object = json_object();
    if (object == NULL) {
        builder->failed = true;
        return NULL;
    }
    struct utsname name;
    bool have_name = uname(&name) == 0;
    char kernel[2 * sizeof name.release + 2];
    snprintf(kernel, sizeof kernel, "%s %s", have_name ? name.sysname : "unknown", have_name ? name.release : "");
    set(builder, object, "kernel", json_string(kernel));
    set(builder, object, "kernel_version", json_string(have_name ? name.version : "unknown"));
    set(builder, object, "machine", json_string(have_name ? name.machine : "unknown"));
    set(builder, object, "hostname", json_string(have_name ? name.nodename : "unknown"));
    char model[256];
    cpu_model(model, sizeof model);
    set(builder, object, "cpu_model", json_string(model));
    cpu_set_t cpus;
    set(builder, object, "nproc", integer(sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? (uint64_t)CPU_COUNT(&cpus) : 0));
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    set(builder, object, "online_cpus", integer(online > 0 ? (uint64_t)online : 0));
    set(builder, object, "loadgen_version", json_string(loadgen_version));
    set(builder, object, "git_commit", json_string(loadgen_commit));
    set(builder, object, "started_at", json_string(result->started_at));
    json_t *nofile = json_object();
    if (nofile) {
        set(builder, nofile, "soft", integer(result->nofile_soft));
        set(builder, nofile, "hard", integer(result->nofile_hard));
        set(builder, nofile, "needed", integer(result->nofile_needed));
        set(builder, nofile, "fits", json_boolean(result->nofile_soft >= result->nofile_needed));
    }
    set(builder, object, "rlimit_nofile", nofile);
    return object;
}

static json_t *config_json(struct builder *builder, const struct config *config)
{
    json_t *object = json_object();
    if (object == NULL) {
        builder->failed = true;
        return NULL;
    }
    set(builder, object, "url", json_string(config->url));
    set(builder, object, "host", json_string(config->host));
    set(builder, object, "port", integer((uint64_t)config->port));
    set(builder, object, "path", json_string(config->path));
    set(builder, object, "method", json_string(config->method));
    set(builder, object, "mode", json_string(config->rate > 0 ? "open" : "closed"));
    set(builder, object, "rate", config->rate > 0 ? json_real(config->rate) : json_null());
    set(builder, object, "connections", integer((uint64_t)config->connections));
    set(builder, object, "threads", integer((uint64_t)config->threads));
    set(builder, object, "duration_s", json_real(config->duration_s));
    set(builder, object, "warmup_s", json_real(config->warmup_s));
    set(builder, object, "pipeline", integer((uint64_t)config->pipeline));
    set(builder, object, "close", json_boolean(config->close));
    set(builder, object, "idle", integer((uint64_t)config->idle));
    set(builder, object, "body_bytes", config->body_bytes >= 0 ? integer((uint64_t)config->body_bytes) : json_null());
    json_t *headers = json_array();
    for (int i = 0; i < config->header_count && headers; i++)
        append(builder, headers, json_string(config->headers[i]));
    set(builder, object, "headers", headers);
    set(builder, object, "timeout_s", json_real(config->timeout_s));
    json_t *sources = json_array();
    for (int i = 0; i < config->source_count && sources; i++) {
        char text[16];
        const unsigned char *octets = (const unsigned char *)&config->sources[i];
        snprintf(text, sizeof text, "%u.%u.%u.%u", octets[0], octets[1], octets[2], octets[3]);
        append(builder, sources, json_string(text));
    }
    set(builder, object, "source", sources);
    json_t *statuses = json_array();
    for (int i = 0; i < config->expect_status_count && statuses; i++)
        append(builder, statuses, integer((uint64_t)config->expect_status[i]));
    set(builder, object, "expect_status", statuses);
    set(builder, object, "expect_bytes", config->expect_bytes >= 0 ? integer((uint64_t)config->expect_bytes) : json_null());
    set(builder, object, "request_bytes", integer(config->request_len));
    if (config->path_count > 1) {
        json_t *mix = json_array();
        for (int p = 1; p < config->path_count && mix; p++)
            append(builder, mix, json_pack("{sssf}", "path", config->paths[p].path, "percent",
                                           (double)config->paths[p].weight / (MIX_WHOLE / 100)));
        set(builder, object, "mix", mix);
    }
    return object;
}

/* The latency object: the same for the whole run and for each path. */
static json_t *latency_section(struct builder *builder, const struct config *config, uint64_t censored_count,
                               const struct hdr *response, const struct hdr *service, const struct hdr *lag)
{
    bool is_open = config->rate > 0;
    json_t *latency = json_object();
    if (latency == NULL) {
        builder->failed = true;
        return NULL;
    }
    set(builder, latency, "unit", json_string("us"));
    set(builder, latency, "corrected", json_boolean(is_open));
    json_t *censored = json_object();
    if (censored) {
        set(builder, censored, "count", integer(censored_count));
        set(builder, censored, "value_us", integer((uint64_t)(config->timeout_s * 1e6 + 0.5)));
        set(builder, censored, "note",
            json_string("timed-out requests are recorded at the time they were abandoned (the timeout, "
                        "counted from when the request was sent); their true latency is at least that"));
    }
    set(builder, latency, "censored", censored);
    set(builder, latency, "response_time", latency_json(builder, response));
    set(builder, latency, "service_time", is_open ? latency_json(builder, service) : json_null());
    set(builder, latency, "send_lag", is_open ? latency_json(builder, lag) : json_null());
    return latency;
}

/* --mix: the requests of each path, the URL's first. */
static json_t *paths_json(struct builder *builder, const struct result *result)
{
    const struct config *config = result->config;
    json_t *paths = json_array();
    for (int p = 0; p < config->path_count && paths; p++) {
        const struct path_stats *path = &result->total.paths[p];
        uint64_t completed = path->response.total - path->censored;
        json_t *entry = json_object();
        if (entry) {
            set(builder, entry, "path", json_string(config->paths[p].path));
            set(builder, entry, "percent", json_real((double)config->paths[p].weight / (MIX_WHOLE / 100)));
            set(builder, entry, "request_bytes", integer(config->paths[p].request_len));
            set(builder, entry, "started", integer(completed + path->failed + path->in_flight_at_end));
            set(builder, entry, "requests", integer(completed));
            set(builder, entry, "errors", integer(path->failed));
            set(builder, entry, "in_flight_at_end", integer(path->in_flight_at_end));
            set(builder, entry, "latency",
                latency_section(builder, config, path->censored, &path->response, &path->service, &path->lag));
        }
        append(builder, paths, entry);
    }
    return paths;
}

static json_t *ms_or_null(int64_t us)
{
    return us >= 0 ? json_real((double)us / 1000) : json_null();
}

/* One second (or the last part of one) of the timeline. */
static json_t *timeline_entry_json(struct builder *builder, const struct result *result, size_t s)
{
    const struct config *config = result->config;
    const struct timeline_point *point = &result->timeline[s];
    json_t *entry = json_object();
    if (entry == NULL) {
        builder->failed = true;
        return NULL;
    }
    double length = result->duration_s - (double)s;
    set(builder, entry, "second", integer(s));
    set(builder, entry, "t", integer(s + 1));
    set(builder, entry, "length_s", json_real(length < 1 ? length : 1));
    set(builder, entry, "completed", integer(point->completed));
    set(builder, entry, "requests", integer(point->completed));
    set(builder, entry, "errors", integer(point->errors));
    set(builder, entry, "p50_us", point->p50_us >= 0 ? integer((uint64_t)point->p50_us) : json_null());
    set(builder, entry, "p99_us", point->p99_us >= 0 ? integer((uint64_t)point->p99_us) : json_null());
    set(builder, entry, "p50_ms", ms_or_null(point->p50_us));
    set(builder, entry, "p99_ms", ms_or_null(point->p99_us));
    set(builder, entry, "max_ms", ms_or_null(point->max_us));
    if (config->path_count > 1) {
        json_t *paths = json_array();
        for (int p = 0; p < config->path_count && paths; p++) {
            const struct timeline_point *path_point = &result->timeline_paths[s * (size_t)config->path_count + (size_t)p];
            json_t *path = json_object();
            if (path) {
                set(builder, path, "path", json_string(config->paths[p].path));
                set(builder, path, "requests", integer(path_point->completed));
                set(builder, path, "errors", integer(path_point->errors));
                set(builder, path, "p50_ms", ms_or_null(path_point->p50_us));
                set(builder, path, "p99_ms", ms_or_null(path_point->p99_us));
                set(builder, path, "max_ms", ms_or_null(path_point->max_us));
            }
            append(builder, paths, path);
        }
        set(builder, entry, "paths", paths);
    }
    return entry;
}

static json_t *ms_or_null_real(double ms)
{
    return ms >= 0 ? json_real(ms) : json_null();
}

/* bin/loadgen-mpi's section: one rank's place in the run, or (merged) every host's part of it. */
static json_t *cluster_json(struct builder *builder, const struct cluster_report *cluster)
{
    json_t *object = json_object();
    if (object == NULL) {
        builder->failed = true;
        return NULL;
    }
    const struct host_record *self = cluster->self;
    set(builder, object, "role", json_string(cluster->merged ? "merged" : "rank"));
    set(builder, object, "size", integer((uint64_t)cluster->size));
    set(builder, object, "connections_total", integer((uint64_t)cluster->connections_total));
    set(builder, object, "idle_total", integer((uint64_t)cluster->idle_total));
    set(builder, object, "rate_total", cluster->rate_total > 0 ? json_real(cluster->rate_total) : json_null());
    if (!cluster->merged) {
        set(builder, object, "rank", integer((uint64_t)self->rank));
        set(builder, object, "host", json_string(self->host));
        set(builder, object, "init_realtime_ns", json_integer(self->init_realtime_ns));
        set(builder, object, "start_realtime_ns", json_integer(self->start_realtime_ns));
        set(builder, object, "window_realtime_ns",
            self->window_realtime_ns >= 0 ? json_integer(self->window_realtime_ns) : json_null());
        return object;
    }
    set(builder, object, "merged_by", json_string("bin/loadgen-mpi"));
    set(builder, object, "partial", json_false());
    set(builder, object, "ranks_merged", integer((uint64_t)cluster->size));
    set(builder, object, "failed_hosts", json_array());
    set(builder, object, "start_skew_ms", ms_or_null_real(skew_ms(cluster, false, -1)));
    set(builder, object, "window_skew_ms", ms_or_null_real(skew_ms(cluster, true, -1)));
    json_t *hosts = json_array();
    for (int i = 0; i < cluster->size && hosts; i++) {
        const struct host_record *host = &cluster->hosts[i];
        json_t *entry = json_object();
        if (entry) {
            set(builder, entry, "rank", integer((uint64_t)host->rank));
            set(builder, entry, "host", json_string(host->host));
            set(builder, entry, "connections", integer(host->connections));
            set(builder, entry, "idle", integer(host->idle));
            set(builder, entry, "requests", integer(host->completed));
            set(builder, entry, "responses_in_window", integer(host->responses_in_window));
            set(builder, entry, "errors", integer(host->errors));
            set(builder, entry, "start_skew_ms", ms_or_null_real(skew_ms(cluster, false, i)));
            set(builder, entry, "window_skew_ms", ms_or_null_real(skew_ms(cluster, true, i)));
            set(builder, entry, "cpu_s", json_real(host->cpu_s));
            set(builder, entry, "interrupted", json_boolean(host->interrupted));
        }
        append(builder, hosts, entry);
    }
    set(builder, object, "hosts", hosts);
    return object;
}

int report_json(const char *path, const struct result *result)
{
    const struct config *config = result->config;
    const struct run_stats *total = &result->total;
    const struct counters *measured = &total->measured;
    bool is_open = open_loop(result);
    struct builder builder = {false};
    json_t *root = json_object();
    if (root == NULL) {
        fprintf(stderr, "loadgen: out of memory for the JSON document\n");
        return -1;
    }
    set(&builder, root, "schema", json_string(LOADGEN_SCHEMA));
    set(&builder, root, "config", config_json(&builder, config));
    set(&builder, root, "environment", environment_json(&builder, result));
    if (result->cluster != NULL)
        set(&builder, root, "cluster", cluster_json(&builder, result->cluster));

    json_t *totals = counters_json(&builder, measured, is_open);
    if (totals) {
        set(&builder, totals, "duration_s", json_real(result->duration_s));
        set(&builder, totals, "interrupted", json_boolean(result->interrupted));
        set(&builder, totals, "responses_in_window", integer(result->fairness.responses));
        set(&builder, totals, "bytes_read", integer(total->bytes_read));
        set(&builder, totals, "bytes_written", integer(total->bytes_written));
        set(&builder, totals, "connections_opened", integer(total->connections_opened));
        set(&builder, totals, "closed_by_server", integer(total->closed_by_server));
        set(&builder, totals, "warmup", counters_json(&builder, &total->warmup, is_open));
    }
    set(&builder, root, "totals", totals);

    json_t *rates = json_object();
    if (rates) {
        double seconds = result->duration_s;
        set(&builder, rates, "requests_per_s", json_real(seconds > 0 ? (double)result->fairness.responses / seconds : 0));
        set(&builder, rates, "bytes_read_per_s", json_real(seconds > 0 ? (double)total->bytes_read / seconds : 0));
        set(&builder, rates, "offered_per_s", is_open ? json_real(offered_rate(result)) : json_null());
        set(&builder, rates, "achieved_per_s", is_open ? json_real(achieved_rate(result)) : json_null());
        set(&builder, rates, "send_lag_p99_us",
            is_open ? integer((uint64_t)hdr_value_at_percentile(&total->lag, 99)) : json_null());
        set(&builder, rates, "saturated", is_open ? json_boolean(result_saturated(result)) : json_null());
    }
    set(&builder, root, "rates", rates);

    json_t *errors = json_object();
    if (errors) {
        for (int i = 0; i < ERROR_CLASSES; i++)
            set(&builder, errors, error_class_names[i], integer(measured->errors[i]));
        set(&builder, errors, "total", integer(total_errors(measured)));
        set(&builder, errors, "connect_without_request", integer(measured->connect_errors_without_request));
    }
    set(&builder, root, "errors", errors);

    set(&builder, root, "latency",
        latency_section(&builder, config, measured->censored, &total->response, &total->service, &total->lag));
    if (config->path_count > 1)
        set(&builder, root, "paths", paths_json(&builder, result));

    json_t *cpu = json_object();
    if (cpu) {
        double cpu_s = total->cpu_user_s + total->cpu_sys_s;
        set(&builder, cpu, "user_s", json_real(total->cpu_user_s));
        set(&builder, cpu, "sys_s", json_real(total->cpu_sys_s));
        set(&builder, cpu, "total_s", json_real(cpu_s));
        set(&builder, cpu, "us_per_request",
            result->fairness.responses ? json_real(cpu_s * 1e6 / (double)result->fairness.responses) : json_null());
        set(&builder, cpu, "process_user_s", json_real(result->process_user_s));
        set(&builder, cpu, "process_sys_s", json_real(result->process_sys_s));
    }
    set(&builder, root, "cpu", cpu);

    json_t *fairness = json_object();
    if (fairness) {
        const struct fairness *measured_fairness = &result->fairness;
        set(&builder, fairness, "connections", integer(measured_fairness->connections));
        set(&builder, fairness, "served", integer(measured_fairness->served));
        set(&builder, fairness, "starved", integer(measured_fairness->connections - measured_fairness->served));
        set(&builder, fairness, "min_per_connection", integer(measured_fairness->min_per_connection));
        set(&builder, fairness, "max_per_connection", integer(measured_fairness->max_per_connection));
        set(&builder, fairness, "jain_index", json_real(jain_index(measured_fairness)));
    }
    set(&builder, root, "fairness", fairness);

    json_t *idle = json_object();
    if (idle) {
        set(&builder, idle, "requested", integer(total->idle.requested));
        set(&builder, idle, "established", integer(total->idle.established));
        set(&builder, idle, "failed", integer(total->idle.failed));
        set(&builder, idle, "closed_by_peer", integer(total->idle.closed_by_peer));
        set(&builder, idle, "open_at_end", integer(total->idle.open_at_end));
        set(&builder, idle, "setup_s", json_real(total->idle.setup_s));
    }
    set(&builder, root, "idle", idle);

    json_t *timeline = json_array();
    for (size_t s = 0; s < result->timeline_len && timeline; s++)
        append(&builder, timeline, timeline_entry_json(&builder, result, s));
    set(&builder, root, "timeline", timeline);

    int status = 0;
    if (builder.failed) {
        fprintf(stderr, "loadgen: out of memory building the JSON document\n");
        status = -1;
    } else if (strcmp(path, "-") == 0) {
        if (json_dumpf(root, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10)) != 0 || fputc('\n', stdout) == EOF ||
            fflush(stdout) != 0) {
            fprintf(stderr, "loadgen: writing JSON to stdout: %s\n", strerror(errno));
            status = -1;
        }
    } else if (json_dump_file(root, path, JSON_COMPACT | JSON_REAL_PRECISION(10)) != 0) {
        fprintf(stderr, "loadgen: writing %s: %s\n", path, strerror(errno));
        status = -1;
    }
    json_decref(root);
    return status;
}
