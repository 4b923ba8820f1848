#!/usr/bin/env python3
"""VIME corruption end to end, Parquet -> Parquet: `tabssl export --method vime` against a
numpy implementation of VIME's `mask_generator` + `pretext_generator` on the same rows,
measured side by side in one run.

    cargo build --release --bin tabssl            # the tabssl binary
    python3 benches/compare_vime_numpy.py [--rows 1000000] [--repeat 3]

Creates target/bench-venv with numpy and pyarrow if they are missing. The input is the
Adult-shaped `tabssl_synthetic` table (14 features: 6 numeric, 8 categorical, NULLs in
3 columns) written once to Parquet. Both sides read it, corrupt every feature with
p = 0.3 (Bernoulli mask, donor drawn from the column), and write for each feature the
original, the corrupted value, the raw mask and VIME's label m = (x != x_tilde), Snappy
compressed. The numpy side follows the VIME reference code: label-encoded categoricals,
np.random.binomial mask, one np.random.permutation per column; NULLs are encoded as one
more category / NaN so no row is lost. Timed: the whole tabssl process vs the Python work
from reading to the written file (imports excluded).
"""

import argparse
import os
import platform
import re
import subprocess
import time

from bench_env import ROOT, TABSSL, ensure_packages, require

NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
               "native-country"]
P = 0.3


def numpy_vime(source, target, seed):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    table = pq.read_table(source)
    read = time.perf_counter()
    n = table.num_rows
    columns, dictionaries = [], []
    for name in NUMERIC + CATEGORICAL:
        column = table.column(name).combine_chunks()
        if name in NUMERIC:
            columns.append(column.to_numpy(zero_copy_only=False).astype(np.float64))
            dictionaries.append(None)
        else:
            encoded = column.dictionary_encode()
            codes = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
            columns.append(codes.astype(np.float64))
            dictionaries.append(encoded.dictionary)
    x = np.stack(columns, axis=1)
    # VIME mask_generator
    mask = rng.binomial(1, P, x.shape)
    # VIME pretext_generator
    x_bar = np.zeros_like(x)
    for i in range(x.shape[1]):
        x_bar[:, i] = x[rng.permutation(n), i]
    x_tilde = x * (1 - mask) + x_bar * mask
    m_new = x != x_tilde
    out = {"id": table.column("id")}
    for i, name in enumerate(NUMERIC + CATEGORICAL):
        original = table.column(name)
        if dictionaries[i] is None:
            tilde = pa.array(x_tilde[:, i]).cast(original.type)
        else:
            codes = pa.array(x_tilde[:, i].astype(np.int32))
            with_null = pa.concat_arrays([dictionaries[i].cast(pa.string()), pa.nulls(1, pa.string())])
            tilde = with_null.take(codes)
        out[name] = original
        out[name + "_tilde"] = tilde
        out[name + "_mask"] = pa.array(mask[:, i].astype(bool))
        out[name + "_changed"] = pa.array(m_new[:, i])
    corrupted = time.perf_counter()
    pq.write_table(pa.table(out), target, compression="snappy")
    return {"read": read - started, "corrupt": corrupted - read, "write": time.perf_counter() - corrupted}


def main():
    ensure_packages(["numpy", "pyarrow"], ["numpy", "pyarrow"])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--binary", default=TABSSL)
    args = parser.parse_args()
    require(args.binary)

    work = os.path.join(ROOT, "target", "bench", "vime")
    os.makedirs(work, exist_ok=True)
    source = os.path.join(work, f"synthetic_{args.rows}.parquet")
    if not os.path.exists(source):
        subprocess.run([args.binary, "sql", "-c",
                        f"COPY (SELECT * FROM tabssl_synthetic({args.rows}, 7) ORDER BY id) TO '{source}'"],
                       check=True, capture_output=True)
    features = ",".join(NUMERIC + CATEGORICAL)
    tabssl_times, numpy_times, first_passes, numpy_phases = [], [], [], []
    for r in range(args.repeat):
        target = os.path.join(work, "tabssl_out.parquet")
        started = time.perf_counter()
        run = subprocess.run([args.binary, "export", "--input", source, "--key", "id", "--columns", features,
                              "--method", "vime", "--p", str(P), "--seed", str(r), "--output", target],
                             check=True, capture_output=True, text=True)
        tabssl_times.append(time.perf_counter() - started)
        first_passes.append(float(re.search(r"first pass ([0-9.]+) s", run.stderr).group(1)))
        started = time.perf_counter()
        numpy_phases.append(numpy_vime(source, os.path.join(work, "numpy_out.parquet"), r))
        numpy_times.append(time.perf_counter() - started)
    import pyarrow.parquet as pq
    rows_t = pq.ParquetFile(os.path.join(work, "tabssl_out.parquet")).metadata.num_rows
    rows_n = pq.ParquetFile(os.path.join(work, "numpy_out.parquet")).metadata.num_rows
    assert rows_t == rows_n == args.rows, (rows_t, rows_n)
    t, n = min(tabssl_times), min(numpy_times)
    best_t, best_n = tabssl_times.index(t), numpy_times.index(n)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; rows: {args.rows}; best of {args.repeat}")
    print(f"tabssl export (whole process): {t:.3f} s  {args.rows / t / 1e6:.2f} M rows/s  runs {['%.3f' % x for x in tabssl_times]}")
    print(f"numpy VIME (read..write):      {n:.3f} s  {args.rows / n / 1e6:.2f} M rows/s  runs {['%.3f' % x for x in numpy_times]}")
    print(f"ratio tabssl / numpy throughput: {n / t:.2f}x")
    print(f"  tabssl best run: first pass (marginal sample) {first_passes[best_t]:.3f} s, "
          f"rest (start-up, export pass) {t - first_passes[best_t]:.3f} s")
    phases = numpy_phases[best_n]
    print(f"  numpy best run: read {phases['read']:.3f} s, corrupt {phases['corrupt']:.3f} s, "
          f"write {phases['write']:.3f} s")


if __name__ == "__main__":
    main()
