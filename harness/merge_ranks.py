#!/usr/bin/env python3
"""merge_ranks.py - one merged bin/loadgen-mpi result from the ranks' own result files.

Every rank of bin/loadgen-mpi writes bin/loadgen's document for its share of the connections,
plus a "cluster" object (its rank, the cluster size, its host, the cluster totals, its clocks).
Rank 0 normally merges them with MPI; when a rank dies or a host is cut off that merged document
never appears, and this builds one from whatever rank files exist, saying in "cluster" which
hosts are missing and why. With every rank present and none failed, it is a complete merge.

usage: merge_ranks.py --out MERGED.json [--expect-hosts h1,h2] [--failed-host HOST=REASON ...] RANKFILE...
Exits 0 when something was merged, 1 when no rank file was usable (a document saying so is
written anyway) or MERGED.json could not be written, 2 on bad usage.
Library use: from merge_ranks import merge_documents
"""
import argparse
import copy
import json
import math
import os
import sys

SCHEMA = "c10k-lab/loadgen/2"
RANK_SCHEMAS = ("c10k-lab/loadgen/1", SCHEMA)  # /1: a bin/loadgen document given a cluster object
KINDS = ("response_time", "service_time", "send_lag")
PERCENTILES = ((50, "p50_us"), (75, "p75_us"), (90, "p90_us"), (99, "p99_us"), (99.9, "p99_9_us"), (99.99, "p99_99_us"))
ERRORS = ("connect", "read", "write", "timeout", "reset", "parse", "status", "body", "total", "connect_without_request")
SECTIONS = ("config", "environment", "totals", "rates", "errors", "latency", "cpu", "fairness", "idle", "timeline")
TIMELINE_NOTE = "partial merge: per-second percentiles are not mergeable from the ranks' summaries"

# --- harness/hdr.c's bucket layout, for LATENCY_HIGHEST_US and LATENCY_DIGITS of loadgen.h --------
# The JSON gives each bucket by its lowest value only; a percentile is the bucket's *highest*
# equivalent value, so the width has to come from the layout, computed here as hdr_init does.
LATENCY_HIGHEST_US = 3600000000
LATENCY_DIGITS = 3
# Sub-buckets: 2 * 10^digits rounded up to a power of two (2048 for 3 digits), as a bit count.
SUB_BUCKET_MAGNITUDE = (2 * 10 ** LATENCY_DIGITS - 1).bit_length()
HALF_MAGNITUDE = SUB_BUCKET_MAGNITUDE - 1
HALF_COUNT = 1 << HALF_MAGNITUDE
SUB_BUCKET_MASK = (1 << SUB_BUCKET_MAGNITUDE) - 1


def _index_of(value):
    """hdr_index_of: the bucket from the highest set bit, the first one covering 0..mask."""
    bucket = (value | SUB_BUCKET_MASK).bit_length() - (HALF_MAGNITUDE + 1)
    return ((bucket + 1) << HALF_MAGNITUDE) + ((value >> bucket) - HALF_COUNT)


def _lowest_at(index):
    bucket, sub_bucket = (index >> HALF_MAGNITUDE) - 1, (index & (HALF_COUNT - 1)) + HALF_COUNT
    if bucket < 0:
        bucket, sub_bucket = 0, sub_bucket - HALF_COUNT
    return sub_bucket << bucket


def bucket_highest(lowest):
    """The highest value equivalent to the bucket that starts at lowest (hdr_highest_at_index).
    ValueError if no bucket of loadgen's layout starts there: the rank used other settings."""
    if not isinstance(lowest, int) or not 0 <= lowest <= LATENCY_HIGHEST_US or _lowest_at(_index_of(lowest)) != lowest:
        raise ValueError(f"{lowest!r} is not where a bucket of loadgen's histogram starts")
    return lowest + (1 << max((_index_of(lowest) >> HALF_MAGNITUDE) - 1, 0)) - 1


def value_at_percentile(buckets, total, maximum, percentile):
    """hdr_value_at_percentile over [lowest, count] buckets in increasing order."""
    if total == 0:
        return 0
    rank = min(max(math.ceil(min(percentile, 100) / 100.0 * float(total)), 1), total)
    seen = 0
    for lowest, count in buckets:
        seen += count
        if seen >= rank:
            return min(bucket_highest(lowest), maximum)
    return maximum


