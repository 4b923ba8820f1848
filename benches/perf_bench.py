#!/usr/bin/env python3
"""The performance table from one run: every tabssl path against its reference,
the two sides measured back to back (interleaved, best of --repeat after a warm-up each).

    cargo build --release --bin tabssl # target/release/tabssl
    python3 benches/perf_bench.py      # all parts at the issue's sizes
    python3 benches/perf_bench.py --rows-mlp 20000 --rows-strings 20000 --rows-export 20000 \\
        --rows-stream 20000 --repeat 1 # a quick check that everything runs
    python3 benches/perf_bench.py --only export --export-args '--compression zstd'

Parts (--only, comma-separated):
  mlp      `embed` with a numeric MLP 6 -> 256 -> 64 (built here with `onnx`, seeded He
           weights) over --rows-mlp Parquet rows (default 3,260,000, about 100x Adult) ->
           sums; the whole `tabssl sql` process against onnxruntime on a numpy array in
           memory (8192-row batches) and against DuckDB with an Arrow Python UDF calling
           onnxruntime. Also the same process without `embed` (scan only).
  strings  `embed` with the shipped models/adult_vime (8 string + 6 numeric inputs) ->
           sums, against onnxruntime on inputs prepared in memory (not counted).
  export   `tabssl export --method vime` (Parquet -> Parquet, --rows-export) against a
           DataFusion COPY (`tabssl sql`) of the exported file with the export's writer
           settings (compression, row-group size, write batch, no statistics on the
           columns the export leaves without them: read from the exported file's
           metadata), and a scan-only run of the same file (`CREATE TABLE m AS SELECT *`),
           so COPY - scan is the cost of writing.
  stream   `tabssl stream` with NDJSON on stdin against the same query over a Parquet
           table (`tabssl sql`), both writing NDJSON to /dev/null; the query and the
           schema are those of benches/stream_memory.py.
  peak     the fp32 rate of a 2048x2048 @ 2048x2048 onnxruntime MatMul on every core
           against the rate tabssl reaches on the MLP (2*(6*256 + 256*64) FLOP per row).

Thread budget: every side gets --threads (default: the cores this process may use).
`tabssl sql` runs --threads partitions with one ONNX Runtime thread each. onnxruntime
alone runs two ways, and the faster counts: one session with --threads intra-op threads,
and --threads Python threads with a one-thread session each (run() releases the GIL).
DuckDB: --threads threads and one --threads-thread session (the GIL serialises Python
UDFs). The export and the COPY use every core (the export has no thread option).
`tabssl stream` runs its defaults (one partition, ONNX Runtime on every core); the table
query --threads partitions. Both sides of each part compute the same numbers: the script
checks them and stops when they disagree.

Creates target/bench-venv with the pinned packages below if they are missing; data,
models and outputs are cached under target/bench/. Times are wall-clock seconds of whole
processes for tabssl (start, model load, scan, work, output) and of the measured calls for
Python. The last lines are a markdown table for BENCHMARKS.md.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import threading
import time

from bench_env import BUILD_TABSSL, ROOT, TABSSL, cores, ensure_packages, machine

PACKAGES = ["numpy", "onnxruntime==1.31.1", "duckdb==2.0.1", "pyarrow==26.0.1", "onnx==1.23.2"]
PARTS = ["mlp", "strings", "export", "stream", "peak"]
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
# Adult training split means and standard deviations of NUMERIC (rounded),
# folded into the MLP's first layer so its outputs are of order one.
MEANS = [38.58, 189778.4, 10.08, 1077.6, 87.3, 40.44]
STDS = [13.64, 105549.98, 2.57, 7385.3, 402.96, 12.35]
MLP = "mlp_6_256_64"
HIDDEN, WIDTH = 256, 64
FLOP_PER_ROW = 2 * (len(NUMERIC) * HIDDEN + HIDDEN * WIDTH)
BATCH = 8192
MATMUL_N = 2048
NULL_STRING = "\x01tabssl:null\x01"
WORK = os.path.join(ROOT, "target", "bench")


# ---------------------------------------------------------------- helpers

def run(command, **kwargs):
    """Runs a command to completion; returns the CompletedProcess (text), or stops the script
    with the command's stderr when it fails."""
    out = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if out.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return out


