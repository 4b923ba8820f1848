#!/usr/bin/env python3
"""Rows/s of `SELECT embed(...)` in tabssl, end to end, against Python onnxruntime
`session.run` on the same model and the same rows, measured side by side in one run.

    cargo build --release --bin tabssl    # the tabssl binary
    python3 benches/compare_python.py [--rows 1000000] [--repeat 3]

Creates target/bench-venv with numpy and onnxruntime==1.31.1 if they are missing.
Both sides get the same thread budget (--threads, default: all cores): tabssl runs
that many partitions with one ONNX Runtime thread each, Python one session with that many
intra-op threads. The model is tests/fixtures/models/mlp_packed.onnx (6 -> 16 -> 8 MLP).
"""

import argparse
import os
import platform
import subprocess
import sys
import time

from bench_env import BUILD_TABSSL, ROOT, TABSSL, ensure_packages

FEATURES = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")


def tabssl(binary, sql, threads):
    started = time.perf_counter()
    out = subprocess.run([binary, "sql", "-c", sql, "--models", MODELS, "--partitions", str(threads),
                          "--intra-threads", "1", "--format", "csv"],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, out.stdout


def best(times):
    return min(times)


def main():
    ensure_packages(["numpy", "onnxruntime"], ["numpy", "onnxruntime==1.31.1"])
    import numpy as np
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--tabssl", default=TABSSL)
    args = parser.parse_args()
    if not os.path.exists(args.tabssl):
        sys.exit(f"{args.tabssl} not found: build it with `{BUILD_TABSSL}` (or pass --tabssl)")

    data = os.path.join(ROOT, "target", "bench")
    os.makedirs(data, exist_ok=True)
    parquet, csv = os.path.join(data, f"rows_{args.rows}.parquet"), os.path.join(data, f"rows_{args.rows}.csv")
    cols = ", ".join(f'"{c}"' for c in FEATURES)
    for path, fmt in [(parquet, "PARQUET"), (csv, "CSV")]:
        if not os.path.exists(path):
            tabssl(args.tabssl, f"COPY (SELECT {cols} FROM tabssl_synthetic({args.rows}, 1)) TO '{path}' "
                                f"STORED AS {fmt}", args.threads)

    # Python: the same rows as a float32 numpy array (loading timed separately).
    started = time.perf_counter()
    x = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.float32)
    load_s = time.perf_counter() - started
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(os.path.join(MODELS, "mlp_packed.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    py_batched, py_whole = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        outs = [session.run(None, {"x": x[i:i + 8192]})[0] for i in range(0, len(x), 8192)]
        py_batched.append(time.perf_counter() - started)
        started = time.perf_counter()
        (y,) = session.run(None, {"x": x})
        py_whole.append(time.perf_counter() - started)
    assert np.allclose(np.concatenate(outs), y, atol=1e-5)

    # tabssl: the whole process, Parquet scan + embed + aggregate, and the same without embed.
    embed_sql = (f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{parquet}'; "
                 f"SELECT count(e) AS n, avg(e[1]) AS mean_e1 FROM "
                 f"(SELECT embed('mlp_packed', {cols}) AS e FROM t)")
    scan_sql = (f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{parquet}'; "
                f"SELECT count(\"age\") AS n, avg(\"hours-per-week\") AS h FROM t")
    rs_embed, rs_scan = [], []
    for _ in range(args.repeat):
        seconds, out = tabssl(args.tabssl, embed_sql, args.threads)
        rs_embed.append(seconds)
        seconds, _ = tabssl(args.tabssl, scan_sql, args.threads)
        rs_scan.append(seconds)
    n, mean_e1 = out.strip().splitlines()[-1].split(",")
    assert int(n) == args.rows, out
    agree = abs(float(mean_e1) - float(y[:, 0].mean())) <= 1e-4 * max(1.0, abs(float(y[:, 0].mean())))

    rate = lambda s: args.rows / s  # noqa: E731
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; threads {args.threads}; "
          f"rows {args.rows}; best of {args.repeat}; onnxruntime {ort.__version__}")
    print(f"{'measurement':<58} {'seconds':>8} {'rows/s':>12}")
    lines = [
        ("python session.run, 8192-row batches (numpy in memory)", best(py_batched)),
        ("python session.run, one call (numpy in memory)", best(py_whole)),
        ("python np.loadtxt of the same rows (CSV)", load_s),
        ("tabssl process: Parquet -> embed -> aggregate", best(rs_embed)),
        ("tabssl process: Parquet -> aggregate (no embed)", best(rs_scan)),
    ]
    for name, seconds in lines:
        print(f"{name:<58} {seconds:>8.3f} {rate(seconds):>12,.0f}")
    embed_only = best(rs_embed) - best(rs_scan)
    print(f"{'tabssl embed share (difference of the two runs above)':<58} {embed_only:>8.3f} "
          f"{rate(embed_only):>12,.0f}")
    print(f"ratio tabssl end to end / python batched session.run: {best(py_batched) / best(rs_embed):.2f}x")
    print(f"ratio tabssl embed share / python batched session.run: {best(py_batched) / embed_only:.2f}x")
    print(f"mean of embedding[0]: tabssl {float(mean_e1):.6f}, python {float(y[:, 0].mean()):.6f} "
          f"({'agree' if agree else 'DISAGREE'})")
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main()
