#!/usr/bin/env python3
"""`tabssl stream` with `embed`: peak memory as the input grows, and throughput against the
same query on a Parquet table, measured side by side in one run.

    cargo build --release --bin tabssl            # the tabssl binary
    python3 benches/stream_memory.py [--rows 1000000,10000000] [--compare-rows 1000000]

Standard library only. Memory: `tabssl sql` writes the Adult-shaped `tabssl_synthetic`
table as NDJSON into a pipe, `tabssl stream` reads it from stdin, embeds every row with
models/adult_vime and writes Arrow IPC to /dev/null; the stream's own peak RSS comes from
wait4(). Throughput: the same SELECT over a Parquet file (`tabssl sql`), over an Arrow IPC
file (`tabssl stream --input FILE --no-follow`) and over NDJSON and CSV on stdin, each writing
NDJSON to /dev/null; the ratios are streaming / table rows per second; CPU s is the process's
user + system time, cores busy that over the wall time. Decode: `SELECT id`
over the same NDJSON and CSV (what reading and decoding cost without the embedding).
`--stream-args` are added to every `tabssl stream` (e.g. `--stream-args=--decode-threads=1`).
"""

import argparse
import os
import platform
import shlex
import subprocess
import tempfile
import time

from bench_env import TABSSL, require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = ('age, workclass, fnlwgt, education, "education-num", "marital-status", occupation, relationship, '
            'race, sex, "capital-gain", "capital-loss", "hours-per-week", "native-country"')
QUERY = f"SELECT id, embed('adult_vime', {FEATURES}) AS e FROM {{table}}"
DECODE_QUERY = "SELECT id FROM {table}"
SCHEMA = ('{"fields": [' + ", ".join(
    f'{{"name": "{name}", "type": "{kind}"}}' for name, kind in [
        ("id", "Int64"), ("age", "Int64"), ("workclass", "Utf8"), ("fnlwgt", "Int64"), ("education", "Utf8"),
        ("education-num", "Int64"), ("marital-status", "Utf8"), ("occupation", "Utf8"), ("relationship", "Utf8"),
        ("race", "Utf8"), ("sex", "Utf8"), ("capital-gain", "Int64"), ("capital-loss", "Int64"),
        ("hours-per-week", "Int64"), ("native-country", "Utf8"), ("class", "Utf8")]) + "]}")


def timed(command, **kwargs):
    """Runs a command to completion; returns (seconds, peak RSS in MB, stderr, CPU seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, **kwargs)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr}")
    return seconds, usage.ru_maxrss / 1024, stderr, usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000", help="input sizes for the memory test")
    parser.add_argument("--compare-rows", type=int, default=1_000_000, help="rows for the throughput comparison")
    parser.add_argument("--binary", default=TABSSL)
    parser.add_argument("--stream-args", default="", help="extra arguments for every tabssl stream")
    args = parser.parse_args()
    require(args.binary)
    extra = shlex.split(args.stream_args)
    tabssl = args.binary
    models = ["--models", os.path.join(ROOT, "models")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; binary {os.path.relpath(tabssl, ROOT)}; "
          f"stream args {extra}")

    with tempfile.TemporaryDirectory() as work:
        schema = os.path.join(work, "schema.json")
        with open(schema, "w") as f:
            f.write(SCHEMA)
        stream_base = [tabssl, "stream", *models, *extra, "--schema", schema]
        stream = [*stream_base, "--sql", QUERY.format(table="input")]

        print("\n| input rows (NDJSON on stdin) | peak RSS of tabssl stream | time | rows/s |")
        print("|---:|---:|---:|---:|")
        peaks = []
        for rows in [int(r) for r in args.rows.split(",")]:
            producer = subprocess.Popen(
                [tabssl, "sql", "-c", f"SELECT * FROM tabssl_synthetic({rows}, 1)", "--format", "ndjson"],
                stdout=subprocess.PIPE)
            seconds, peak, stderr, _ = timed([*stream, "--output-format", "arrow"], stdin=producer.stdout,
                                          stdout=subprocess.DEVNULL)
            producer.stdout.close()
            producer.wait()
            if f"wrote {rows} rows" not in stderr:
                raise SystemExit(f"rows lost: {stderr}")
            peaks.append(peak)
            print(f"| {rows:,} | {peak:.0f} MB | {seconds:.1f} s | {rows / seconds:,.0f} |")
        print(f"\npeak RSS, largest / smallest input: {max(peaks) / min(peaks):.3f}")

        rows = args.compare_rows
        if rows == 0:
            return
        ndjson = os.path.join(work, "input.ndjson")
        csv = os.path.join(work, "input.csv")
        parquet = os.path.join(work, "input.parquet")
        arrow = os.path.join(work, "input.arrows")
        with open(ndjson, "wb") as out:
            subprocess.run([tabssl, "sql", "-c", f"SELECT * FROM tabssl_synthetic({rows}, 1)", "--format", "ndjson"],
                           stdout=out, check=True)
        with open(csv, "wb") as out:
            subprocess.run([tabssl, "sql", "-c", f"SELECT * FROM tabssl_synthetic({rows}, 1)", "--format", "csv"],
                           stdout=out, check=True)
        subprocess.run([tabssl, "sql", "-c", f"COPY (SELECT * FROM tabssl_synthetic({rows}, 1)) TO '{parquet}'"],
                       stdout=subprocess.DEVNULL, check=True)
        subprocess.run([tabssl, "stream", "--input", ndjson, "--no-follow", "--schema", schema, "--sql",
                        "SELECT * FROM input", "--output-format", "arrow", "--output", arrow],
                       stderr=subprocess.DEVNULL, check=True)
        csv_stream = ["--input-format", "csv"]
        for query in (QUERY, DECODE_QUERY):
            runs = {
                "table: tabssl sql over Parquet": ([tabssl, "sql", *models, "--format", "ndjson", "-c",
                                                    query.format(table=f"'{parquet}'")], None),
                "stream: Arrow IPC file": ([*stream_base, "--sql", query.format(table="input"), "--input", arrow,
                                            "--no-follow"], None),
                "stream: NDJSON on stdin": ([*stream_base, "--sql", query.format(table="input")], ndjson),
                "stream: CSV on stdin": ([*stream_base, *csv_stream, "--sql", query.format(table="input")], csv),
            }
            print(f"\n| {rows:,} rows, `{query.format(table='…')[:40]}…`, NDJSON out | time | rows/s | vs table | CPU s | cores busy |")
            print("|---|---:|---:|---:|---:|---:|")
            baseline = None
            for name, (command, stdin_path) in runs.items():
                with open(stdin_path or os.devnull, "rb") as stdin:
                    seconds, _, _, cpu = timed(command, stdin=stdin, stdout=subprocess.DEVNULL)
                baseline = baseline or seconds
                print(f"| {name} | {seconds:.2f} s | {rows / seconds:,.0f} | {baseline / seconds:.2f}× "
                      f"| {cpu:.2f} | {cpu / seconds:.2f} |")


if __name__ == "__main__":
    main()
