#!/usr/bin/env python3
"""Checks loadgen JSON documents against the field table of docs/loadgen.md.

Usage: check_json.py docs/loadgen.md RESULT.json [RESULT.json ...]

Every documented field must be present with its documented type, every field present must be
documented, and the numbers must agree with each other (accounting, histogram counts, timeline
sums, percentile order, the --mix paths against the totals). A field whose type says "only with
--mix" is present exactly when config.mix is; a row of type object whose meaning begins
"like `X`" has all the fields of X. Prints one line per problem and exits 1 if there was any."""
import json
import math
import re
import sys

KINDS = ("response_time", "service_time", "send_lag")
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|\s*([^|]*?)\s*\|")
MIX_ONLY = ", only with --mix"
LIKE = re.compile(r"^like `([^`]+)`")


def read_fields(doc_path):
    """{path: (type, nullable, mix_only)} from the doc's JSON table, with <kind> and "like" rows
    expanded."""
    fields = {}
    likes = []
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
            path, type_text, meaning = match.group(1), match.group(2), match.group(3)
            mix_only = type_text.endswith(MIX_ONLY)
            if mix_only:
                type_text = type_text[: -len(MIX_ONLY)]
            nullable = type_text.endswith(" or null")
            base = type_text[: -len(" or null")] if nullable else type_text
            paths = [path.replace("<kind>", kind) for kind in KINDS] if "<kind>" in path else [path]
            for expanded in paths:
                fields[expanded] = (base, nullable, mix_only)
            like = LIKE.match(meaning)
            if like:
                likes.append((path, like.group(1)))
    for path, model in likes:
        for field, (base, nullable, _) in list(fields.items()):
            if field.startswith(model + "."):
                fields[path + field[len(model):]] = (base, nullable, fields[path][2])
    return fields


def mix_only_below(fields, path):
    """Whether path or one of its parents is documented as present only with --mix."""
    while True:
        if path in fields and fields[path][2]:
            return True
        if path.endswith("[]"):
            path = path[:-2]
        elif "." in path:
            path = path.rsplit(".", 1)[0]
        else:
            return False


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
    mixed = "mix" in doc.get("config", {})
    for path, values in present.items():
        if path not in fields:
            problems.append(f"field {path} is not documented")
            continue
        type_name, nullable, mix_only = fields[path]
        if mix_only and not mixed:
            problems.append(f"field {path} is there without --mix")
        for value in values:
            if value is None and nullable:
                continue
            if not type_ok(value, type_name):
                problems.append(f"field {path} = {value!r:.60} is not {type_name}{' or null' if nullable else ''}")
                break
    for path, (type_name, nullable, mix_only) in fields.items():
        if path in present:
            continue
        if not mixed and mix_only_below(fields, path):
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
    # Each object, e.g. every element of an array, has all its documented members.
    for path, values in present.items():
        members = [f for f in fields if not f.endswith("[]") and "." in f and f.rsplit(".", 1)[0] == path]
        for value in values:
            if not isinstance(value, dict):
                continue
            for member in members:
                if member.rsplit(".", 1)[1] not in value and (mixed or not mix_only_below(fields, member)):
                    problems.append(f"an element of {path} has no {member.rsplit('.', 1)[1]}")
                    break


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


MAX_TIMELINE_SECONDS = 3600


def check_second(name, point, problems):
    """Percentiles in order, ms = us / 1000, null exactly when there is no latency sample."""
    values = [point["p50_ms"], point["p99_ms"], point["max_ms"]]
    if all(v is None for v in values):
        if point["requests"] > 0:
            problems.append(f"{name}: requests but no latency")
        return
    if any(v is None for v in values) or values != sorted(values):
        problems.append(f"{name}: p50_ms <= p99_ms <= max_ms does not hold: {values}")
    for key in ("p50", "p99"):
        if f"{key}_us" in point and (point[f"{key}_us"] is None or abs(point[f"{key}_us"] / 1000 - point[f"{key}_ms"]) > 1e-9):
            problems.append(f"{name}: {key}_us and {key}_ms disagree")


