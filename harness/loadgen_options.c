/* loadgen_options.c - the command line, parsed strictly: a value that is not entirely a number in
 * range is an error, never silently 0, because a run with a misread flag measures the wrong thing.
 * Also builds the request bytes once, so the threads only ever copy pointers to them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../servers/common/http_syntax.h"
#include "loadgen.h"

#define MAX_SOURCES 65536

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: loadgen [options] http://HOST[:PORT]/PATH\n"
            "  -c, --connections N   connections making requests (default 10)\n"
            "  -t, --threads N       threads, each with its own epoll loop (default 1)\n"
            "  -d, --duration T      measured time, e.g. 10, 10s, 500ms, 2m (default 10s)\n"
            "      --warmup T        run this long first without measuring (default 0)\n"
            "  -R, --rate N          open loop: N requests/s in total, paced evenly per connection;\n"
            "                        latency is then measured from the intended send time\n"
            "  -P, --pipeline N      requests in flight per connection (default 1)\n"
            "      --close           a new connection for every request (Connection: close)\n"
            "      --idle N          also hold N connections open and silent (the C10K shape)\n"
            "  -m, --method M        request method (default GET, or POST with --body-bytes)\n"
            "      --body-bytes N    send a body of N bytes with Content-Length\n"
            "  -H, --header 'N: V'   add a request header (repeatable)\n"
            "      --timeout T       a request not answered within T fails (default 5s)\n"
            "      --source A[-B]    bind connections to these IPv4 source addresses in turn,\n"
            "                        e.g. 127.0.0.1-127.0.0.16 (a comma-separated list is allowed)\n"
            "      --expect-status L only these statuses count as success, e.g. 200,204 (default 2xx)\n"
            "      --expect-bytes N  a response body must be exactly N bytes (on every path)\n"
            "      --mix PATH:PERCENT  send PERCENT %% of the requests (e.g. 10 or 0.5) to PATH\n"
            "                        instead of the URL's path (repeatable; the URL's path keeps\n"
            "                        the rest, which must stay above 0); results per path\n"
            "      --json FILE       write the results as JSON to FILE ('-' for stdout)\n"
            "      --phase-fd N      write \"measure\" to descriptor N (>= 3, open for writing) when\n"
            "                        the measured window begins and \"end\" when it ends\n"
            "      --progress        a progress line per second on stderr (default: if a terminal)\n"
            "      --quiet           no summary and no progress line\n"
            "  -h, --help            print this help\n"
            "      --version         print the version\n");
}

static _Noreturn void usage_error(const char *problem, const char *value)
{
    fprintf(stderr, "loadgen: %s%s%s\n", problem, value ? ": " : "", value ? value : "");
    print_usage(stderr);
    exit(2);
}

static bool parse_long(const char *text, long long min, long long max, long long *result)
{
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return false;
    *result = value;
    return true;
}

static bool parse_int(const char *text, int min, int max, int *result)
{
    long long value;
    if (!parse_long(text, min, max, &value))
        return false;
    *result = (int)value;
    return true;
}

/* A time: a number with an optional unit (ms, s, m, h; seconds without one). */
static bool parse_time(const char *text, bool allow_zero, double *result)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || !isfinite(value) || value < 0)
        return false;
    if (strcmp(end, "ms") == 0)
        value /= 1000;
    else if (strcmp(end, "m") == 0)
        value *= 60;
    else if (strcmp(end, "h") == 0)
        value *= 3600;
    else if (strcmp(end, "s") != 0 && *end != '\0')
        return false;
    if ((!allow_zero && value <= 0) || value > 86400 * 7)
        return false;
    *result = value;
    return true;
}

static bool parse_rate(const char *text, double *result)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(value) || value <= 0 || value > 1e9)
        return false;
    *result = value;
    return true;
}

static bool is_token(const char *text, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!http_is_token_char((unsigned char)text[i]))
            return false;
    return true;
}

/* "Name: value" with a token name and no control characters but HTAB. */
static bool valid_header(const char *header)
{
    size_t name_len, value_len;
    const char *value;
    return http_split_field_line(header, strlen(header), &name_len, &value, &value_len) == HTTP_FIELD_LINE_OK;
}

static bool header_named(const char *header, const char *name)
{
    size_t len = strlen(name);
    return strncasecmp(header, name, len) == 0 && header[len] == ':';
}

