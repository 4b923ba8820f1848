#!/usr/bin/env python3
"""`tabssl stream` into Parquet parts: how long a restart takes to continue, as a function of
how much the stream had already committed.

    cargo build --release --bin tabssl            # the tabssl binary
    python3 benches/stream_resume.py [--rows 1000000,10000000] [--append 10000]

Standard library only. For each size N: N numbered NDJSON records in one file of a
directory are streamed to the end into Parquet parts (`--no-follow`); then a second file
with `--append` records is added and the same command runs again. The restart reads the
newest part's checkpoint, checks the source file, seeks to the position and writes only
the new records; its wall time should not depend on N. Printed: the first run's time and
rows/s, the restart's time, the rows it wrote, and the ratio of restart times to the
smallest N.
"""

import argparse
import os
import platform
import re
import subprocess
import tempfile
import time

from bench_env import TABSSL, require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUERY = "SELECT id, x, corrupt_mask(x, 0.3, 7, id) AS xm FROM input"
SCHEMA = '[{"name": "id", "type": "Int64"}, {"name": "x", "type": "Float64"}]'


def write_records(path, first, count):
    with open(path, "w") as out:
        step = 100_000
        for start in range(first, first + count, step):
            out.write("".join(f'{{"id": {i}, "x": {i * 0.5}}}\n' for i in range(start, min(start + step, first + count))))


def timed(command):
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return seconds, result.stderr


def written(stderr):
    found = re.search(r"wrote (\d+) rows", stderr)
    if not found:
        raise SystemExit(f"no counts in:\n{stderr}")
    return int(found.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000", help="rows committed before the restart")
    parser.add_argument("--append", type=int, default=10_000, help="records added before the restart")
    parser.add_argument("--binary", default=TABSSL)
    args = parser.parse_args()
    require(args.binary)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; binary {os.path.relpath(args.binary, ROOT)}")
    print(f"query: {QUERY}\n")
    print("| committed rows | first run | first run rows/s | restart (+{:,} records) | rows written by the restart | restart vs smallest |".format(args.append))
    print("|---:|---:|---:|---:|---:|---:|")
    baseline = None
    with tempfile.TemporaryDirectory() as work:
        schema = os.path.join(work, "schema.json")
        with open(schema, "w") as f:
            f.write(SCHEMA)
        for rows in [int(r) for r in args.rows.split(",")]:
            source, output = os.path.join(work, f"in_{rows}"), os.path.join(work, f"out_{rows}")
            os.mkdir(source)
            write_records(os.path.join(source, "00000.ndjson"), 0, rows)
            command = [args.binary, "stream", "--input", source, "--schema", schema, "--sql", QUERY, "--no-follow",
                       "--output", output, "--output-format", "parquet", "--rotate-rows", "1000000"]
            first, stderr = timed(command)
            if written(stderr) != rows:
                raise SystemExit(f"the first run wrote {written(stderr)} rows, expected {rows}:\n{stderr}")
            write_records(os.path.join(source, "00001.ndjson"), rows, args.append)
            restart, stderr = timed(command)
            if "resumed at" not in stderr or written(stderr) != args.append:
                raise SystemExit(f"the restart did not continue where the first run stopped:\n{stderr}")
            baseline = baseline or restart
            print(f"| {rows:,} | {first:.2f} s | {rows / first:,.0f} | {restart:.3f} s | {written(stderr):,} | "
                  f"{restart / baseline:.2f}x |")
            for directory in (source, output):
                for name in os.listdir(directory):
                    os.remove(os.path.join(directory, name))


if __name__ == "__main__":
    main()
