#!/usr/bin/env python3
"""Scale-out overhead: `embed` and the VIME export on 1, 2 and 4 loopback `tabssl worker`
processes against the single-process run on the same data, measured side by side in one run.

    cargo build --release --bin tabssl            # the tabssl binary
    python3 benches/distributed_bench.py [--rows 1000000] [--files 8] [--workers 1,2,4] \\
        [--repeat 2] [--binary PATH, default $TABSSL_BIN or target/release/tabssl]

Data: --rows Adult-shaped `tabssl_synthetic` rows (seed 1) as --files Parquet files with a
row key `id`. Each measurement is a whole `tabssl` command (process start, planning, model
load, scan, work, result), best of --repeat:
- embed: `SELECT count(*), sum(array_max(embed('adult_vime', <14 columns>)))` (models/);
- export: `tabssl export --method vime --key id --keep class` to Parquet.
Ratios are single-process seconds / distributed seconds (>= 1: the cluster is faster).
Bytes moved between stages come from `EXPLAIN ANALYZE` (datafusion-distributed's
`bytes_transferred` metric, summed over the network boundaries) and for the export from
the rows the coordinator receives.

Every process shares this machine's cores: the coordinator, and N workers started with
`--cores max(1, cores / N)` (each its share of ONNX Runtime sessions and threads). On a
2-core machine the numbers are overhead, not speed-up.
"""

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

from bench_env import TABSSL, require

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
COLUMNS = ('age, workclass, fnlwgt, education, "education-num", "marital-status", occupation, '
           'relationship, race, sex, "capital-gain", "capital-loss", "hours-per-week", "native-country"')