/* A descriptor for the phase lines: not stdin, stdout or stderr (they carry the summary and the
 * messages, and loadgen closes this one after the run), and open for writing now, so a typo is a
 * usage error at once rather than a lost line at the end of the warm-up. */
static bool parse_phase_fd(const char *text, int *result)
{
    int fd;
    if (!parse_int(text, 3, INT_MAX, &fd))
        return false;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || ((flags & O_ACCMODE) != O_WRONLY && (flags & O_ACCMODE) != O_RDWR))
        return false;
    *result = fd;
    return true;
}

/* "200,204": statuses 100..599. */
static bool parse_status_list(const char *text, struct config *config)
{
    char *copy = strdup(text);
    if (copy == NULL)
        return false;
    bool ok = true;
    config->expect_status_count = 0;
    char *saved;
    for (char *item = strtok_r(copy, ",", &saved); item; item = strtok_r(NULL, ",", &saved)) {
        int status;
        if (config->expect_status_count == MAX_EXPECT_STATUS || !parse_int(item, 100, 599, &status)) {
            ok = false;
            break;
        }
        config->expect_status[config->expect_status_count++] = status;
    }
    free(copy);
    return ok && config->expect_status_count > 0;
}

/* A request target loadgen sends as it is: visible ASCII only (the user percent-encodes the rest). */
static bool visible_ascii(const char *text)
{
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

/* A percent of --mix: digits with at most 4 decimals ("10", "0.5", "33.3333"), above 0 and
 * below 100, in millionths. No sign, exponent, "inf" or "nan": strtod would take them. */
static bool parse_percent(const char *text, int32_t *millionths)
{
    int64_t value = 0;
    int whole_digits = 0, decimals = 0;
    const char *p = text;
    for (; *p >= '0' && *p <= '9'; p++, whole_digits++) {
        value = value * 10 + (*p - '0');
        if (value >= 100)
            return false;
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, decimals++) {
            if (decimals == 4)
                return false;
            value = value * 10 + (*p - '0');
        }
        if (decimals == 0)
            return false;
    }
    if (*p != '\0' || whole_digits == 0)
        return false;
    for (; decimals < 4; decimals++)
        value *= 10;
    if (value <= 0)
        return false;
    *millionths = (int32_t)value;
    return true;
}

/* --mix PATH:PERCENT (kept as given until the URL's path is known). The percent follows the last
 * colon, so a path may contain colons. Exits 2 with the usage on a bad value. */
static void parse_mix(const char *text, struct config *config)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL)
        usage_error("--mix needs PATH:PERCENT (e.g. /slow:10), not", text);
    size_t path_len = (size_t)(colon - text);
    if (path_len == 0 || text[0] != '/')
        usage_error("--mix: the path must be in origin form, starting with '/'", text);
    if (config->path_count == MAX_PATHS)
        usage_error("--mix: too many paths (at most 15 besides the URL's)", text);
    struct request_path *path = &config->paths[config->path_count];
    if (!parse_percent(colon + 1, &path->weight))
        usage_error("--mix: the percent must be a number above 0 and below 100, with at most 4 decimals", text);
    path->path = strndup(text, path_len);
    if (path->path == NULL)
        usage_error("out of memory", NULL);
    if (!visible_ascii(path->path) || strchr(path->path, '#') != NULL)
        usage_error("--mix: the path must be visible ASCII without a fragment (percent-encode the rest)", text);
    config->path_count++;
}

/* After the URL: the URL's path gets the share the --mix paths leave, which must be above 0. */
static void finish_mix(struct config *config)
{
    int64_t mixed = 0;
    for (int p = 1; p < config->path_count; p++) {
        mixed += config->paths[p].weight;
        for (int q = 0; q < p; q++)
            if (strcmp(config->paths[p].path, config->paths[q].path) == 0)
                usage_error(q == 0 ? "--mix: a path is the URL's own path" : "--mix: a path is given twice",
                            config->paths[p].path);
    }
    if (mixed >= MIX_WHOLE) {
        char total[64];
        snprintf(total, sizeof total, "%g %%", (double)mixed / (MIX_WHOLE / 100));
        usage_error("--mix: the percents must add up to less than 100 (the URL's path gets the rest), not", total);
    }
    config->paths[0].weight = (int32_t)(MIX_WHOLE - mixed);
}