def interleaved(sides, repeat):
    """Each side once as a warm-up, then `repeat` rounds of every side in turn.
    Returns {name: (best seconds, result of the warm-up, all times)}."""
    warm = {name: function() for name, function in sides}
    times = {name: [] for name, _ in sides}
    for _ in range(repeat):
        for name, function in sides:
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: (min(times[name]), warm[name], times[name]) for name, _ in sides}


def csv_last_line(stdout):
    return [float(v) for v in stdout.strip().splitlines()[-1].split(",")]


def agree(name, values, reference, tolerance):
    """Stops the run when two sides computed different numbers: [n, sum, sum], the row
    counts equal and the sums within `tolerance` of the sum plus 1e-6 per row (the order
    of float additions differs)."""
    if values[0] != reference[0]:
        sys.exit(f"{name}: {values[0]} rows vs {reference[0]}")
    for label, (a, b) in zip(["sum(e1)", "sum(eD)"], zip(values[1:], reference[1:])):
        if abs(a - b) > tolerance * max(1.0, abs(b)) + 1e-6 * reference[0]:
            sys.exit(f"{name}: {label} differs: {a} vs {b} (relative tolerance {tolerance})")


def synthetic(tabssl, rows):
    """All columns of tabssl_synthetic(rows, 1) in Parquet, cached (the file
    benches/python_bench.py writes too)."""
    path = os.path.join(WORK, f"synthetic_{rows}.parquet")
    if not os.path.exists(path):
        partial = path + ".partial.parquet"
        run([tabssl, "sql", "-c", f"COPY (SELECT * FROM tabssl_synthetic({rows}, 1)) TO '{partial}' "
                                  f"STORED AS PARQUET"])
        os.replace(partial, path)
    return path


def split_run(sessions, feeds, step):
    """Runs feeds[i::k] on session i in k Python threads; step(session, feed) -> tuple of
    sums, added up."""
    totals = [None] * len(sessions)

    def worker(i):
        total = None
        for feed in feeds[i::len(sessions)]:
            part = step(sessions[i], feed)
            total = part if total is None else tuple(a + b for a, b in zip(total, part))
        totals[i] = total

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tuple(sum(t[k] for t in totals if t is not None) for k in range(3))


