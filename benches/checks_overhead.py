#!/usr/bin/env python3
"""What the input checks cost: the same workloads run by two `tabssl` binaries,
side by side and interleaved in one run, on the same input files.

    # a baseline binary from the commit before the checks, e.g.
    git worktree add /tmp/tabssl-base <commit> && (cd /tmp/tabssl-base && \\
        CARGO_TARGET_DIR=$PWD/target-base cargo build --release --bin tabssl) # or any other build of it
    cargo build --release --bin tabssl
    python3 benches/checks_overhead.py --baseline /tmp/tabssl-base/target-base/release/tabssl \\
        [--candidate target/release/tabssl] [--rows 1000000] [--repeat 5]

Standard library only. Workloads (1M Adult-shaped `tabssl_synthetic` rows, seed 1):
- embed: `tabssl sql` running `embed('adult_vime', 14 columns)` over a Parquet file;
- stream decode: `tabssl stream` reading NDJSON from a file (`--no-follow`, declared schema),
  `SELECT id FROM input`, Arrow IPC to /dev/null (the reader's nesting check, the counting,
  the decoder's row check are on this path);
- stream embed: the same stream embedding every row;
- stream decode (IPC): the rows as an Arrow IPC stream file (8192-row batches), whose
  messages are now framed and size-checked by tabssl before arrow decodes them.
Each repeat runs the baseline and the candidate back to back (alternating which goes first);
the report gives each side's median seconds and candidate / baseline.
"""

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time

from bench_env import TABSSL, require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = ('age, workclass, fnlwgt, education, "education-num", "marital-status", occupation, relationship, '
            'race, sex, "capital-gain", "capital-loss", "hours-per-week", "native-country"')
SCHEMA = ('{"fields": [' + ", ".join(
    f'{{"name": "{name}", "type": "{kind}"}}' for name, kind in [
        ("id", "Int64"), ("age", "Int64"), ("workclass", "Utf8"), ("fnlwgt", "Int64"), ("education", "Utf8"),
        ("education-num", "Int64"), ("marital-status", "Utf8"), ("occupation", "Utf8"), ("relationship", "Utf8"),
        ("race", "Utf8"), ("sex", "Utf8"), ("capital-gain", "Int64"), ("capital-loss", "Int64"),
        ("hours-per-week", "Int64"), ("native-country", "Utf8"), ("class", "Utf8")]) + "]}")


def timed(command):
    """Runs a command with its output discarded; returns wall seconds."""
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr.decode()}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="tabssl binary without the checks")
    parser.add_argument("--candidate", default=TABSSL)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    require(args.candidate)
    models = ["--models", os.path.join(ROOT, "models")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {args.rows} rows, {args.repeat} repeats")

    with tempfile.TemporaryDirectory() as work:
        schema = os.path.join(work, "schema.json")
        with open(schema, "w") as f:
            f.write(SCHEMA)
        parquet = os.path.join(work, "rows.parquet")
        ndjson = os.path.join(work, "rows.ndjson")
        source = f"SELECT * FROM tabssl_synthetic({args.rows}, 1)"
        subprocess.run([args.candidate, "sql", "-c", f"COPY ({source}) TO '{parquet}' STORED AS PARQUET"],
                       check=True, stdout=subprocess.DEVNULL)
        with open(ndjson, "wb") as out:
            subprocess.run([args.candidate, "sql", "--format", "ndjson", "-c", source], check=True, stdout=out)

        ipc = os.path.join(work, "rows.arrows")
        with open(ipc, "wb") as out:
            subprocess.run([args.candidate, "stream", "--input", ndjson, "--no-follow", "--schema", schema,
                            "--sql", "SELECT * FROM input", "--output-format", "arrow"],
                           check=True, stdout=out, stderr=subprocess.DEVNULL)

        def stream(binary, query, source=ndjson):
            return [binary, "stream", *models, "--input", source, "--no-follow", "--schema", schema,
                    "--sql", query, "--output-format", "arrow"]

        workloads = {
            "embed (sql, Parquet)": lambda b: [
                b, "sql", *models, "--format", "csv", "-c",
                f"SELECT count(embed('adult_vime', {FEATURES})) FROM '{parquet}'"],
            "stream decode (NDJSON)": lambda b: stream(b, "SELECT id FROM input"),
            "stream embed (NDJSON)": lambda b: stream(b, f"SELECT id, embed('adult_vime', {FEATURES}) AS e FROM input"),
            "stream decode (IPC)": lambda b: stream(b, "SELECT id FROM input", ipc),
        }
        print(f"{'workload':<24} {'baseline s':>11} {'candidate s':>12} {'ratio':>7}")
        for name, command in workloads.items():
            # One untimed run each loads ONNX Runtime and warms the page cache.
            timed(command(args.baseline))
            timed(command(args.candidate))
            times = {"baseline": [], "candidate": []}
            for i in range(args.repeat):
                order = ["baseline", "candidate"] if i % 2 == 0 else ["candidate", "baseline"]
                for side in order:
                    times[side].append(timed(command(getattr(args, side))))
            base, cand = statistics.median(times["baseline"]), statistics.median(times["candidate"])
            print(f"{name:<24} {base:>11.3f} {cand:>12.3f} {cand / base:>7.3f}")


if __name__ == "__main__":
    main()