def check_timeline(doc, problems):
    timeline, totals, errors = doc["timeline"], doc["totals"], doc["errors"]
    duration = totals["duration_s"]
    truncated = math.ceil(duration - 1e-9) > MAX_TIMELINE_SECONDS
    if [point["second"] for point in timeline] != list(range(len(timeline))):
        problems.append("timeline seconds are not 0, 1, 2, ...")
    if [point["t"] for point in timeline] != list(range(1, len(timeline) + 1)):
        problems.append("timeline t are not 1, 2, 3, ...")
    if duration > 0 and len(timeline) != min(MAX_TIMELINE_SECONDS, max(1, math.ceil(duration - 1e-9))):
        problems.append(f"timeline has {len(timeline)} seconds for a {duration} s run")
    for point in timeline:
        expected = min(1.0, duration - point["second"])
        if abs(point["length_s"] - expected) > 1e-6:
            problems.append(f"timeline second {point['second']}: length_s {point['length_s']}, expected {expected}")
        if point["requests"] != point["completed"]:
            problems.append(f"timeline second {point['second']}: requests != completed")
        check_second(f"timeline second {point['second']}", point, problems)
    if not truncated and sum(p["completed"] for p in timeline) != totals["completed"]:
        problems.append("timeline completed does not add up to totals.completed")
    if not truncated and sum(p["errors"] for p in timeline) != errors["total"]:
        problems.append("timeline errors do not add up to errors.total")
    if "mix" not in doc["config"]:
        return
    names = [p["path"] for p in doc["paths"]]
    for point in timeline:
        second = point["second"]
        if [p["path"] for p in point["paths"]] != names:
            problems.append(f"timeline second {second}: paths are not those of the paths array")
            continue
        if sum(p["requests"] for p in point["paths"]) != point["requests"]:
            problems.append(f"timeline second {second}: the paths' requests do not add up")
        if sum(p["errors"] for p in point["paths"]) > point["errors"]:
            problems.append(f"timeline second {second}: the paths' errors exceed the second's")
        maxima = [p["max_ms"] for p in point["paths"] if p["max_ms"] is not None]
        if maxima and max(maxima) != point["max_ms"]:
            problems.append(f"timeline second {second}: max_ms is not the largest of the paths'")
        for path in point["paths"]:
            check_second(f"timeline second {second} path {path['path']}", path, problems)
    for i, path in enumerate(doc["paths"]):
        if not truncated and sum(p["paths"][i]["requests"] for p in timeline) != path["requests"]:
            problems.append(f"timeline requests of {path['path']} do not add up to paths[].requests")
        if not truncated and sum(p["paths"][i]["errors"] for p in timeline) != path["errors"]:
            problems.append(f"timeline errors of {path['path']} do not add up to paths[].errors")


def check_paths(doc, problems):
    """--mix: the paths partition the requests of the totals, and each is a complete record."""
    paths, config, totals, latency = doc["paths"], doc["config"], doc["totals"], doc["latency"]
    if [p["path"] for p in paths] != [config["path"]] + [m["path"] for m in config["mix"]]:
        problems.append("paths are not the URL's path and then the --mix paths")
    if [p["percent"] for p in paths[1:]] != [m["percent"] for m in config["mix"]]:
        problems.append("paths[].percent differ from config.mix")
    if abs(sum(p["percent"] for p in paths) - 100) > 1e-6 or not all(p["percent"] > 0 for p in paths):
        problems.append("paths[].percent are not positive shares adding up to 100")
    if paths[0]["request_bytes"] != config["request_bytes"]:
        problems.append("paths[0].request_bytes != config.request_bytes")
    for key, total in (("started", totals["started"]), ("requests", totals["completed"]), ("errors", totals["failed"]),
                       ("in_flight_at_end", totals["in_flight_at_end"])):
        if sum(p[key] for p in paths) != total:
            problems.append(f"paths[].{key} do not add up to the totals")
    for path in paths:
        name = f"paths[{path['path']}]"
        if path["started"] != path["requests"] + path["errors"] + path["in_flight_at_end"]:
            problems.append(f"{name}: started != requests + errors + in_flight_at_end")
        own = path["latency"]
        if own["response_time"]["count"] != path["requests"] + own["censored"]["count"]:
            problems.append(f"{name}: response_time.count != requests + censored")
        for kind in KINDS:
            if (own[kind] is None) != (latency[kind] is None):
                problems.append(f"{name}: latency.{kind} null-ness differs from the top level")
            elif own[kind] is not None:
                check_latency(f"{name}.latency.{kind}", own[kind], problems)
    for kind in KINDS:
        if latency[kind] is None:
            continue
        if sum(p["latency"][kind]["count"] for p in paths) != latency[kind]["count"]:
            problems.append(f"paths: latency.{kind}.count do not add up to the top level")
        counted = [p["latency"][kind] for p in paths if p["latency"][kind]["count"] > 0]
        if counted and max(k["max_us"] for k in counted) != latency[kind]["max_us"]:
            problems.append(f"paths: the largest latency.{kind}.max_us is not the top level's")
    if sum(p["latency"]["censored"]["count"] for p in paths) != latency["censored"]["count"]:
        problems.append("paths: censored counts do not add up")


def check_consistency(doc, problems):
    open_loop = doc["config"]["mode"] == "open"
    if doc["schema"] != "c10k-lab/loadgen/2":
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
    check_timeline(doc, problems)
    if "mix" in doc["config"]:
        check_paths(doc, problems)
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
            try:
                check_consistency(doc, problems)
            except (KeyError, TypeError, IndexError) as error:
                problems.append(f"inconsistent document: {error!r}")
        for problem in problems:
            print(f"{path}: {problem}")
        if problems:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