def run(binary, args, env=None):
    started = time.perf_counter()
    done = subprocess.run([binary, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"tabssl {' '.join(args[:3])} failed:\n{done.stderr}")
    return seconds, done.stdout


def write_table(binary, directory, rows, files):
    statements = []
    for f in range(files):
        lo, hi = rows * f // files, rows * (f + 1) // files
        statements += ["-c", f"COPY (SELECT * FROM tabssl_synthetic({rows}, 1) WHERE id >= {lo} AND id < {hi}) "
                             f"TO '{directory}/part-{f:02}.parquet' STORED AS PARQUET"]
    run(binary, ["sql", "--partitions", "1", *statements])


class Workers:
    """N `tabssl worker` processes on free loopback ports."""

    def __init__(self, binary, n):
        self.processes, self.addresses = [], []
        # Workers sharing this machine get a share of its cores for inference each.
        cores = str(max(1, (os.cpu_count() or 1) // n))
        for _ in range(n):
            process = subprocess.Popen([binary, "worker", "--listen", "127.0.0.1:0", "--cores", cores, "--models",
                                        os.path.join(ROOT, "models")],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                       env={**os.environ, "RUST_LOG": "warn"})
            line = process.stderr.readline()
            match = re.search(r"listening on http://(\S+)", line)
            if not match:
                sys.exit(f"a worker did not start: {line}")
            self.processes.append(process)
            self.addresses.append(match.group(1))

    def list(self):
        return ",".join(self.addresses)

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait()


def export_pass_two(binary, table, work, env):
    """The SELECT of the export's second pass (`tabssl export --print-sql`), over table `t`,
    reading the marginal sample a first export left in `work`."""
    output = os.path.join(work, "out.parquet")
    _, script = run(binary, ["export", "--input", table, "--key", "id", "--keep", "class", "--output", output,
                             "--print-sql"], env)
    copy = script.strip().rstrip(";").split(";\n")[-1]
    select = copy[copy.index("COPY (") + len("COPY ("):copy.rindex(") TO ")]
    return select.replace('FROM "input"', "FROM t").replace("FROM input", "FROM t")


def transferred_bytes(plan_text):
    """Sums `bytes_transferred=<n> <unit>` over the plan's network boundaries."""
    units = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1024, "MiB": 1 << 20, "GiB": 1 << 30}
    total = 0.0
    for value, unit in re.findall(r"bytes_transferred=([0-9.]+)\s*([KMG]i?B|B)?", plan_text):
        total += float(value) * units.get(unit or "B", 1)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--binary", default=os.environ.get("TABSSL_BIN", TABSSL))
    args = parser.parse_args()
    require(args.binary)
    counts = [int(n) for n in args.workers.split(",")]
    work = tempfile.mkdtemp(prefix="tabssl-distributed-bench-")
    try:
        table = os.path.join(work, "table")
        os.makedirs(table)
        write_table(args.binary, table, args.rows, args.files)
        size = sum(os.path.getsize(os.path.join(table, f)) for f in os.listdir(table))
        models = os.path.join(ROOT, "models")
        create = f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{table}/'"
        embed = f"SELECT count(*) AS n, sum(array_max(embed('adult_vime', {COLUMNS}))) AS s FROM t"
        env = {k: v for k, v in os.environ.items() if k != "TABSSL_WORKERS"}

        def embed_run(workers=None):
            extra = ["--workers", workers] if workers else []
            return run(args.binary, ["sql", *extra, "--models", models, "--format", "csv", "-c", create,
                                     "-c", embed], env)[0]

        def export_run(workers=None):
            output = os.path.join(work, "out.parquet")
            extra = ["--workers", workers] if workers else []
            seconds = run(args.binary, ["export", *extra, "--input", table, "--key", "id", "--keep", "class",
                                        "--output", output], env)[0]
            return seconds, os.path.getsize(output)

        # The queries whose network bytes are reported: the aggregate above, every embedding
        # back to the coordinator, and the export's second pass (its corruption query).
        rows_query = f"SELECT id, embed('adult_vime', {COLUMNS}) AS e FROM t"
        export_query = export_pass_two(args.binary, table, work, env)
        results = {}
        single_embed = min(embed_run() for _ in range(args.repeat))
        single_export, export_bytes = min(export_run() for _ in range(args.repeat))
        for n in counts:
            cluster = Workers(args.binary, n)
            try:
                embed_seconds = min(embed_run(cluster.list()) for _ in range(args.repeat))
                export_seconds = min(export_run(cluster.list())[0] for _ in range(args.repeat))
                moved = []
                for query in (embed, rows_query, export_query):
                    _, plan = run(args.binary, ["sql", "--workers", cluster.list(), "--models", models, "-c", create,
                                                "-c", "EXPLAIN ANALYZE " + query], env)
                    moved.append(transferred_bytes(plan))
                results[n] = (embed_seconds, export_seconds, moved)
            finally:
                cluster.stop()

        cores = os.cpu_count()
        print(f"machine: {platform.machine()}, {cores} cores, {platform.system()} {platform.release()}")
        print(f"data: {args.rows} synthetic Adult-shaped rows in {args.files} Parquet files, {size / 1e6:.1f} MB; "
              f"export output {export_bytes / 1e6:.1f} MB")
        print(f"single process: embed {args.rows / single_embed:,.0f} rows/s ({single_embed:.2f} s), "
              f"export {args.rows / single_export:,.0f} rows/s ({single_export:.2f} s)")
        print("| workers | embed rows/s | embed ratio | export rows/s | export ratio |")
        print("|---:|---:|---:|---:|---:|")
        for n, (embed_seconds, export_seconds, _) in results.items():
            print(f"| {n} | {args.rows / embed_seconds:,.0f} | {single_embed / embed_seconds:.2f}x "
                  f"| {args.rows / export_seconds:,.0f} | {single_export / export_seconds:.2f}x |")
        print("\nbytes moved between stages (datafusion-distributed bytes_transferred, lz4 Arrow IPC):")
        print("| workers | embed aggregate | every embedding to the coordinator | export pass 2 |")
        print("|---:|---:|---:|---:|")
        for n, (_, _, moved) in results.items():
            cells = [f"{b / 1e6:.2f} MB ({b / args.rows:.1f} B/row)" for b in moved]
            print(f"| {n} | " + " | ".join(cells) + " |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