/* "127.0.0.1-127.0.0.16,127.0.1.1": IPv4 addresses, expanded into config->sources. */
static bool parse_sources(const char *text, struct config *config)
{
    char *copy = strdup(text);
    if (copy == NULL)
        return false;
    bool ok = true;
    char *saved;
    for (char *item = strtok_r(copy, ",", &saved); item && ok; item = strtok_r(NULL, ",", &saved)) {
        char *dash = strchr(item, '-');
        if (dash)
            *dash = '\0';
        struct in_addr first, last;
        if (inet_pton(AF_INET, item, &first) != 1 || (dash && inet_pton(AF_INET, dash + 1, &last) != 1)) {
            ok = false;
            break;
        }
        uint32_t from = ntohl(first.s_addr), to = dash ? ntohl(last.s_addr) : from;
        if (to < from || (uint64_t)config->source_count + (to - from) + 1 > MAX_SOURCES) {
            ok = false;
            break;
        }
        uint32_t *grown = realloc(config->sources, ((size_t)config->source_count + (to - from) + 1) * sizeof *grown);
        if (grown == NULL) {
            ok = false;
            break;
        }
        config->sources = grown;
        for (uint64_t address = from; address <= to; address++)
            config->sources[config->source_count++] = htonl((uint32_t)address);
    }
    free(copy);
    return ok && config->source_count > 0;
}

