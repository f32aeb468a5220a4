#!/usr/bin/env python3
"""Checks loadgen JSON documents against the field table of docs/loadgen.md.

Usage: check_json.py docs/loadgen.md RESULT.json [RESULT.json ...]

Every documented field must be present with its documented type, every field present must be
documented, and the numbers must agree with each other (accounting, histogram counts, timeline
sums, percentile order). Prints one line per problem and exits 1 if there was any."""
import json
import math
import re
import sys

KINDS = ("response_time", "service_time", "send_lag")
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|")


def read_fields(doc_path):
    """{path: (types, nullable)} from the doc's JSON table, with <kind> expanded."""
    fields = {}
    in_table = False
    with open(doc_path, encoding="utf-8") as doc:
        for line in doc:
            if line.startswith("| field | type |"):
                in_table = True
                continue
            if in_table and not line.startswith("|"):
                break
            match = ROW.match(line)
            if not in_table or not match:
                continue
            path, type_text = match.group(1), match.group(2)
            nullable = type_text.endswith(" or null")
            base = type_text[: -len(" or null")] if nullable else type_text
            paths = [path.replace("<kind>", kind) for kind in KINDS] if "<kind>" in path else [path]
            for expanded in paths:
                fields[expanded] = (base, nullable)
    return fields


def type_ok(value, type_name):
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name == "array":
        return isinstance(value, list)
    if type_name == "object":
        return isinstance(value, dict)
    raise ValueError("unknown type in the doc: " + type_name)


def walk(value, path, found):
    """Every (documented-style path, value) in the document."""
    if path:
        found.append((path, value))
    if isinstance(value, dict):
        for key, item in value.items():
            walk(item, f"{path}.{key}" if path else key, found)
    elif isinstance(value, list):
        for item in value:
            # The elements of a histogram pair are not fields of their own.
            if path.endswith("histogram[]"):
                continue
            walk(item, path + "[]", found)


def check_fields(doc, fields, problems):
    found = []
    walk(doc, "", found)
    present = {}
    for path, value in found:
        present.setdefault(path, []).append(value)
    for path, values in present.items():
        if path not in fields:
            problems.append(f"field {path} is not documented")
            continue
        type_name, nullable = fields[path]
        for value in values:
            if value is None and nullable:
                continue
            if not type_ok(value, type_name):
                problems.append(f"field {path} = {value!r:.60} is not {type_name}{' or null' if nullable else ''}")
                break
    for path, (type_name, nullable) in fields.items():
        if path in present:
            continue
        # Absent is fine only below a null parent or inside an empty array.
        parent = path
        excused = False
        while "." in parent or parent.endswith("[]"):
            parent = parent[:-2] if parent.endswith("[]") else parent.rsplit(".", 1)[0]
            if parent in present and all(v is None or v == [] for v in present[parent]):
                excused = True
                break
            if parent in present:
                break
        if not excused:
            problems.append(f"documented field {path} is missing")


def check_latency(name, latency, problems):
    histogram = latency["histogram"]
    total = 0
    previous = -1
    for pair in histogram:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, int) for x in pair)):
            problems.append(f"{name}.histogram entry {pair!r} is not [value_us, count]")
            return
        value, count = pair
        if value <= previous or count <= 0:
            problems.append(f"{name}.histogram is not increasing with positive counts at {pair}")
            return
        previous = value
        total += count
    if total != latency["count"]:
        problems.append(f"{name}: histogram counts add to {total}, count is {latency['count']}")
    if latency["count"] == 0:
        return
    order = ["min_us", "p50_us", "p75_us", "p90_us", "p99_us", "p99_9_us", "p99_99_us", "max_us"]
    values = [latency[key] for key in order]
    if values != sorted(values):
        problems.append(f"{name}: percentiles out of order {dict(zip(order, values))}")
    if not latency["min_us"] <= latency["mean_us"] <= latency["max_us"]:
        problems.append(f"{name}: mean {latency['mean_us']} outside [min, max]")


