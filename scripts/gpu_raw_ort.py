#!/usr/bin/env python3
"""Rows/s of onnxruntime alone (Python, inputs prepared in memory) on the model and rows
`tabssl bench` measures, per provider and batch size, and the ratio tabssl / raw for each
line of a `tabssl bench` log. Part of scripts/gpu_check.sh; numpy and onnxruntime only.

    python3 scripts/gpu_raw_ort.py --csv ROWS.csv --model models/adult_pca.onnx \
        --manifest models/adult_pca.json --bench-log tabssl_bench.log [--providers cpu,cuda]

ROWS.csv holds the model's input columns (a header line, then rows; as `tabssl sql --format
csv` writes them). Rows with an empty cell are left out: tabssl gives them a NULL embedding
without running the model.
"""

import argparse
import csv
import json
import time

import numpy as np
import onnxruntime as ort

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def load_inputs(csv_path, manifest):
    inputs = manifest["inputs"]
    with open(csv_path, newline="") as f:
        rows = [row for row in csv.DictReader(f) if all(row[i["name"]] != "" for i in inputs)]
    feeds = {}
    for spec in inputs:
        values = [row[spec["name"]] for row in rows]
        if spec["dtype"] == "string":
            feeds[spec["name"]] = np.array(values, dtype=object)
        else:
            feeds[spec["name"]] = np.array(values, dtype=np.float32)
    return feeds, len(rows)


def tabssl_rates(log_path):
    """(provider, batch) -> rows/s from the table `tabssl bench` prints."""
    rates = {}
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] in PROVIDERS and parts[1].isdigit():
                rates[(parts[0], int(parts[1]))] = float(parts[3])
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--bench-log", required=True)
    parser.add_argument("--providers", default="cpu,cuda")
    parser.add_argument("--batch-sizes", default="1024,8192,65536")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    # onnxruntime-gpu >= 1.21 loads CUDA and cuDNN from the nvidia-* Python packages.
    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    with open(args.manifest) as f:
        manifest = json.load(f)
    feeds, rows = load_inputs(args.csv, manifest)
    tabssl = tabssl_rates(args.bench_log)
    print(f"onnxruntime {ort.__version__}, available: {ort.get_available_providers()}; {rows} complete rows")
    print(f"{'provider':<9} {'batch':>6} {'raw ORT rows/s':>15} {'tabssl rows/s':>14} {'tabssl/raw':>11}")
    for provider in args.providers.split(","):
        options = ort.SessionOptions()
        try:
            session = ort.InferenceSession(args.model, options, providers=[PROVIDERS[provider]])
        except Exception as e:  # the provider could not load: say so and go on
            print(f"{provider:<9} unavailable: {e}")
            continue
        if PROVIDERS[provider] not in session.get_providers():
            print(f"{provider:<9} unavailable: the session fell back to {session.get_providers()}")
            continue
        # Per-column inputs are [batch] or [batch, 1], as the graph declares.
        shaped = {i.name: feeds[i.name].reshape(-1, 1) if len(i.shape) == 2 else feeds[i.name]
                  for i in session.get_inputs()}
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            slices = [{k: v[i:i + batch] for k, v in shaped.items()} for i in range(0, rows, batch)]
            session.run(None, slices[0])  # warm-up (CUDA kernels, allocator)
            best = min(_timed(session, slices) for _ in range(args.repeat))
            raw = rows / best
            ours = tabssl.get((provider, batch))
            ratio = f"{ours / raw:.2f}x" if ours else "-"
            print(f"{provider:<9} {batch:>6} {raw:>15,.0f} {ours or 0:>14,.0f} {ratio:>11}")


def _timed(session, slices):
    started = time.perf_counter()
    for feed in slices:
        session.run(None, feed)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
