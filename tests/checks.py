"""checks.py - the PASS and FAIL lines, and the closing "N passed, N failed", that every Python test
program here prints (tests/run.sh adds their counts up).

    from checks import check, summary
    check("name", condition, "what was seen, printed only when it fails")
    sys.exit(summary())
"""
counts = {"passed": 0, "failed": 0}
prefix = ""  # set by a program whose names need a label, e.g. "perfstats: "


def check(name, condition, detail=""):
    if condition:
        counts["passed"] += 1
        print(f"PASS {prefix}{name}", flush=True)
    else:
        counts["failed"] += 1
        print(f"FAIL {prefix}{name}: {detail}", flush=True)
    return bool(condition)


def summary():
    """Prints the closing line; the exit status for sys.exit."""
    print(f"{counts['passed']} passed, {counts['failed']} failed", flush=True)
    return 1 if counts["failed"] else 0