def check_consistency(doc, problems):
    open_loop = doc["config"]["mode"] == "open"
    if doc["schema"] != "c10k-lab/loadgen/1":
        problems.append(f"schema is {doc['schema']!r}")
    if open_loop != (doc["config"]["rate"] is not None):
        problems.append("config.mode and config.rate disagree")
    errors = doc["errors"]
    classes = ["connect", "read", "write", "timeout", "reset", "parse", "status", "body"]
    if errors["total"] != sum(errors[c] for c in classes):
        problems.append("errors.total is not the sum of the classes")
    for name, totals in (("totals", doc["totals"]), ("totals.warmup", doc["totals"]["warmup"])):
        if totals["started"] != totals["completed"] + totals["failed"] + totals["in_flight_at_end"]:
            problems.append(f"{name}: started != completed + failed + in_flight_at_end")
        if open_loop and totals["intended"] != totals["started"] + totals["unsent_at_end"]:
            problems.append(f"{name}: intended != started + unsent_at_end")
        if not totals["accounting_ok"]:
            problems.append(f"{name}.accounting_ok is false")
        if (totals["intended"] is None) == open_loop:
            problems.append(f"{name}.intended must be null exactly in closed loop")
    totals = doc["totals"]
    if totals["failed"] != errors["total"] - errors["connect_without_request"]:
        problems.append("totals.failed != errors.total - errors.connect_without_request")
    latency = doc["latency"]
    for kind in KINDS:
        if (latency[kind] is None) == (kind == "response_time" or open_loop):
            problems.append(f"latency.{kind} null-ness does not match the mode")
        if latency[kind] is not None:
            check_latency("latency." + kind, latency[kind], problems)
    if latency["censored"]["count"] != errors["timeout"]:
        problems.append("latency.censored.count != errors.timeout")
    if latency["response_time"]["count"] != totals["completed"] + latency["censored"]["count"]:
        problems.append("response_time.count != completed + censored")
    if open_loop:
        if latency["service_time"]["count"] != latency["response_time"]["count"]:
            problems.append("service_time.count != response_time.count")
        if latency["send_lag"]["count"] != totals["started"]:
            problems.append("send_lag.count != totals.started")
        if not (doc["rates"]["saturated"] is not None and doc["rates"]["offered_per_s"] is not None):
            problems.append("open-loop rates missing")
    timeline = doc["timeline"]
    if [point["second"] for point in timeline] != list(range(len(timeline))):
        problems.append("timeline seconds are not 0, 1, 2, ...")
    if len(timeline) != max(1, math.ceil(totals["duration_s"] - 1e-9)) and totals["duration_s"] > 0:
        problems.append(f"timeline has {len(timeline)} seconds for a {totals['duration_s']} s run")
    if sum(p["completed"] for p in timeline) != totals["completed"]:
        problems.append("timeline completed does not add up to totals.completed")
    if sum(p["errors"] for p in timeline) != errors["total"]:
        problems.append("timeline errors do not add up to errors.total")
    duration = totals["duration_s"]
    arrived = totals["responses_in_window"]
    if duration > 0 and abs(doc["rates"]["requests_per_s"] * duration - arrived) > 1e-6 * max(1, arrived) + 1e-6:
        problems.append("rates.requests_per_s * duration_s != totals.responses_in_window")
    fairness = doc["fairness"]
    if fairness["connections"] != doc["config"]["connections"]:
        problems.append("fairness.connections != config.connections")
    if fairness["served"] + fairness["starved"] != fairness["connections"]:
        problems.append("fairness.served + starved != connections")
    if not fairness["min_per_connection"] <= fairness["max_per_connection"] <= arrived:
        problems.append("fairness: not min <= max <= totals.responses_in_window")
    if (fairness["served"] == fairness["connections"]) != (fairness["min_per_connection"] > 0):
        problems.append("fairness: min_per_connection > 0 exactly when every connection was served")
    if arrived and not 1 / fairness["connections"] - 1e-9 <= fairness["jain_index"] <= 1 + 1e-9:
        problems.append(f"fairness.jain_index {fairness['jain_index']} outside [1/n, 1]")
    cpu = doc["cpu"]
    if abs(cpu["total_s"] - cpu["user_s"] - cpu["sys_s"]) > 1e-9:
        problems.append("cpu.total_s != user_s + sys_s")
    idle = doc["idle"]
    if idle["requested"] != doc["config"]["idle"] or idle["established"] + idle["failed"] > idle["requested"]:
        problems.append("idle counts do not add up")
    if idle["open_at_end"] + idle["closed_by_peer"] != idle["established"]:
        problems.append("idle.open_at_end + closed_by_peer != established")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    fields = read_fields(sys.argv[1])
    if len(fields) < 50:
        print(f"only {len(fields)} fields found in {sys.argv[1]}: is the table there?")
        return 1
    status = 0
    for path in sys.argv[2:]:
        problems = []
        try:
            with open(path, encoding="utf-8") as file:
                doc = json.load(file)
        except (OSError, ValueError) as error:
            print(f"{path}: {error}")
            status = 1
            continue
        check_fields(doc, fields, problems)
        if not problems:
            check_consistency(doc, problems)
        for problem in problems:
            print(f"{path}: {problem}")
        if problems:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
