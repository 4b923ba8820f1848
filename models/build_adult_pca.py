#!/usr/bin/env python3
"""Builds models/adult_pca.onnx: a linear baseline encoder for UCI Adult.

Not self-supervised: a principal-component projection, shipped so the registry has a
real encoder over raw Adult columns (per-column inputs, strings included) with all
preprocessing inside the graph. The self-supervised encoders (VIME, SCARF, DAE) come
with `tabssl pretrain`.

Graph: numeric columns -> log1p for the capital columns -> standardise; categorical
columns -> ai.onnx.ml LabelEncoder -> OneHot (unseen categories map to an extra all-zero
weight slot); concat -> centre -> project on the top principal components.

    python3 -m pip install numpy onnx onnxruntime==1.31.1
    python3 models/build_adult_pca.py [--adult data/adult/adult.data.csv.gz]
"""

import argparse
import csv
import gzip
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
LOG1P = {"capital-gain", "capital-loss"}
CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
               "native-country"]
COMPONENTS = 8


def read_rows(path):
    with gzip.open(path, "rt", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r]
    return [{k: (None if v == "?" else v) for k, v in r.items()} for r in rows]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adult", default=os.path.join(HERE, "..", "data", "adult", "adult.data.csv.gz"))
    args = parser.parse_args()
    rows = read_rows(args.adult)
    complete = [r for r in rows if all(r[c] is not None for c in NUMERIC + CATEGORICAL)]

    # Learn the preprocessing from complete training rows.
    num = np.array([[float(r[c]) for c in NUMERIC] for r in complete])
    for j, c in enumerate(NUMERIC):
        if c in LOG1P:
            num[:, j] = np.log1p(num[:, j])
    mean, std = num.mean(axis=0), num.std(axis=0) + 1e-9
    vocab = {c: sorted({r[c] for r in complete}) for c in CATEGORICAL}
    blocks = [(num - mean) / std]
    for c in CATEGORICAL:
        index = {v: i for i, v in enumerate(vocab[c])}
        onehot = np.zeros((len(complete), len(vocab[c]) + 1))
        onehot[np.arange(len(complete)), [index[r[c]] for r in complete]] = 1.0
        blocks.append(onehot)
    features = np.concatenate(blocks, axis=1)
    centre = features.mean(axis=0)
    _, s, vt = np.linalg.svd(features - centre, full_matrices=False)
    projection = vt[:COMPONENTS].T
    # Unseen-category slots get zero weight and zero centre.
    offset = len(NUMERIC)
    for c in CATEGORICAL:
        unknown = offset + len(vocab[c])
        projection[unknown, :] = 0.0
        centre[unknown] = 0.0
        offset = unknown + 1
    explained = (s[:COMPONENTS] ** 2 / (s ** 2).sum()).tolist()

    nodes, inits, inputs = [], [], []
    axis1 = helper.make_tensor("axis1", TensorProto.INT64, [1], [1])
    inits.append(axis1)
    columns = []
    for j, c in enumerate(NUMERIC):
        inputs.append(helper.make_tensor_value_info(c, TensorProto.FLOAT, ["N"]))
        src = c
        if c in LOG1P:
            inits.append(helper.make_tensor(f"{c}/one", TensorProto.FLOAT, [], [1.0]))
            nodes += [helper.make_node("Add", [c, f"{c}/one"], [f"{c}/p1"]),
                      helper.make_node("Log", [f"{c}/p1"], [f"{c}/log"])]
            src = f"{c}/log"
        inits += [helper.make_tensor(f"{c}/mean", TensorProto.FLOAT, [], [float(mean[j])]),
                  helper.make_tensor(f"{c}/std", TensorProto.FLOAT, [], [float(std[j])])]
        nodes += [helper.make_node("Sub", [src, f"{c}/mean"], [f"{c}/c"]),
                  helper.make_node("Div", [f"{c}/c", f"{c}/std"], [f"{c}/z"]),
                  helper.make_node("Unsqueeze", [f"{c}/z", "axis1"], [f"{c}/col"])]
        columns.append(f"{c}/col")
    for c in CATEGORICAL:
        inputs.append(helper.make_tensor_value_info(c, TensorProto.STRING, ["N"]))
        k = len(vocab[c])
        nodes.append(helper.make_node("LabelEncoder", [c], [f"{c}/idx"], domain="ai.onnx.ml",
                                      keys_strings=vocab[c], values_int64s=list(range(k)), default_int64=k))
        inits += [helper.make_tensor(f"{c}/depth", TensorProto.INT64, [], [k + 1]),
                  helper.make_tensor(f"{c}/onoff", TensorProto.FLOAT, [2], [0.0, 1.0])]
        nodes.append(helper.make_node("OneHot", [f"{c}/idx", f"{c}/depth", f"{c}/onoff"], [f"{c}/onehot"], axis=-1))
        columns.append(f"{c}/onehot")
    inits += [helper.make_tensor("centre", TensorProto.FLOAT, [len(centre)], centre.astype(np.float32).tolist()),
              helper.make_tensor("projection", TensorProto.FLOAT, list(projection.shape),
                                 projection.astype(np.float32).flatten().tolist())]
    nodes += [helper.make_node("Concat", columns, ["features"], axis=1),
              helper.make_node("Sub", ["features", "centre"], ["centred"]),
              helper.make_node("MatMul", ["centred", "projection"], ["embedding"])]
    graph = helper.make_graph(nodes, "adult_pca", inputs,
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", COMPONENTS])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(HERE, "adult_pca.onnx")
    onnx.save(model, path)

    # Check the exported graph against the numpy computation on the training rows.
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {c: np.array([float(r[c]) for r in complete], dtype=np.float32) for c in NUMERIC}
    feeds.update({c: np.array([r[c] for r in complete], dtype=object) for c in CATEGORICAL})
    (onnx_out,) = session.run(None, feeds)
    numpy_out = (features - centre) @ projection
    max_error = float(np.abs(onnx_out - numpy_out).max())
    assert max_error < 1e-3, max_error

    manifest = {
        "description": "Linear baseline encoder for UCI Adult: PCA of standardised numerics and one-hot "
                       "categoricals (not self-supervised)",
        "inputs": [{"name": c, "dtype": "float32"} for c in NUMERIC] + [{"name": c, "dtype": "string"}
                                                                        for c in CATEGORICAL],
        "output": {"name": "embedding", "width": COMPONENTS},
        "preprocessing": {
            "numeric": "log1p(capital-gain, capital-loss), then standardise with training mean/std",
            "categorical": "one-hot over the training vocabulary; unseen categories get zero weight",
            "nulls": "a row with any NULL input gets a NULL embedding (tabssl's NULL policy)",
        },
        "training": {
            "method": "PCA (numpy SVD)",
            "data": "UCI Adult adult.data.csv, complete rows",
            "rows": len(complete),
            "components": COMPONENTS,
            "explained_variance_ratio": [round(v, 6) for v in explained],
            "max_abs_error_onnx_vs_numpy": max_error,
            "command": "python3 models/build_adult_pca.py",
        },
    }
    with open(os.path.join(HERE, "adult_pca.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"wrote {path}: {len(complete)} rows, explained variance {sum(explained):.3f}, "
          f"onnx vs numpy max error {max_error:.2e}")


if __name__ == "__main__":
    main()