def ort_session(ort, path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def raw_sides(ort, model, feeds, threads, step):
    """onnxruntime alone: one session with `threads` intra-op threads, and `threads`
    one-thread sessions in Python threads."""
    one = ort_session(ort, model, threads)
    many = [ort_session(ort, model, 1) for _ in range(threads)]
    sides = [("ort 1 session x %d threads" % threads, lambda: split_run([one], feeds, step))]
    if threads > 1:
        sides.append((f"ort {threads} sessions x 1 thread", lambda: split_run(many, feeds, step)))
    return sides


def best_of(results, names):
    name = min(names, key=lambda n: results[n][0])
    return name, results[name]


def show(results, rows):
    for name, (seconds, value, times) in results.items():
        rate = "" if value[0] != rows else f"{rows / seconds:14,.0f} rows/s"
        print(f"  {name:44} {seconds:8.3f} s {rate:>21}   runs "
              f"{' '.join(f'{t:.3f}' for t in times)}   result {tuple(round(v, 4) for v in value)}")


# ---------------------------------------------------------------- the MLP

def build_mlp(np, onnx):
    """The 6 -> 256 -> 64 MLP (MatMul, Add, Relu, MatMul, Add; He-initialised, seed 17) and
    its manifest in target/bench/mlp_6_256_64/."""
    from onnx import TensorProto, helper, numpy_helper

    directory = os.path.join(WORK, MLP)
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(17)
    d = len(NUMERIC)
    w1 = rng.normal(0.0, np.sqrt(2.0 / d), (d, HIDDEN))
    b1 = rng.normal(0.0, 0.01, HIDDEN)
    w2 = rng.normal(0.0, np.sqrt(2.0 / HIDDEN), (HIDDEN, WIDTH))
    b2 = rng.normal(0.0, 0.01, WIDTH)
    mean, std = np.array(MEANS), np.array(STDS)
    # ((x - mean) / std) @ w1 + b1 == x @ (w1 / std[:, None]) + (b1 - (mean / std) @ w1)
    w1, b1 = w1 / std[:, None], b1 - (mean / std) @ w1
    inits = [numpy_helper.from_array(a.astype(np.float32), name) for a, name in
             [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2")]]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h2"]), helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
             helper.make_node("Add", ["h3", "b2"], ["embedding"])]
    graph = helper.make_graph(nodes, MLP, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", d])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", WIDTH])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                              producer_name="benches/perf_bench.py")
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(directory, f"{MLP}.onnx"))
    manifest = {
        "description": f"Benchmark MLP over Adult's six numeric columns, {d} -> {HIDDEN} -> ReLU -> {WIDTH}",
        "inputs": [{"name": "x", "dtype": "float32", "columns": NUMERIC}],
        "output": {"name": "embedding", "width": WIDTH},
        "preprocessing": "standardisation with Adult training means and stds, folded into the first layer",
        "training": {"method": "none (seeded He-initialised weights, numpy default_rng(17))",
                     "command": "python3 benches/perf_bench.py"},
    }
    with open(os.path.join(directory, f"{MLP}.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    return directory


def tabssl_mlp_sides(args, models, parquet):
    cols = ", ".join(f'"{c}"' for c in NUMERIC)
    table = f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{parquet}'; "
    embed = f"SELECT count(e) AS n, sum(e[1]) AS s1, sum(e[{WIDTH}]) AS sd FROM (SELECT embed('{MLP}', {cols}) AS e FROM t)"
    scan = f"SELECT count(*) AS n, sum({' + '.join(f'{chr(34)}{c}{chr(34)}' for c in NUMERIC)}) AS s, 0 AS z FROM t"
    one = embed.replace("FROM t)", "FROM (SELECT * FROM t LIMIT 1))")
    flags = ["--models", models, "--partitions", str(args.threads), "--intra-threads", "1", "--format", "csv"]

    def sql(text):
        return lambda: csv_last_line(run([args.tabssl, "sql", *flags, "-c", table + text]).stdout)

    return [("tabssl sql: Parquet -> embed -> sums", sql(embed)),
            ("tabssl sql: Parquet -> sums (scan only)", sql(scan)),
            ("tabssl sql: embed of 1 row (fixed cost)", sql(one))]


def part_mlp(args, mods, summary):
    np, ort, pa, pq, duckdb = mods["numpy"], mods["onnxruntime"], mods["pyarrow"], mods["pyarrow.parquet"], mods["duckdb"]
    rows = args.rows_mlp
    models = build_mlp(np, mods["onnx"])
    listed = run([args.tabssl, "sql", "--models", models, "--format", "csv", "-c",
                  "SELECT name FROM tabssl_models()"]).stdout
    if MLP not in listed.split():
        sys.exit(f"tabssl does not list {MLP} in {models}:\n{listed}")
    parquet = synthetic(args.tabssl, rows)
    model = os.path.join(models, f"{MLP}.onnx")
    table = pq.read_table(parquet, columns=NUMERIC)
    x = np.column_stack([table.column(c).to_numpy().astype(np.float32) for c in NUMERIC])
    feeds = [{"x": x[i:i + BATCH]} for i in range(0, rows, BATCH)]

    def step(session, feed):
        out = session.run(None, feed)[0]
        return out.shape[0], float(out[:, 0].sum(dtype=np.float64)), float(out[:, -1].sum(dtype=np.float64))

    # DuckDB: an Arrow UDF per chunk, DOUBLE columns in, FLOAT[] out.
    duck_session = ort_session(ort, model, args.threads)

    def udf(*columns):
        matrix = np.column_stack([c.to_numpy(zero_copy_only=False) for c in columns]).astype(np.float32)
        out = duck_session.run(None, {"x": matrix})[0]
        offsets = pa.array(np.arange(0, out.size + 1, out.shape[1], dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(out.ravel()))

    names = [f"a{i}" for i in range(len(NUMERIC))]
    scope = {"udf": udf}
    exec(f"def embed_udf({', '.join(names)}):\n    return udf({', '.join(names)})", scope)
    con = duckdb.connect(config={"threads": args.threads})
    con.create_function("embed_udf", scope["embed_udf"], ["DOUBLE"] * len(NUMERIC), "FLOAT[]", type="arrow")
    casts = ", ".join(f'CAST("{c}" AS DOUBLE)' for c in NUMERIC)
    duck_query = (f"SELECT count(e), sum(e[1]), sum(e[{WIDTH}]) FROM "
                  f"(SELECT embed_udf({casts}) AS e FROM read_parquet('{parquet}'))")

    sides = tabssl_mlp_sides(args, models, parquet) + raw_sides(ort, model, feeds, args.threads, step)
    sides.append(("DuckDB + Arrow UDF -> ORT", lambda: [float(v) for v in con.execute(duck_query).fetchall()[0]]))
    results = interleaved(sides, args.repeat)
    print(f"\n[mlp] embed('{MLP}', 6 numeric columns), {rows:,} Parquet rows -> count, sum(e[1]), sum(e[{WIDTH}])")
    show(results, rows)
    names = list(results)
    tabssl, scan = names[0], names[1]
    raw_names = [n for n in names if n.startswith("ort ")]
    for name in raw_names + ["DuckDB + Arrow UDF -> ORT"]:
        agree(f"mlp: {name}", results[name][1], results[tabssl][1], 1e-4)
    raw_name, raw = best_of(results, raw_names)
    t, r, d, s = results[tabssl][0], raw[0], results["DuckDB + Arrow UDF -> ORT"][0], results[scan][0]
    summary["mlp_rate"] = rows / t
    summary["mlp_embed_rate"] = rows / (t - s) if t > s else float("nan")
    summary["mlp_raw_rate"] = rows / r
    fixed = results[names[2]][0]
    print(f"  tabssl embed share (embed - scan only): {t - s:.3f} s, {rows / (t - s) if t > s else float('nan'):,.0f} rows/s; "
          f"without the fixed cost (embed - 1 row): {t - fixed:.3f} s, "
          f"{rows / (t - fixed) if t > fixed else float('nan'):,.0f} rows/s")
    summary["rows"].append((f"`embed` MLP 6→256→64, {rows:,} rows, Parquet → sums vs ORT alone ({raw_name})",
                            f"{rows / t:,.0f} rows/s", f"{rows / r:,.0f} rows/s", rows / t / (rows / r), "—", None))
    summary["rows"].append((f"`embed` MLP 6→256→64 vs DuckDB + Arrow UDF → ORT",
                            f"{rows / t:,.0f} rows/s", f"{rows / d:,.0f} rows/s", d / t, "—", None))


# ---------------------------------------------------------------- adult_vime

def part_strings(args, mods, summary):
    np, ort, pa, pq = mods["numpy"], mods["onnxruntime"], mods["pyarrow"], mods["pyarrow.parquet"]
    rows = args.rows_strings
    models = os.path.join(ROOT, "models")
    with open(os.path.join(models, "adult_vime.json")) as f:
        manifest = json.load(f)
    inputs, width = manifest["inputs"], manifest["output"]["width"]
    if manifest.get("nulls") != "encode":
        sys.exit("models/adult_vime.json: expected nulls = encode (NULLs passed as NaN / the NULL string)")
    parquet = synthetic(args.tabssl, rows)
    model = os.path.join(models, "adult_vime.onnx")
    table = pq.read_table(parquet, columns=[i["name"] for i in inputs])
    feeds = []
    for batch in table.to_batches(max_chunksize=BATCH):
        feed = {}
        for spec, column in zip(inputs, batch.columns):
            if spec["dtype"] == "string":
                # one Python str per distinct value, shared by the rows holding it
                encoded = column.fill_null(NULL_STRING).dictionary_encode()
                feed[spec["name"]] = np.array(encoded.dictionary.to_pylist(), dtype=object)[
                    encoded.indices.to_numpy(zero_copy_only=False)]
            else:
                feed[spec["name"]] = column.cast(pa.float32()).fill_null(float("nan")).to_numpy(zero_copy_only=False)
        feeds.append(feed)

    def step(session, feed):
        out = session.run(None, feed)[0]
        return out.shape[0], float(out[:, 0].sum(dtype=np.float64)), float(out[:, -1].sum(dtype=np.float64))

    cols = ", ".join(f'"{i["name"]}"' for i in inputs)
    sql = (f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{parquet}'; "
           f"SELECT count(e) AS n, sum(e[1]) AS s1, sum(e[{width}]) AS sd FROM (SELECT embed('adult_vime', {cols}) AS e FROM t)")
    flags = ["--models", models, "--partitions", str(args.threads), "--intra-threads", "1", "--format", "csv"]
    sides = [("tabssl sql: Parquet -> embed -> sums", lambda: csv_last_line(run([args.tabssl, "sql", *flags, "-c", sql]).stdout))]
    sides += raw_sides(ort, model, feeds, args.threads, step)
    results = interleaved(sides, args.repeat)
    print(f"\n[strings] embed('adult_vime', 8 string + 6 numeric columns), {rows:,} Parquet rows "
          f"-> count, sum(e[1]), sum(e[{width}]); ORT inputs prepared in memory (not timed)")
    show(results, rows)
    names = list(results)
    for name in names[1:]:
        agree(f"strings: {name}", results[name][1], results[names[0]][1], 1e-4)
    raw_name, raw = best_of(results, names[1:])
    t = results[names[0]][0]
    summary["rows"].append((f"`embed` adult_vime (8 string + 6 numeric), {rows:,} rows, Parquet → sums vs ORT alone ({raw_name})",
                            f"{rows / t:,.0f} rows/s", f"{rows / raw[0]:,.0f} rows/s", raw[0] / t, "≥ 0.9", raw[0] / t >= 0.9))


# ---------------------------------------------------------------- export vs COPY

CODECS = {"SNAPPY": "snappy", "UNCOMPRESSED": "uncompressed", "ZSTD": "zstd(3)", "LZ4": "lz4_raw",
          "LZ4_RAW": "lz4_raw", "GZIP": "gzip(6)", "BROTLI": "brotli(1)"}


def writer_settings(pq, path):
    """What the exported file says about its writer: rows, row groups, codecs, the columns
    written without statistics."""
    meta = pq.ParquetFile(path).metadata
    first = meta.row_group(0)
    columns = [first.column(i) for i in range(first.num_columns)]
    return {
        "rows": meta.num_rows,
        "row_groups": meta.num_row_groups,
        "row_group_rows": first.num_rows,
        "codecs": sorted({c.compression for c in columns}),
        "no_stats": [c.path_in_schema for c in columns if not c.is_stats_set],
        "columns": [c.path_in_schema for c in columns],
        "bytes": os.path.getsize(path),
    }


def part_export(args, mods, summary):
    pq = mods["pyarrow.parquet"]
    rows = args.rows_export
    source = synthetic(args.tabssl, rows)
    work = os.path.join(WORK, "export")
    os.makedirs(work, exist_ok=True)
    exported = os.path.join(work, "exported.parquet")
    copy_source = os.path.join(work, "copy_source.parquet")
    copied = os.path.join(work, "copy.parquet")
    export = [args.tabssl, "export", "--input", source, "--output", exported, "--key", "id", "--keep", "class",
              "--method", "vime", *shlex.split(args.export_args)]
    run(export)
    os.replace(exported, copy_source)  # the COPY reads this one; the timed exports overwrite `exported`
    settings = writer_settings(pq, copy_source)
    if len(settings["codecs"]) != 1 or settings["codecs"][0] not in CODECS:
        sys.exit(f"export: codecs {settings['codecs']}; pass the COPY's compression in --copy-options")
    options = {"format.compression": CODECS[settings["codecs"][0]],
               # the export's ROW_GROUP_ROWS and WRITE_BATCH_ROWS (crates/export/src/writer.rs)
               "format.max_row_group_size": str(settings["row_group_rows"] if settings["row_groups"] > 1 else 128 * 1024),
               "format.write_batch_size": "8192"}
    options.update({f"format.statistics_enabled::{c}": "none" for c in settings["no_stats"]})
    for pair in shlex.split(args.copy_options):
        key, _, value = pair.partition("=")
        options[key] = value
    derived = [c for c in settings["columns"] if c.endswith(("_tilde", "_mask", "_changed"))]
    if sorted(derived) != sorted(settings["no_stats"]):
        print(f"  note: columns without statistics {settings['no_stats']} are not the derived columns {derived}")
    opts = ", ".join(f"'{k}' '{v}'" for k, v in options.items())
    copy_sql = f"COPY (SELECT * FROM '{copy_source}') TO '{copied}' STORED AS PARQUET OPTIONS ({opts})"
    scan_sql = f"CREATE TABLE m AS SELECT * FROM '{copy_source}'; SELECT count(*) FROM m"

    first_passes = []  # the export's own report of its first pass (the marginal sample), per run

    def timed_export():
        if os.path.exists(exported):
            os.remove(exported)
        stderr = run(export).stderr
        found = re.search(r"first pass ([0-9.]+) s", stderr)
        first_passes.append(float(found.group(1)) if found else float("nan"))
        return stderr

    def copy():
        if os.path.exists(copied):
            os.remove(copied)
        return run([args.tabssl, "sql", "--format", "csv", "-c", copy_sql]).stdout

    def scan():
        return run([args.tabssl, "sql", "--format", "csv", "-c", scan_sql]).stdout

    results = interleaved([("tabssl export --method vime", timed_export), ("DataFusion COPY (tabssl sql)", copy),
                           ("scan only: CREATE TABLE m AS SELECT *", scan)], args.repeat)
    copy_settings = writer_settings(pq, copied)
    shown = ", ".join(f"'{k}' '{v}'" for k, v in options.items() if not k.startswith("format.statistics_enabled::"))
    print(f"\n[export] tabssl {shlex.join(export[1:2] + export[6:])}, {rows:,} rows, Parquet -> Parquet; COPY of the "
          f"exported file with OPTIONS ({shown}, 'format.statistics_enabled::<column>' 'none' for the "
          f"{len(settings['no_stats'])} columns the export wrote without statistics)")
    for name, (seconds, _, times) in results.items():
        print(f"  {name:44} {seconds:8.3f} s {rows / seconds:14,.0f} rows/s   runs {' '.join(f'{t:.3f}' for t in times)}")
    for name, s in [("export", settings), ("COPY", copy_settings)]:
        print(f"  {name:6} file: {s['rows']:,} rows, {len(s['columns'])} columns, {s['row_groups']} row groups of "
              f"{s['row_group_rows']:,}, {'/'.join(s['codecs'])}, {len(s['no_stats'])} columns without statistics, "
              f"{s['bytes'] / 1e6:.1f} MB")
    for key in ["rows", "columns", "row_groups", "codecs", "no_stats"]:
        if settings[key] != copy_settings[key]:
            message = f"export: the COPY's file differs in {key}: {settings[key]} vs {copy_settings[key]}"
            if not args.copy_options:
                sys.exit(message)
            print(f"  note ({message}): as asked by --copy-options")
    e, c, s = (results[n][0] for n in results)
    first = first_passes[1 + results["tabssl export --method vime"][2].index(e)]
    print(f"  COPY - scan only (the write): {c - s:.3f} s; export - scan only: {e - s:.3f} s; "
          f"the best export's first pass (marginal sample): {first:.3f} s")
    summary["rows"].append((f"`tabssl {shlex.join(export[1:2] + export[6:])}`, {rows:,} rows, Parquet → Parquet vs COPY "
                            f"(write alone: COPY − scan = {c - s:.2f} s)",
                            f"{e:.2f} s", f"{c:.2f} s", e / c, "≤ 1.25", e / c <= 1.25))


# ---------------------------------------------------------------- stream vs table

def part_stream(args, mods, summary):
    import stream_memory  # the query, schema and timer of the streaming benchmark

    rows = args.rows_stream
    models = ["--models", os.path.join(ROOT, "models")]
    parquet = synthetic(args.tabssl, rows)
    ndjson = os.path.join(WORK, f"synthetic_{rows}.ndjson")
    if not os.path.exists(ndjson):
        with open(ndjson + ".partial", "w") as out:
            subprocess.run([args.tabssl, "sql", "-c", f"SELECT * FROM tabssl_synthetic({rows}, 1)", "--format", "ndjson"],
                           stdout=out, check=True)
        os.replace(ndjson + ".partial", ndjson)
    schema = os.path.join(WORK, "stream_schema.json")
    with open(schema, "w") as f:
        f.write(stream_memory.SCHEMA)
    stream = [args.tabssl, "stream", *models, *shlex.split(args.stream_args), "--schema", schema,
              "--sql", stream_memory.QUERY.format(table="input")]
    table = [args.tabssl, "sql", *models, "--partitions", str(args.threads), "--format", "ndjson", "-c",
             stream_memory.QUERY.format(table=f"'{parquet}'")]
    outputs = {}

    def side(name, command, stdin_path):
        def go():
            # The warm-up keeps its output to compare both sides; timed runs write to /dev/null.
            target = os.path.join(WORK, f"stream_check_{name}.ndjson") if name not in outputs else os.devnull
            with open(stdin_path or os.devnull, "rb") as stdin, open(target, "wb") as out:
                _, _, stderr, _ = stream_memory.timed(command, stdin=stdin, stdout=out)
            outputs.setdefault(name, target)
            return stderr
        return go

    results = interleaved([("table", side("table", table, None)), ("stream", side("stream", stream, ndjson))],
                          args.repeat)
    hashes = {}
    for name, path in outputs.items():
        with open(path, "rb") as f:
            hashes[name] = sorted(hash(line) for line in f)
        if len(hashes[name]) != rows:
            sys.exit(f"stream: {len(hashes[name])} rows from the {name}, expected {rows}")
    same = hashes["table"] == hashes["stream"]
    if not same:  # not byte-identical: the same rows, numbers within tolerance
        sums = {}
        for name, path in outputs.items():
            n = ids = first = 0
            with open(path) as f:
                for line in f:
                    record = json.loads(line)
                    n, ids, first = n + 1, ids + record["id"], first + record["e"][0]
            sums[name] = (n, ids, first)
        agree("stream", sums["stream"], sums["table"], 1e-5)
    for path in outputs.values():
        os.remove(path)
    print(f"\n[stream] {stream_memory.QUERY.format(table='…')[:60]}…, {rows:,} rows, NDJSON to /dev/null "
          f"(outputs {'identical' if same else 'equal within 1e-5'})")
    labels = {"table": "table: tabssl sql over Parquet", "stream": "stream: tabssl stream, NDJSON on stdin"}
    for name, (seconds, _, times) in results.items():
        print(f"  {labels[name]:44} {seconds:8.3f} s {rows / seconds:14,.0f} rows/s   runs {' '.join(f'{t:.3f}' for t in times)}")
    t, s = results["table"][0], results["stream"][0]
    summary["rows"].append((f"`tabssl stream` NDJSON on stdin vs the same query over Parquet (adult_vime), {rows:,} rows "
                            f"{args.stream_args}".rstrip(),
                            f"{rows / s:,.0f} rows/s", f"{rows / t:,.0f} rows/s", t / s, "≥ 0.85", t / s >= 0.85))


# ---------------------------------------------------------------- peak

def part_peak(args, mods, summary):
    np, ort, onnx = mods["numpy"], mods["onnxruntime"], mods["onnx"]
    from onnx import TensorProto, helper

    n = MATMUL_N
    path = os.path.join(WORK, f"matmul_{n}.onnx")
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    rng = np.random.default_rng(0)
    feed = {"a": rng.standard_normal((n, n), dtype=np.float32), "b": rng.standard_normal((n, n), dtype=np.float32)}
    session = ort_session(ort, path, cores())
    expected = feed["a"][:64].astype(np.float64) @ feed["b"].astype(np.float64)
    if not np.allclose(session.run(None, feed)[0][:64], expected, rtol=1e-3, atol=1e-2):
        sys.exit("peak: the MatMul result is wrong")
    if "mlp_rate" not in summary:  # --only peak: measure tabssl's MLP rate here
        models = build_mlp(np, onnx)
        results = interleaved(tabssl_mlp_sides(args, models, synthetic(args.tabssl, args.rows_mlp)), args.repeat)
        (t, _, _), (s, _, _), _ = results.values()
        summary["mlp_rate"] = args.rows_mlp / t
        summary["mlp_embed_rate"] = args.rows_mlp / (t - s) if t > s else float("nan")
    times = []
    for _ in range(max(args.repeat, 5)):
        started = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - started)
    peak = 2 * n ** 3 / min(times) / 1e9
    achieved = summary["mlp_rate"] * FLOP_PER_ROW / 1e9
    share = summary["mlp_embed_rate"] * FLOP_PER_ROW / 1e9
    print(f"\n[peak] onnxruntime MatMul {n}x{n} @ {n}x{n} fp32, {cores()} intra-op threads: best {min(times) * 1e3:.1f} ms "
          f"= {peak:.1f} GFLOP/s")
    print(f"  tabssl MLP embed: {FLOP_PER_ROW:,} FLOP/row; end to end {achieved:.2f} GFLOP/s ({achieved / peak:.1%} of peak), "
          f"embed share alone {share:.2f} GFLOP/s ({share / peak:.1%})")
    if "mlp_raw_rate" in summary:
        raw = summary["mlp_raw_rate"] * FLOP_PER_ROW / 1e9
        print(f"  onnxruntime alone on the MLP: {raw:.2f} GFLOP/s ({raw / peak:.1%} of peak)")
    summary["rows"].append(("CPU peak: FLOP rate of the MLP `embed` (end to end) vs ORT MatMul 2048³ fp32",
                            f"{achieved:.2f} GFLOP/s", f"{peak:.1f} GFLOP/s", achieved / peak, "—", None))


# ---------------------------------------------------------------- main

def main():
    ensure_packages(["numpy", "onnxruntime", "duckdb", "pyarrow", "onnx"], PACKAGES)
    import duckdb
    import numpy
    import onnx
    import onnxruntime
    import pyarrow
    import pyarrow.parquet

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows-mlp", type=int, default=3_260_000)
    parser.add_argument("--rows-strings", type=int, default=1_500_000)
    parser.add_argument("--rows-export", type=int, default=1_000_000)
    parser.add_argument("--rows-stream", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=cores(), help="thread budget of every side [all cores]")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument("--tabssl", default=TABSSL)
    parser.add_argument("--export-args", default="", help="extra arguments appended to `tabssl export`")
    parser.add_argument("--copy-options", default="",
                        help="COPY options overriding those read from the exported file, as key=value words "
                             "(e.g. 'format.compression=zstd(1)')")
    parser.add_argument("--stream-args", default="", help="extra arguments for `tabssl stream`")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        sys.exit(f"unknown parts {unknown}; choose from {PARTS}")
    if not os.path.exists(args.tabssl):
        sys.exit(f"{args.tabssl} not found: build it with `{BUILD_TABSSL}` (or pass --tabssl)")
    os.makedirs(WORK, exist_ok=True)
    mods = {"numpy": numpy, "onnx": onnx, "onnxruntime": onnxruntime, "pyarrow": pyarrow,
            "pyarrow.parquet": pyarrow.parquet, "duckdb": duckdb}
    model, commit = machine()
    started = datetime.datetime.now().astimezone()
    info = (f"{started:%Y-%m-%d %H:%M %Z}; {cores()} cores (nproc), {model}, {platform.machine()}; "
            f"thread budget {args.threads}; best of {args.repeat} after a warm-up, sides interleaved; "
            f"binary {os.path.relpath(args.tabssl, ROOT)} (commit {commit}); onnxruntime {onnxruntime.__version__}, "
            f"duckdb {duckdb.__version__}, pyarrow {pyarrow.__version__}, numpy {numpy.__version__}")
    print(info)
    summary = {"rows": []}
    for part in PARTS:
        if part in parts:
            globals()[f"part_{part}"](args, mods, summary)

    print(f"\n{info}\n")
    print("| path | tabssl | reference | ratio | goal |")
    print("|---|---:|---:|---:|---|")
    for path, ours, reference, ratio, goal, met in summary["rows"]:
        verdict = "" if met is None else (" met" if met else " **not met**")
        print(f"| {path} | {ours} | {reference} | {ratio:.2f}× | {goal}{verdict} |")
    print("\nratio: tabssl / reference in rows/s (export: seconds, export / COPY; CPU peak: achieved / peak).")


if __name__ == "__main__":
    main()
