#!/usr/bin/env python3
"""Where a cargo build spends its time, from the report `cargo build --timings` writes:
the wall time, the time summed over units (what one core would take), the slowest units and
crate families, and the critical path (the chain of units, each waiting for the one before,
that ends last).

    cargo build --all-targets --timings
    python3 scripts/build_timings.py [target/cargo-timings/cargo-timing.html] [--top 20]

Standard library only; prints markdown tables for docs/building.md.
"""

import argparse
import json
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def units(path):
    """The UNIT_DATA array of a cargo timing report."""
    with open(path) as f:
        text = f.read()
    match = re.search(r"const UNIT_DATA = (\[.*?\n\]);", text, re.S)
    if not match:
        sys.exit(f"{path}: no UNIT_DATA array; is it a report of `cargo build --timings`?")
    return json.loads(match.group(1))


def label(unit):
    """crate version, and the target when it is not the library."""
    target = unit["target"].strip()
    mode = unit.get("mode", "")
    what = f"{unit['name']} {unit['version']}"
    if mode == "run-custom-build":
        return f"{what} (build script run)"
    if target and target != unit["name"]:
        return f"{what} ({target.replace(chr(34), '')})"
    return what


def metadata_ready(unit):
    """When the unit's metadata was ready for the units that need only that: the end of its
    front end where the report has sections, else its end."""
    for section in unit.get("sections") or []:
        name, times = section
        if name == "frontend":
            return unit["start"] + times["end"]
    return unit["start"] + unit["duration"]


def critical_path(data):
    """The units, first to last, of the chain that ends last."""
    by_index = {u["i"]: u for u in data}
    # Who unblocked whom, and when the unblocking happened.
    waits = {u["i"]: [] for u in data}
    for u in data:
        for i in u.get("unblocked_units") or []:
            waits[i].append((u["start"] + u["duration"], u["i"]))
        for i in u.get("unblocked_rmeta_units") or []:
            waits[i].append((metadata_ready(u), u["i"]))
    last = max(data, key=lambda u: u["start"] + u["duration"])
    path = [last]
    while waits[path[-1]["i"]]:
        _, i = max(waits[path[-1]["i"]])
        path.append(by_index[i])
    return list(reversed(path))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="?", default=os.path.join(ROOT, "target", "cargo-timings", "cargo-timing.html"))
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    data = units(args.report)
    wall = max(u["start"] + u["duration"] for u in data)
    summed = sum(u["duration"] for u in data)
    print(f"{len(data)} units; wall {wall / 60:.1f} min; summed over units {summed / 60:.1f} min "
          f"({summed / wall:.2f} cores busy on average)\n")
    print(f"| slowest units | s | share of the sum |\n|---|---:|---:|")
    for u in sorted(data, key=lambda u: -u["duration"])[:args.top]:
        print(f"| {label(u)} | {u['duration']:.0f} | {100 * u['duration'] / summed:.1f}% |")
    families = {}
    for u in data:
        family = u["name"].split("-")[0].split("_")[0]
        families[family] = families.get(family, 0) + u["duration"]
    print("\n| crate family (name before the first `-`) | s | share of the sum |\n|---|---:|---:|")
    for family, seconds in sorted(families.items(), key=lambda kv: -kv[1])[:args.top // 2]:
        print(f"| {family} | {seconds:.0f} | {100 * seconds / summed:.1f}% |")
    # With every core busy, a unit often starts well after its last dependency finished:
    # the gap is time spent waiting for a free core, not for the chain.
    print("\n| critical path (each unit's last dependency before it) | ready at s | started at s | s |\n"
          "|---|---:|---:|---:|")
    previous = None
    for u in critical_path(data):
        ready = u["start"] if previous is None else min(u["start"], previous["start"] + previous["duration"])
        print(f"| {label(u)} | {ready:.0f} | {u['start']:.0f} | {u['duration']:.0f} |")
        previous = u


if __name__ == "__main__":
    main()