/* http://HOST[:PORT][/PATH]; HOST may be [IPv6]. Resolves it once, here. */
static void parse_url(const char *url, struct config *config)
{
    if (strncmp(url, "http://", 7) != 0)
        usage_error("the URL must start with http://", url);
    const char *host = url + 7;
    const char *host_end, *rest;
    if (*host == '[') {
        host_end = strchr(host, ']');
        if (host_end == NULL)
            usage_error("unclosed [ in URL", url);
        rest = host_end + 1;
        host++;
    } else {
        host_end = host + strcspn(host, ":/?#");
        rest = host_end;
    }
    if (host_end == host)
        usage_error("no host in URL", url);
    config->host = strndup(host, (size_t)(host_end - host));
    if (config->host == NULL)
        usage_error("out of memory", NULL);

    config->port = 80;
    const char *authority_end = rest;
    if (*rest == ':') {
        size_t digits = strcspn(rest + 1, "/?#");
        char port_text[8];
        if (digits == 0 || digits >= sizeof port_text)
            usage_error("bad port in URL", url);
        memcpy(port_text, rest + 1, digits);
        port_text[digits] = '\0';
        if (!parse_int(port_text, 1, 65535, &config->port))
            usage_error("bad port in URL", url);
        rest += 1 + digits;
        authority_end = rest;
    }
    /* The Host header repeats the authority as written (with the port only if one was given). */
    const char *authority = url + 7;
    config->host_header = strndup(authority, (size_t)(authority_end - authority));
    if (config->host_header == NULL)
        usage_error("out of memory", NULL);
    if (*rest == '#')
        usage_error("the URL has a fragment", url);
    if (*rest == '?' || *rest == '\0') {
        /* "http://h:1?q" means path "/?q". */
        size_t len = strcspn(rest, "#");
        config->path = malloc(len + 2);
        if (config->path == NULL)
            usage_error("out of memory", NULL);
        config->path[0] = '/';
        memcpy(config->path + 1, rest, len);
        config->path[len + 1] = '\0';
    } else {
        config->path = strndup(rest, strcspn(rest, "#"));
        if (config->path == NULL)
            usage_error("out of memory", NULL);
    }
    if (!visible_ascii(config->path))
        usage_error("the URL path must be visible ASCII (percent-encode the rest)", url);
    config->paths[0].path = config->path;

    char port_text[8];
    snprintf(port_text, sizeof port_text, "%d", config->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *found;
    int error = getaddrinfo(config->host, port_text, &hints, &found);
    if (error != 0) {
        fprintf(stderr, "loadgen: cannot resolve %s: %s\n", config->host, gai_strerror(error));
        exit(2);
    }
    memcpy(&config->address, found->ai_addr, found->ai_addrlen);
    config->address_len = found->ai_addrlen;
    freeaddrinfo(found);
}

/* Appends to a growing string; exits on out-of-memory (start-up only). */
struct text {
    char *data;
    size_t len;
    size_t cap;
};

static void text_append(struct text *text, const char *bytes, size_t len)
{
    if (text->len + len + 1 > text->cap) {
        size_t cap = text->cap ? text->cap : 256;
        while (cap < text->len + len + 1)
            cap *= 2;
        char *grown = realloc(text->data, cap);
        if (grown == NULL) {
            fprintf(stderr, "loadgen: out of memory building the request\n");
            exit(1);
        }
        text->data = grown;
        text->cap = cap;
    }
    memcpy(text->data + text->len, bytes, len);
    text->len += len;
    text->data[text->len] = '\0';
}

static void text_add(struct text *text, const char *string)
{
    text_append(text, string, strlen(string));
}

/* One request for path: the same method, headers and body whatever the path. */
static void build_one(const struct config *config, const char *path, struct text *one_text)
{
    struct text one = {0};
    text_add(&one, config->method);
    text_add(&one, " ");
    text_add(&one, path);
    text_add(&one, " HTTP/1.1\r\n");
    bool has_host = false;
    for (int i = 0; i < config->header_count; i++)
        has_host |= header_named(config->headers[i], "host");
    if (!has_host) {
        text_add(&one, "Host: ");
        text_add(&one, config->host_header);
        text_add(&one, "\r\n");
    }
    for (int i = 0; i < config->header_count; i++) {
        text_add(&one, config->headers[i]);
        text_add(&one, "\r\n");
    }
    if (config->body_bytes >= 0) {
        char length[64];
        snprintf(length, sizeof length, "Content-Length: %lld\r\n", config->body_bytes);
        text_add(&one, length);
    }
    if (config->close)
        text_add(&one, "Connection: close\r\n");
    text_add(&one, "\r\n");
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz";
    for (long long i = 0; i < config->body_bytes; i++)
        text_append(&one, &alphabet[i % 26], 1);
    *one_text = one;
}

static void build_request(struct config *config)
{
    struct text one;
    build_one(config, config->path, &one);
    config->request_len = one.len;
    if ((size_t)config->pipeline > SIZE_MAX / 2 / one.len)
        usage_error("request too large to pipeline", NULL);
    config->request = malloc(one.len * (size_t)config->pipeline);
    if (config->request == NULL) {
        fprintf(stderr, "loadgen: out of memory for the request\n");
        exit(1);
    }
    for (int i = 0; i < config->pipeline; i++)
        memcpy(config->request + (size_t)i * one.len, one.data, one.len);
    free(one.data);
    config->paths[0].request = config->request;
    config->paths[0].request_len = config->request_len;
    config->longest_request = config->request_len;
    /* The --mix paths: one copy each; a pipelined batch of mixed paths is written with writev. */
    for (int p = 1; p < config->path_count; p++) {
        build_one(config, config->paths[p].path, &one);
        config->paths[p].request = one.data;
        config->paths[p].request_len = one.len;
        if (one.len > config->longest_request)
            config->longest_request = one.len;
    }
}

void options_parse(int argc, char **argv, struct config *config)
{
    enum { OPT_WARMUP = 256, OPT_CLOSE, OPT_IDLE, OPT_BODY_BYTES, OPT_TIMEOUT, OPT_SOURCE, OPT_JSON,
           OPT_EXPECT_STATUS, OPT_EXPECT_BYTES, OPT_QUIET, OPT_PROGRESS, OPT_VERSION, OPT_PHASE_FD, OPT_MIX };
    static const struct option long_options[] = {
        {"connections", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"rate", required_argument, NULL, 'R'},
        {"pipeline", required_argument, NULL, 'P'},
        {"close", no_argument, NULL, OPT_CLOSE},
        {"idle", required_argument, NULL, OPT_IDLE},
        {"method", required_argument, NULL, 'm'},
        {"body-bytes", required_argument, NULL, OPT_BODY_BYTES},
        {"header", required_argument, NULL, 'H'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"source", required_argument, NULL, OPT_SOURCE},
        {"json", required_argument, NULL, OPT_JSON},
        {"phase-fd", required_argument, NULL, OPT_PHASE_FD},
        {"expect-status", required_argument, NULL, OPT_EXPECT_STATUS},
        {"expect-bytes", required_argument, NULL, OPT_EXPECT_BYTES},
        {"mix", required_argument, NULL, OPT_MIX},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    *config = (struct config){
        .connections = 10, .threads = 1, .duration_s = 10, .pipeline = 1, .timeout_s = 5,
        .body_bytes = -1, .expect_bytes = -1, .phase_fd = -1, .path_count = 1,
    };
    bool threads_given = false;

    opterr = 0; /* we print our own message, with the usage */
    int option;
    while ((option = getopt_long(argc, argv, ":c:t:d:R:P:m:H:h", long_options, NULL)) != -1) {
        bool ok = true;
        switch (option) {
        case 'c': ok = parse_int(optarg, 1, 1000000, &config->connections); break;
        case 't': ok = parse_int(optarg, 1, 1024, &config->threads); threads_given = true; break;
        case 'd': ok = parse_time(optarg, false, &config->duration_s); break;
        case OPT_WARMUP: ok = parse_time(optarg, true, &config->warmup_s); break;
        case 'R': ok = parse_rate(optarg, &config->rate); break;
        case 'P': ok = parse_int(optarg, 1, 1024, &config->pipeline); break;
        case OPT_CLOSE: config->close = true; break;
        case OPT_IDLE: ok = parse_int(optarg, 0, 1000000, &config->idle); break;
        case 'm': config->method = optarg; ok = is_token(optarg, strlen(optarg)); break;
        case OPT_BODY_BYTES: ok = parse_long(optarg, 0, 1LL << 30, &config->body_bytes); break;
        case 'H': {
            ok = valid_header(optarg);
            const char **grown = realloc(config->headers, ((size_t)config->header_count + 1) * sizeof *grown);
            if (grown == NULL)
                usage_error("out of memory", NULL);
            config->headers = grown;
            config->headers[config->header_count++] = optarg;
            break;
        }
        case OPT_TIMEOUT: ok = parse_time(optarg, false, &config->timeout_s); break;
        case OPT_SOURCE: ok = parse_sources(optarg, config); break;
        case OPT_JSON: config->json_path = optarg; ok = *optarg != '\0'; break;
        case OPT_PHASE_FD: ok = parse_phase_fd(optarg, &config->phase_fd); break;
        case OPT_EXPECT_STATUS: ok = parse_status_list(optarg, config); break;
        case OPT_EXPECT_BYTES: ok = parse_long(optarg, 0, LLONG_MAX, &config->expect_bytes); break;
        case OPT_MIX: parse_mix(optarg, config); break;
        case OPT_QUIET: config->quiet = true; break;
        case OPT_PROGRESS: config->progress = true; break;
        case 'h':
            print_usage(stdout);
            exit(0);
        case OPT_VERSION:
            printf("loadgen (c10k-lab) %s\n", loadgen_version);
            exit(0);
        case ':':
            usage_error("missing value for", argv[optind - 1]);
        default:
            usage_error("unknown option", argv[optind - 1]);
        }
        if (!ok)
            usage_error("bad value", optarg);
    }
    if (optind == argc)
        usage_error("no URL given", NULL);
    if (optind + 1 < argc)
        usage_error("unexpected argument", argv[optind + 1]);
    config->url = argv[optind];

    if (config->threads > config->connections) {
        if (threads_given)
            usage_error("more threads than connections", NULL);
        config->threads = config->connections;
    }
    if (config->close && config->pipeline > 1)
        usage_error("--close and --pipeline > 1 exclude each other (one request per connection)", NULL);
    if (config->method == NULL)
        config->method = config->body_bytes >= 0 ? "POST" : "GET";
    config->head_request = strcmp(config->method, "HEAD") == 0;
    config->timeout_ns = (int64_t)llround(config->timeout_s * 1e9);
    /* One process drives everything; bin/loadgen-mpi's ranks change these to their share. */
    config->cluster_rank = 0;
    config->cluster_size = 1;
    config->cluster_connections = config->connections;
    config->cluster_rate = config->rate;

    parse_url(config->url, config);
    finish_mix(config);
    if (config->source_count > 0 && config->address.ss_family != AF_INET)
        usage_error("--source takes IPv4 addresses, but the target is not IPv4", config->host);
    build_request(config);
}

void options_free(struct config *config)
{
    free(config->host);
    free(config->host_header);
    free(config->path);
    free(config->headers);
    free(config->sources);
    free(config->request);
    for (int p = 1; p < config->path_count; p++) {
        free(config->paths[p].path);
        free(config->paths[p].request);
    }
}
