#!/usr/bin/env python3
"""Rolling a model out under load: `tabssl serve` answering DoExchange requests from
concurrent clients while the model behind them is replaced again and again, against the same
load with no replacement, measured in one run.

    cargo build --release --bin tabssl            # the tabssl binary
    python3 benches/rollout_bench.py [--requests 2000] [--clients 8] [--rows 64] [--swap-ms 250]

The registry is a temporary copy of models/adult_vime and models/adult_dae (same 14 Adult
inputs, 16-d outputs) under three names: `ref_vime`, `ref_dae` and `live`. Every request
embeds --rows Adult-shaped rows with `live`. Steady: `live` stays what it is. Swapping: a
thread renames the other model's files over `live` (the manifest, then the graph, each written
under a temporary name first) every --swap-ms. Each response must equal, row for row, the
answer of `ref_vime` or of `ref_dae` (computed before the load): a response mixing versions, or
any failed request, fails the run. Printed: p50 / p99 / max latency of each phase, the ratio
of the p99s (goal: at most 2), swaps, and how many responses each version gave.
Python packages (pyarrow) come from target/bench-venv, installed on first use.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_env  # noqa: E402

bench_env.ensure_packages(["pyarrow.flight"], ["pyarrow==26.0.1"])

import pyarrow as pa  # noqa: E402
import pyarrow.flight as flight  # noqa: E402

from serve_bench import (  # noqa: E402
    BEARER, FEATURES, cpu_model, exchange, latency_run, percentile, start_server, stop_server)

ROOT = bench_env.ROOT


def stage(registry, source, target):
    """Copies model `source` (manifest, then graph) over `target`, each renamed into place."""
    for extension in (".json", ".onnx"):
        staged = os.path.join(registry, f".{target}{extension}.staged")
        shutil.copyfile(os.path.join(registry, source + extension), staged)
        os.replace(staged, os.path.join(registry, target + extension))


def same(expected, actual):
    """Whether two lists of embeddings agree row for row (to float32 rounding)."""
    return len(expected) == len(actual) and all(
        (a is None) == (b is None) and (a is None or all(abs(x - y) <= 1e-4 * max(1.0, abs(x)) for x, y in zip(a, b)))
        for a, b in zip(expected, actual))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients, each its own connection")
    parser.add_argument("--rows", type=int, default=64, help="rows per request")
    parser.add_argument("--swap-ms", type=float, default=250, help="time between two replacements of `live`")
    parser.add_argument("--binary", default=bench_env.TABSSL)
    args = parser.parse_args()
    bench_env.require(args.binary)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, {cpu_model()}, "
          f"{platform.machine()}; {args.clients} clients, {args.requests} requests of {args.rows} rows per phase, "
          f"a replacement every {args.swap_ms:g} ms")

    with tempfile.TemporaryDirectory() as work:
        registry = os.path.join(work, "models")
        os.mkdir(registry)
        for name, source in [("ref_vime", "adult_vime"), ("ref_dae", "adult_dae")]:
            for extension in (".json", ".onnx"):
                shutil.copyfile(os.path.join(ROOT, "models", source + extension),
                                os.path.join(registry, name + extension))
        stage(registry, "ref_vime", "live")
        rows_file = os.path.join(work, "rows.arrow")
        subprocess.run([args.binary, "sql", "-c", f"COPY (SELECT * FROM tabssl_synthetic({args.rows}, 3)) TO "
                        f"'{rows_file}' STORED AS ARROW"], check=True, stdout=subprocess.DEVNULL)
        batch = pa.ipc.open_file(rows_file).read_all().combine_chunks()
        server, address, log = start_server(args.binary, work, [], models=registry)
        try:
            location = f"grpc://{address}"
            options = flight.FlightCallOptions(headers=[BEARER])
            setup = flight.FlightClient(location)
            reference = {}
            for name in ("ref_vime", "ref_dae"):
                answer = exchange(setup, f"SELECT embed('{name}', {FEATURES}) AS e FROM input", batch, options)
                reference[name] = answer.column("e").to_pylist()
            if same(reference["ref_vime"], reference["ref_dae"]):
                raise SystemExit("the two versions must answer differently")
            live_sql = f"SELECT embed('live', {FEATURES}) AS e FROM input"
            counts = {"ref_vime": 0, "ref_dae": 0}
            lock = threading.Lock()

            def connect():
                client = flight.FlightClient(location)
                return client, client.close

            def request(client, _):
                answer = exchange(client, live_sql, batch, options).column("e").to_pylist()
                version = next((name for name, rows in reference.items() if same(rows, answer)), None)
                if version is None:
                    raise SystemExit("a response matches neither version: versions were mixed")
                with lock:
                    counts[version] += 1

            steady, _ = latency_run(connect, request, args.requests, args.clients)
            steady_counts = dict(counts)
            stop = threading.Event()
            swaps = [0]

            def swapper():
                current = "ref_vime"
                while not stop.wait(args.swap_ms / 1000):
                    current = "ref_dae" if current == "ref_vime" else "ref_vime"
                    stage(registry, current, "live")
                    swaps[0] += 1

            thread = threading.Thread(target=swapper)
            thread.start()
            try:
                swapping, _ = latency_run(connect, request, args.requests, args.clients)
            finally:
                stop.set()
                thread.join()
        finally:
            stop_server(server, log)

    def row(name, latencies):
        return (f"| {name} | {len(latencies)} | {percentile(latencies, 0.5):.2f} | {percentile(latencies, 0.99):.2f} "
                f"| {latencies[-1]:.2f} |")

    print("\n| phase | requests | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|")
    print(row("steady", steady))
    print(row(f"swapping ({swaps[0]} replacements)", swapping))
    ratio = percentile(swapping, 0.99) / percentile(steady, 0.99)
    print(f"\np99 swapping / steady: {ratio:.2f} (goal ≤ 2: {'met' if ratio <= 2 else 'not met'}); failed requests: 0; "
          f"responses per version while swapping: vime {counts['ref_vime'] - steady_counts['ref_vime']}, "
          f"dae {counts['ref_dae'] - steady_counts['ref_dae']}")


if __name__ == "__main__":
    main()
