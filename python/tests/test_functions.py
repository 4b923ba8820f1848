"""The plain functions on pyarrow, pandas and Polars data, and the export → pretrain →
embed round trip from Python."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
import pyarrow as pa
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pyarrow.parquet as pq
import tabssl
from conftest import FIXTURE_MODELS, MODELS, VIME_COLUMNS, cli


def embeddings(table: pa.Table, column: str = "embedding") -> np.ndarray:
    return np.array(table.column(column).to_pylist(), dtype=np.float64)


def test_embed_keeps_every_input_column_and_row_order(adult: pa.Table) -> None:
    sample = adult.slice(0, 5000)
    result = tabssl.embed(sample, "adult_vime", models_dir=MODELS)
    assert result.column_names == [*sample.column_names, "embedding"]
    assert result.select(sample.column_names).equals(sample)
    assert result.schema.field("embedding").type == pa.list_(pa.float32(), 16)
    # The default columns are the manifest's: naming them gives the same numbers.
    named = tabssl.embed(sample, "adult_vime", VIME_COLUMNS, models_dir=MODELS, output="e")
    assert np.array_equal(embeddings(result), embeddings(named, "e"))
    # Row order: embedding a reversed table gives the reversed embeddings.
    reversed_rows = tabssl.embed(sample.take(np.arange(4999, -1, -1)), "adult_vime", models_dir=MODELS)
    assert np.array_equal(embeddings(reversed_rows)[::-1], embeddings(result))


def test_pandas_and_polars_frames_embed_like_pyarrow(adult: pa.Table) -> None:
    sample = adult.slice(100, 3000)
    reference = embeddings(tabssl.embed(sample, "adult_vime", models_dir=MODELS))
    frame = sample.to_pandas()
    from_pandas = tabssl.embed(frame, "adult_vime", models_dir=MODELS)
    assert np.max(np.abs(embeddings(from_pandas) - reference)) <= 1e-6
    from_polars = tabssl.embed(pl.from_arrow(sample), "adult_vime", models_dir=MODELS)
    assert np.max(np.abs(embeddings(from_polars) - reference)) <= 1e-6
    # A reader is read once, batch by batch.
    reader = pa.RecordBatchReader.from_batches(sample.schema, sample.to_batches(max_chunksize=700))
    assert np.array_equal(embeddings(tabssl.embed(reader, "adult_vime", models_dir=MODELS)), reference)


def test_predict_returns_one_float_per_row(adult: pa.Table) -> None:
    result = tabssl.predict(adult.slice(0, 1000), "income_head", models_dir=FIXTURE_MODELS)
    assert result.schema.field("prediction").type == pa.float32()
    values = np.array(result.column("prediction").to_pylist())
    assert values.shape == (1000,) and np.all((values > 0) & (values < 1))


def test_export_pretrain_embed_round_trip(tmp) -> None:
    summary = tabssl.export("synthetic:3000:5", tmp / "train.parquet", "vime", seed=1, key="id", keep=["class"])
    assert summary["rows"] == 3000 and summary["method"] == "vime"
    exported = pq.read_table(tmp / "train.parquet")
    assert "age_tilde" in exported.column_names and "age_mask" in exported.column_names
    models = tmp / "models"
    models.mkdir()
    report = tabssl.pretrain(
        tmp / "train.parquet", models / "mine.onnx", "scarf", epochs=2, dim=8, hidden=32, exclude=["id", "class"]
    )
    assert report["best_epoch"] in (1, 2) and report["rows"] == 3000
    assert (models / "mine.json").exists()
    # The tensor-size limit is a keyword too, and its message names it the Python way.
    with pytest.raises(tabssl.PlanError, match="raise max_tensor_elements"):
        tabssl.pretrain(tmp / "train.parquet", models / "small.onnx", "scarf", epochs=1, max_tensor_elements=1000)
    assert not (models / "small.onnx").exists()
    listed = tabssl.models(models)
    assert listed.column("name").to_pylist() == ["mine"]
    # The new model embeds data from Python, in both APIs.
    data = pq.read_table(tmp / "train.parquet").select(report["columns"])
    plain = embeddings(tabssl.embed(data, "mine", models_dir=models))
    assert plain.shape == (3000, 8) and np.isfinite(plain).all()
    import datafusion

    ctx = datafusion.SessionContext()
    tabssl.register(ctx, models_dir=models)
    ctx.register_record_batches("t", [data.to_batches()])
    arguments = ", ".join(f'"{c}"' for c in report["columns"])
    sql_result = ctx.sql(f"SELECT embed('mine', {arguments}) AS embedding FROM t").to_arrow_table()
    assert np.max(np.abs(embeddings(sql_result) - plain)) <= 1e-6


def test_export_from_a_pandas_frame_equals_export_from_its_parquet_file(tmp) -> None:
    frame = pd.DataFrame(
        {
            "id": np.arange(2000, dtype=np.int64),
            "x": np.linspace(0.0, 1.0, 2000),
            "c": np.array(["a", "b", "c", "d"])[np.arange(2000) % 4],
        }
    )
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp / "frame.parquet")
    tabssl.export(frame, tmp / "a.parquet", "vime", seed=4, key="id")
    tabssl.export(tmp / "frame.parquet", tmp / "b.parquet", "vime", seed=4, key="id")
    a, b = pq.read_table(tmp / "a.parquet"), pq.read_table(tmp / "b.parquet")
    assert a.num_rows == 2000
    assert a.column("x_tilde").equals(b.column("x_tilde"))
    assert a.column("c_tilde").cast(pa.string()).equals(b.column("c_tilde").cast(pa.string()))


def test_export_to_arrow_with_chosen_outputs_is_the_cli_file_byte_for_byte(tmp) -> None:
    options = ["--input", "synthetic:4000:2", "--key", "id", "--seed", "3"]
    cli("export", *options, "--output", str(tmp / "cli.arrow"), "--format", "arrow", "--compression", "lz4",
        "--outputs", "tilde,changed")
    summary = tabssl.export("synthetic:4000:2", tmp / "py.arrow", "vime", key="id", seed=3, format="arrow",
                            compression="lz4", outputs="tilde,changed")
    assert summary["rows"] == 4000
    assert (tmp / "py.arrow").read_bytes() == (tmp / "cli.arrow").read_bytes()
    with pa.memory_map(str(tmp / "py.arrow")) as source:
        table = pa.ipc.open_file(source).read_all()
    assert "age_tilde" in table.column_names and "age_changed" in table.column_names
    assert "age_mask" not in table.column_names and table.num_rows == 4000
    with pytest.raises(tabssl.PlanError, match="supports none, lz4 and zstd, not snappy"):
        tabssl.export("synthetic:10", tmp / "bad.arrow", format="arrow", compression="snappy")