# --- merging -----------------------------------------------------------------------------------

def _sum(objects, key):
    """A counter summed over the ranks; null where loadgen writes null (closed loop)."""
    values = [o[key] for o in objects]
    return None if any(v is None for v in values) else sum(values)


def _max_or_none(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _merge_latency(objects):
    """One latency_json object from the ranks' objects of one kind. The buckets have the same
    layout on every rank, so adding the counts of equal lowest values is the merged histogram and
    its percentiles are exact; min and max are the exact ones of the ranks."""
    counts = {}
    for o in objects:
        for lowest, count in o["histogram"]:
            counts[lowest] = counts.get(lowest, 0) + count
    buckets = sorted(counts.items())
    total = sum(o["count"] for o in objects)
    filled = [o for o in objects if o["count"] > 0]
    mean = sum(o["count"] * o["mean_us"] for o in filled) / total if total else 0.0
    # hdr_stdev is the population stdev (0 below two samples). Pooled: each rank's variance plus
    # its mean's distance to the pooled mean, which is E[x^2] - mean^2 without the cancellation.
    variance = sum(o["count"] * (o["stdev_us"] ** 2 + (o["mean_us"] - mean) ** 2) for o in filled) / total \
        if total >= 2 else 0.0
    maximum = max((o["max_us"] for o in filled), default=0)
    merged = {"count": total, "min_us": min((o["min_us"] for o in filled), default=0), "mean_us": mean,
              "stdev_us": math.sqrt(variance) if variance > 0 else 0.0, "max_us": maximum}
    for percentile, key in PERCENTILES:
        merged[key] = value_at_percentile(buckets, total, maximum, percentile)
    merged["clamped"] = sum(o["clamped"] for o in objects)
    merged["histogram"] = [[lowest, count] for lowest, count in buckets]
    return merged


def _merge_latency_section(sections):
    first = sections[0]
    censored = dict(first["censored"], count=sum(s["censored"]["count"] for s in sections))
    merged = {"unit": first["unit"], "corrected": first["corrected"], "censored": censored}
    for kind in KINDS:
        merged[kind] = None if first[kind] is None else _merge_latency([s[kind] for s in sections])
    return merged


def _merge_counters(objects):
    merged = {key: _sum(objects, key)
              for key in ("intended", "started", "completed", "failed", "in_flight_at_end", "unsent_at_end")}
    # Sums of balanced accounts balance, so the merged account is ok exactly when every rank's is.
    merged["accounting_ok"] = all(o["accounting_ok"] for o in objects)
    return merged


def _merge_paths(docs):
    """--mix: the ranks' paths[] entries matched by their path, in the lowest rank's order."""
    merged = []
    for first in docs[0]["paths"]:
        entries = [next(p for p in d["paths"] if p["path"] == first["path"]) for d in docs]
        entry = {key: first[key] for key in ("path", "percent", "request_bytes")}
        entry.update({key: _sum(entries, key) for key in ("started", "requests", "errors", "in_flight_at_end")})
        entry["latency"] = _merge_latency_section([e["latency"] for e in entries])
        merged.append(entry)
    return merged


def _merge_timeline(docs, path_names):
    """Counts per second add up; the seconds' percentiles come from histograms the JSON does not
    keep, so they are null (max_ms, an exact maximum, merges). Each rank counts its seconds from
    its own window start: second s of two ranks is the same wall-clock second only within
    cluster.window_skew_ms."""
    merged = []
    for s in range(max(len(d["timeline"]) for d in docs)):
        points = [d["timeline"][s] for d in docs if s < len(d["timeline"])]
        entry = {"second": s, "t": s + 1, "length_s": max(p["length_s"] for p in points)}
        entry.update({key: sum(p[key] for p in points) for key in ("completed", "requests", "errors")})
        entry.update({"p50_us": None, "p99_us": None, "p50_ms": None, "p99_ms": None,
                      "max_ms": _max_or_none(p["max_ms"] for p in points)})
        if path_names is not None:
            entry["paths"] = []
            for name in path_names:
                mine = [q for p in points for q in p["paths"] if q["path"] == name]
                entry["paths"].append({"path": name, "requests": sum(q["requests"] for q in mine),
                                       "errors": sum(q["errors"] for q in mine), "p50_ms": None, "p99_ms": None,
                                       "max_ms": _max_or_none(q["max_ms"] for q in mine)})
        merged.append(entry)
    return merged


def _fairness(docs):
    """Jain's index J = R^2 / (n*S) needs S, the sum of squares of the per-connection counts, which
    the document does not keep; it is recovered per rank as S = R^2 / (n*J) (J > 0; J = 0 means no
    response, S = 0), summed and J recomputed: exact up to the 10 digits J is written with."""
    parts = [d["fairness"] for d in docs]
    arrived = [d["totals"]["responses_in_window"] for d in docs]
    squares = sum(r * r / (f["connections"] * f["jain_index"]) for f, r in zip(parts, arrived) if f["jain_index"] > 0)
    merged = {key: sum(f[key] for f in parts) for key in ("connections", "served", "starved")}
    merged["min_per_connection"] = min(f["min_per_connection"] for f in parts)
    merged["max_per_connection"] = max(f["max_per_connection"] for f in parts)
    merged["jain_index"] = sum(arrived) ** 2 / (merged["connections"] * squares) if squares > 0 else 0.0
    return merged


def _path_names(doc):
    return [p["path"] for p in doc["paths"]] if "paths" in doc else None


def _problem(doc):
    """Why a rank document cannot be merged, or None."""
    try:
        if doc.get("schema") not in RANK_SCHEMAS:
            return f"schema {doc.get('schema')!r} is not one of {', '.join(RANK_SCHEMAS)}"
        cluster = doc["cluster"]
        if cluster.get("role", "rank") != "rank":
            return f"cluster.role is {cluster.get('role')!r}, not a rank's"
        if not (isinstance(cluster["rank"], int) and isinstance(cluster["size"], int)
                and 0 <= cluster["rank"] < cluster["size"] and isinstance(cluster["host"], str)
                and isinstance(cluster["start_realtime_ns"], int)
                and isinstance(cluster.get("window_realtime_ns", 0), (int, type(None)))):
            return "cluster.rank, size, host or start_realtime_ns is missing or out of range"
        sections = [doc["latency"]] + [p["latency"] for p in doc.get("paths", [])]
        for latency in (s[kind] for s in sections for kind in KINDS if s[kind] is not None):
            for lowest, _ in latency["histogram"]:
                bucket_highest(lowest)  # raises for a bucket of another layout
            if sum(count for _, count in latency["histogram"]) != latency["count"]:
                return "a histogram does not add up to its count"
        _measurements([doc])  # every field the merge reads, so a rank file cannot stop the merge
    except (ArithmeticError, AttributeError, KeyError, StopIteration, TypeError, ValueError) as error:
        return f"not a loadgen rank document ({type(error).__name__}: {error})"
    return None


def _differs(reference, doc):
    """Why doc's run cannot be merged with the lowest rank's: a mode, path set or timeout of its
    own would make the merged histograms and censored samples mean two things at once."""
    for what, get in (("mode", lambda d: d["config"]["mode"]), ("timeout", lambda d: d["config"]["timeout_s"]),
                      ("paths", lambda d: sorted(_path_names(d) or [])), ("size", lambda d: d["cluster"]["size"])):
        if get(doc) != get(reference):
            return f"its {what} {get(doc)!r} differs from rank {reference['cluster']['rank']}'s {get(reference)!r}"
    return None


def _host_of(doc):
    cluster = doc.get("cluster") if isinstance(doc, dict) else None
    return cluster.get("host") if isinstance(cluster, dict) and isinstance(cluster.get("host"), str) else None


def _select(docs, sources, expect_hosts, failed):
    """The usable rank documents in rank order, and every failed host with its reason."""
    failures = [{"host": host, "reason": reason} for host, reason in failed]
    by_rank = {}
    for doc, source in zip(docs, sources or [None] * len(docs)):
        problem = _problem(doc)
        if problem is None and doc["cluster"]["rank"] in by_rank:
            other = by_rank[doc["cluster"]["rank"]][0]["cluster"]
            problem = f"rank {other['rank']} again (first from host {other['host']})"
        if problem:
            failures.append({"host": _host_of(doc), "reason": f"{source}: {problem}" if source else problem})
        else:
            by_rank[doc["cluster"]["rank"]] = (doc, source)
    # The lowest rank is the reference the others must agree with.
    ranked = [by_rank[rank] for rank in sorted(by_rank)]
    usable = [doc for doc, _ in ranked[:1]]
    for doc, source in ranked[1:]:
        problem = _differs(usable[0], doc)
        if problem:
            failures.append({"host": doc["cluster"]["host"], "reason": f"{source}: {problem}" if source else problem})
        else:
            usable.append(doc)
    known = {d["cluster"]["host"] for d in usable} | {f["host"] for f in failures}
    failures += [{"host": h, "reason": "no usable rank file"} for h in expect_hosts if h not in known]
    failures += [{"host": d["cluster"]["host"], "reason": "interrupted"} for d in usable if d["totals"]["interrupted"]]
    return usable, failures


def _cluster(usable, failures, expect_hosts):
    size = usable[0]["cluster"]["size"] if usable else (len(expect_hosts) or None)
    ranks = {d["cluster"]["rank"] for d in usable}
    own = usable[0]["cluster"] if usable else {}
    cluster = {"role": "merged", "merged_by": "harness/merge_ranks.py",
               "partial": bool(failures) or size is None or len(usable) < size, "size": size,
               # As in loadgen-mpi's own merged cluster object: what the whole run was to be.
               **{key: own.get(key) for key in ("connections_total", "idle_total", "rate_total")},
               "ranks_merged": len(usable), "failed_hosts": failures,
               # Beyond the layout asked for: the only trace of a rank that left no file and no host.
               "missing_ranks": [r for r in range(size or 0) if r not in ranks]}

    def skews(key):
        values = [d["cluster"].get(key) for d in usable]
        low = min((v for v in values if v is not None), default=None)
        return [None if v is None else (v - low) / 1e6 for v in values]
    start, window = skews("start_realtime_ns"), skews("window_realtime_ns")
    cluster.update({"start_skew_ms": _max_or_none(start), "window_skew_ms": _max_or_none(window), "hosts": []})
    for d, start_ms, window_ms in zip(usable, start, window):
        cluster["hosts"].append({
            "rank": d["cluster"]["rank"], "host": d["cluster"]["host"], "connections": d["config"]["connections"],
            "idle": d["config"]["idle"], "requests": d["totals"]["completed"],
            "responses_in_window": d["totals"]["responses_in_window"], "errors": d["errors"]["total"],
            "start_skew_ms": start_ms, "window_skew_ms": window_ms, "cpu_s": d["cpu"]["total_s"],
            "interrupted": d["totals"]["interrupted"]})
    return cluster


def merge_documents(docs, expect_hosts=(), failed=(), sources=None):
    """The merged document of the rank documents docs (parsed JSON; not modified). expect_hosts:
    hosts that should each have a rank; failed: (host, reason) pairs known to the caller (host
    None when unknown); sources: a name per doc (its file) to start its problems with."""
    usable, failures = _select(docs, sources, expect_hosts, failed)
    cluster = _cluster(usable, failures, expect_hosts)
    if not usable:
        return {"schema": SCHEMA, **{key: None for key in SECTIONS}, "cluster": cluster}
    return {**_measurements(usable), "cluster": cluster}


def _measurements(docs):
    """Everything but "cluster", merged from docs (lowest rank first)."""
    first = docs[0]
    config = copy.deepcopy(first["config"])
    config["connections"] = first["cluster"].get("connections_total", config["connections"])
    config["idle"] = first["cluster"].get("idle_total", config["idle"])
    config["rate"] = first["cluster"].get("rate_total", config["rate"]) or None  # loadgen: null in closed loop
    totals = _merge_counters([d["totals"] for d in docs])
    parts = [d["totals"] for d in docs]
    totals["duration_s"] = max(t["duration_s"] for t in parts)
    totals["interrupted"] = any(t["interrupted"] for t in parts)
    for key in ("responses_in_window", "bytes_read", "bytes_written", "connections_opened", "closed_by_server"):
        totals[key] = sum(t[key] for t in parts)
    totals["warmup"] = _merge_counters([t["warmup"] for t in parts])

    latency = _merge_latency_section([d["latency"] for d in docs])
    seconds = totals["duration_s"]
    rank_rates = [d["rates"] for d in docs]
    saturated = [r["saturated"] for r in rank_rates if r["saturated"] is not None]
    rates = {"requests_per_s": totals["responses_in_window"] / seconds if seconds > 0 else 0.0,
             "bytes_read_per_s": totals["bytes_read"] / seconds if seconds > 0 else 0.0,
             # Each rank's rate over its own window: summed, as the ranks ran side by side.
             "offered_per_s": _sum(rank_rates, "offered_per_s"), "achieved_per_s": _sum(rank_rates, "achieved_per_s"),
             "send_lag_p99_us": None if latency["send_lag"] is None else latency["send_lag"]["p99_us"],
             # One saturated rank makes its share of the latencies those of an overloaded client.
             "saturated": any(saturated) if saturated else None}
    cpu_parts = [d["cpu"] for d in docs]
    cpu = {key: sum(c[key] for c in cpu_parts) for key in ("user_s", "sys_s", "total_s")}
    cpu["us_per_request"] = cpu["total_s"] * 1e6 / totals["responses_in_window"] if totals["responses_in_window"] else None
    cpu.update({key: sum(c[key] for c in cpu_parts) for key in ("process_user_s", "process_sys_s")})
    idle = {key: sum(d["idle"][key] for d in docs)
            for key in ("requested", "established", "failed", "closed_by_peer", "open_at_end")}
    idle["setup_s"] = max(d["idle"]["setup_s"] for d in docs)

    merged = {"schema": SCHEMA, "config": config, "environment": copy.deepcopy(first["environment"]),
              "totals": totals, "rates": rates,
              "errors": {key: sum(d["errors"][key] for d in docs) for key in ERRORS},
              "latency": latency}
    if "paths" in first:
        merged["paths"] = _merge_paths(docs)
    merged.update({"cpu": cpu, "fairness": _fairness(docs), "idle": idle,
                   "timeline": _merge_timeline(docs, _path_names(first)), "timeline_note": TIMELINE_NOTE})
    return merged


# --- command line ------------------------------------------------------------------------------

def _failed_host(text):
    host, equals, reason = text.partition("=")
    if not host or not equals or not reason:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST=REASON")
    return host, reason


def _host_list(text):
    hosts = [h.strip() for h in text.split(",")]
    if not all(hosts):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty host name")
    return hosts


def write_atomic(path, doc):
    """Readers see the old file or the whole new one: a temporary file beside it, then a rename."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "x", encoding="utf-8") as out:
            json.dump(doc, out, allow_nan=False)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _not_json(name):
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity; loadgen never writes them


def main(argv=None):
    parser = argparse.ArgumentParser(description="Merge bin/loadgen-mpi rank result files, also partially.")
    parser.add_argument("--out", required=True, help="the merged document to write")
    parser.add_argument("--expect-hosts", type=_host_list, default=[], help="comma-separated hosts that should have a rank")
    parser.add_argument("--failed-host", type=_failed_host, action="append", default=[], metavar="HOST=REASON",
                        help="a host known to have failed (repeatable)")
    parser.add_argument("rank_files", nargs="*", metavar="RANKFILE")
    args = parser.parse_args(argv)

    docs, sources, failed = [], [], list(args.failed_host)
    for path in args.rank_files:
        try:
            with open(path, encoding="utf-8") as file:
                docs.append(json.load(file, parse_constant=_not_json))
            sources.append(path)
        except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            failed.append((None, f"{path}: {error}"))
    merged = merge_documents(docs, args.expect_hosts, failed, sources)
    try:
        write_atomic(args.out, merged)
    except OSError as error:
        print(f"merge_ranks: writing {args.out}: {error}", file=sys.stderr)
        return 1
    for failure in merged["cluster"]["failed_hosts"]:
        print(f"merge_ranks: failed: {failure['host'] or '(unknown host)'}: {failure['reason']}", file=sys.stderr)
    return 0 if merged["cluster"]["ranks_merged"] else 1


if __name__ == "__main__":
    sys.exit(main())
