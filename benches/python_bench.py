#!/usr/bin/env python3
"""Rows/s of `SELECT embed(...)` from the `datafusion` Python package with tabssl
registered, against the same query in the `tabssl sql` CLI and against DuckDB with an Arrow
Python UDF calling onnxruntime: same model (the shipped adult_vime, 8 string and 6 numeric
inputs), same Parquet rows, same cores; ratios measured side by side in one run.

    cargo build --all-targets          # the tabssl binary and the extension module (dev profile)
    python3 benches/python_bench.py [--rows 1000000] [--repeat 3]

Creates target/bench-venv with the pinned packages below if they are missing, and stages
the extension module built by cargo (target/debug/lib_native.so) with python/tabssl under
target/bench-python. Each side runs the query once to warm up (model load), then --repeat
times; the best time counts.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time

from bench_env import ROOT, ensure_packages

PACKAGES = ["numpy", "onnxruntime==1.31.1", "duckdb==2.0.1", "pyarrow==26.0.1", "datafusion==55.0.0"]
MODELS = os.path.join(ROOT, "models")
MODEL = "adult_vime"
NULL_STRING = "\x01tabssl:null\x01"


def stage_extension():
    """python/tabssl plus the cargo-built module, importable from target/bench-python."""
    module = os.path.join(ROOT, "target", "debug", "lib_native.so")
    if not os.path.exists(module):
        sys.exit(f"{module} not found: run `cargo build --all-targets` first")
    stage = os.path.join(ROOT, "target", "bench-python")
    package = os.path.join(stage, "tabssl")
    shutil.rmtree(package, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "python", "tabssl"), package)
    shutil.copy(module, os.path.join(package, "_native.abi3.so"))
    sys.path.insert(0, stage)


def timed(function, repeat):
    function()  # warm-up: loads the model, fills the page cache
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), result


def main():
    ensure_packages(["numpy", "onnxruntime", "duckdb", "pyarrow", "datafusion"], PACKAGES)
    import datafusion
    import duckdb
    import numpy as np
    import onnxruntime as ort
    import pyarrow as pa
    import json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tabssl", default=os.path.join(ROOT, "target", "debug", "tabssl"))
    args = parser.parse_args()
    if not os.path.exists(args.tabssl):
        sys.exit(f"{args.tabssl} not found: run `cargo build --all-targets` first (or pass --tabssl)")
    stage_extension()
    import tabssl

    cores = os.cpu_count()
    with open(os.path.join(MODELS, f"{MODEL}.json")) as f:
        inputs = json.load(f)["inputs"]
    columns = [i["name"] for i in inputs]
    quoted = ", ".join(f'"{c}"' for c in columns)
    data = os.path.join(ROOT, "target", "bench")
    os.makedirs(data, exist_ok=True)
    parquet = os.path.join(data, f"synthetic_{args.rows}.parquet")
    if not os.path.exists(parquet):
        subprocess.run([args.tabssl, "sql", "-c", f"COPY (SELECT * FROM tabssl_synthetic({args.rows}, 1)) "
                        f"TO '{parquet}' STORED AS PARQUET"], check=True, capture_output=True)
    query = f"SELECT count(e) AS n, avg(e[1]) AS m FROM (SELECT embed('{MODEL}', {quoted}) AS e FROM t)"

    # 1. The tabssl CLI, whole process.
    def cli():
        out = subprocess.run([args.tabssl, "sql", "--models", MODELS, "--format", "csv", "-c",
                              f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{parquet}'; {query}"],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip().splitlines()[-1]

    # 2. The datafusion Python package with tabssl registered.
    ctx = datafusion.SessionContext()
    tabssl.register(ctx, models_dir=MODELS)
    ctx.register_parquet("t", parquet)

    def python():
        return ctx.sql(query).to_pydict()

    # 3. DuckDB with an Arrow UDF running onnxruntime (the GIL serialises Python UDFs, so the
    #    session gets every core as intra-op threads).
    options = ort.SessionOptions()
    options.intra_op_num_threads = cores
    session = ort.InferenceSession(os.path.join(MODELS, f"{MODEL}.onnx"), options, providers=["CPUExecutionProvider"])

    def udf(*arrays):
        feed = {}
        for spec, array in zip(inputs, arrays):
            if spec["dtype"] == "string":
                values = np.array(array.fill_null(NULL_STRING).to_pylist(), dtype=object)
            else:
                values = array.cast(pa.float32()).fill_null(float("nan")).to_numpy(zero_copy_only=False)
            feed[spec["name"]] = values.reshape(-1, 1)
        out = session.run(None, feed)[0].astype(np.float32, copy=False)
        offsets = pa.array(np.arange(0, out.size + 1, out.shape[1], dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(out.ravel()))

    con = duckdb.connect(config={"threads": cores})
    duck_types = ["VARCHAR" if i["dtype"] == "string" else "DOUBLE" for i in inputs]
    con.create_function("embed_udf", udf, duck_types, "FLOAT[]", type="arrow", null_handling="special")
    casts = ", ".join(f'CAST("{i["name"]}" AS {t})' for i, t in zip(inputs, duck_types))
    duck_query = f"SELECT count(e) AS n, avg(e[1]) AS m FROM (SELECT embed_udf({casts}) AS e FROM read_parquet('{parquet}'))"

    def duck():
        return con.execute(duck_query).fetchall()

    cli_s, cli_out = timed(cli, args.repeat)
    py_s, py_out = timed(python, args.repeat)
    duck_s, duck_out = timed(duck, args.repeat)
    n = args.rows
    print(f"machine: {platform.machine()}, {cores} cores, {platform.python_implementation()} {platform.python_version()}")
    print(f"{n} rows of tabssl_synthetic in Parquet, model {MODEL} ({len(columns)} inputs -> 16-d), best of {args.repeat}")
    print(f"  tabssl sql CLI           {cli_s:7.3f} s  {n / cli_s:12,.0f} rows/s   {cli_out}")
    print(f"  datafusion-python+tabssl {py_s:7.3f} s  {n / py_s:12,.0f} rows/s   n={py_out['n'][0]} m={py_out['m'][0]:.6f}")
    print(f"  duckdb + arrow UDF + ORT {duck_s:7.3f} s  {n / duck_s:12,.0f} rows/s   n={duck_out[0][0]} m={duck_out[0][1]:.6f}")
    print(f"ratio python/CLI    {cli_s / py_s:.2f}x   (goal >= 0.9)")
    print(f"ratio python/DuckDB {duck_s / py_s:.2f}x   (goal >= 2)")


if __name__ == "__main__":
    main()
