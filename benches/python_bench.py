#!/usr/bin/env python3
"""Rows/s of `SELECT embed(...)` from the `datafusion` Python package with tabssl
registered, against the same query in the `tabssl sql` CLI and against DuckDB with an Arrow
Python UDF calling onnxruntime, plus onnxruntime alone on inputs prepared in memory (the
model's own cost): same model, same Parquet rows, same cores; ratios measured side by side in
one run, for the shipped adult_vime and for a small numeric MLP.

    cargo build --release --bin tabssl -p tabssl-python   # the tabssl binary and the extension module
    python3 benches/python_bench.py [--rows 1000000] [--repeat 3]

Creates target/bench-venv with the pinned packages below if they are missing, and stages
the extension module built by cargo (target/release/deps/lib_native.so) with python/tabssl under
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

from bench_env import BUILD_TABSSL, ROOT, TABSSL, ensure_packages

PACKAGES = ["numpy", "onnxruntime==1.31.1", "duckdb==2.0.1", "pyarrow==26.0.1", "datafusion==55.0.0"]
# The shipped adult_vime (8 string + 6 numeric per-column inputs, 16-d) and the numeric
# fixture mlp_packed (6 packed float inputs, 6 -> 16 -> 8), where per-row overheads show most.
MODEL_SETS = [("adult_vime", os.path.join(ROOT, "models")),
              ("mlp_packed", os.path.join(ROOT, "tests", "fixtures", "models"))]
NULL_STRING = "\x01tabssl:null\x01"


def stage_extension():
    """python/tabssl plus the cargo-built module, importable from target/bench-python."""
    module = os.path.join(ROOT, "target", "release", "deps", "lib_native.so")
    if not os.path.exists(module):
        sys.exit(f"{module} not found: build it with `cargo build --release -p tabssl-python`")
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
    import pyarrow.parquet as pq

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tabssl", default=TABSSL)
    args = parser.parse_args()
    if not os.path.exists(args.tabssl):
        sys.exit(f"{args.tabssl} not found: build it with `{BUILD_TABSSL}` (or pass --tabssl)")
    stage_extension()
    import tabssl

    cores = os.cpu_count()
    data = os.path.join(ROOT, "target", "bench")
    os.makedirs(data, exist_ok=True)
    parquet = os.path.join(data, f"synthetic_{args.rows}.parquet")
    if not os.path.exists(parquet):
        subprocess.run([args.tabssl, "sql", "-c", f"COPY (SELECT * FROM tabssl_synthetic({args.rows}, 1)) "
                        f"TO '{parquet}' STORED AS PARQUET"], check=True, capture_output=True)
    rows = pq.read_table(parquet)
    print(f"machine: {platform.machine()}, {cores} cores, {platform.python_implementation()} {platform.python_version()}; "
          f"{args.rows} rows of tabssl_synthetic in Parquet; best of {args.repeat} after a warm-up")
    for model, models in MODEL_SETS:
        compare(args, cores, parquet, rows, model, models, tabssl, datafusion, duckdb, np, ort, pa)


def compare(args, cores, parquet, rows, model, models, tabssl, datafusion, duckdb, np, ort, pa):
    """One model through the four paths; prints times and ratios."""
    import json

    with open(os.path.join(models, f"{model}.json")) as f:
        inputs = json.load(f)["inputs"]
    packed = inputs[0].get("columns")
    columns = packed or [i["name"] for i in inputs]
    quoted = ", ".join(f'"{c}"' for c in columns)
    query = f"SELECT count(e) AS n, avg(e[1]) AS m FROM (SELECT embed('{model}', {quoted}) AS e FROM t)"

    # 1. The tabssl CLI, whole process.
    def cli():
        out = subprocess.run([args.tabssl, "sql", "--models", models, "--format", "csv", "-c",
                              f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{parquet}'; {query}"],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip().splitlines()[-1]

    # 2. The datafusion Python package with tabssl registered.
    ctx = datafusion.SessionContext()
    tabssl.register(ctx, models_dir=models)
    ctx.register_parquet("t", parquet)

    def python():
        out = ctx.sql(query).to_pydict()
        return f"{out['n'][0]},{out['m'][0]}"

    # 3. onnxruntime alone on inputs prepared in memory (the model's own cost), and
    # 4. DuckDB with an Arrow UDF running it (the GIL serialises Python UDFs, so the session
    #    gets every core as intra-op threads).
    options = ort.SessionOptions()
    options.intra_op_num_threads = cores
    session = ort.InferenceSession(os.path.join(models, f"{model}.onnx"), options, providers=["CPUExecutionProvider"])
    ranks = {i.name: len(i.shape) for i in session.get_inputs()}

    def feed_for(arrays):
        if packed:
            matrix = np.column_stack([a.cast(pa.float32()).fill_null(float("nan")).to_numpy(zero_copy_only=False)
                                      for a in arrays])
            return {inputs[0]["name"]: matrix.astype(np.float32, copy=False)}
        feed = {}
        for spec, array in zip(inputs, arrays):
            if spec["dtype"] == "string":
                values = np.array(array.fill_null(NULL_STRING).to_pylist(), dtype=object)
            else:
                values = array.cast(pa.float32()).fill_null(float("nan")).to_numpy(zero_copy_only=False)
            feed[spec["name"]] = values.reshape(-1, 1) if ranks[spec["name"]] == 2 else values
        return feed

    def run_model(arrays):
        out = session.run(None, feed_for(arrays))[0].astype(np.float32, copy=False)
        offsets = pa.array(np.arange(0, out.size + 1, out.shape[1], dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(out.ravel()))

    batches = rows.select(columns).to_batches(max_chunksize=8192)
    feeds = [feed_for(batch.columns) for batch in batches]

    def raw():
        total, first = 0, 0.0
        for feed in feeds:
            out = session.run(None, feed)[0]
            total += out.shape[0]
            first += float(out[:, 0].sum())
        return f"{total},{first / total}"

    # DuckDB reads the UDF's arity from its signature: one named parameter per input.
    names = [f"a{i}" for i in range(len(columns))]
    scope = {"run_model": run_model}
    exec(f"def udf({', '.join(names)}):\n    return run_model([{', '.join(names)}])", scope)
    con = duckdb.connect(config={"threads": cores})
    kinds = {i["name"]: i["dtype"] for i in inputs}
    duck_types = ["VARCHAR" if kinds.get(c) == "string" else "DOUBLE" for c in columns]
    con.create_function("embed_udf", scope["udf"], duck_types, "FLOAT[]", type="arrow", null_handling="special")
    casts = ", ".join(f'CAST("{c}" AS {t})' for c, t in zip(columns, duck_types))
    duck_query = f"SELECT count(e) AS n, avg(e[1]) AS m FROM (SELECT embed_udf({casts}) AS e FROM read_parquet('{parquet}'))"

    def duck():
        n, m = con.execute(duck_query).fetchall()[0]
        return f"{n},{m}"

    results = {name: timed(function, args.repeat) for name, function in
               [("cli", cli), ("python", python), ("duckdb", duck), ("raw", raw)]}
    n = args.rows
    print(f"\nmodel {model} ({len(columns)} {'packed numeric' if packed else 'per-column'} inputs), Parquet -> count/avg")
    labels = {"cli": "tabssl sql CLI", "python": "datafusion-python + tabssl", "duckdb": "DuckDB + Arrow UDF + ORT",
              "raw": "onnxruntime alone (in memory)"}
    for key, (seconds, out) in results.items():
        print(f"  {labels[key]:30} {seconds:7.3f} s  {n / seconds:12,.0f} rows/s   n,mean(e1) = {out}")
    t = {key: seconds for key, (seconds, _) in results.items()}
    print(f"  ratio python/CLI    {t['cli'] / t['python']:.2f}x   (goal >= 0.9)")
    print(f"  ratio python/DuckDB {t['duckdb'] / t['python']:.2f}x   (goal >= 2)")
    print(f"  ratio python/ORT alone {t['raw'] / t['python']:.2f}x   (DuckDB/ORT alone {t['duckdb'] / t['raw']:.2f}x)")

if __name__ == "__main__":
    main()
