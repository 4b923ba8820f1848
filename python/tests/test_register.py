"""tabssl's functions inside a `datafusion.SessionContext`, against the `tabssl` CLI."""

from __future__ import annotations

import datafusion
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tabssl
from conftest import ADULT_CSV, ADULT_SQL, FIXTURE_MODELS, MODELS, VIME_COLUMNS, cli, cli_sql, quoted


def context(models=MODELS) -> datafusion.SessionContext:
    # One partition, as `tabssl sql --partitions 1` below: rows keep the file's order.
    ctx = datafusion.SessionContext(datafusion.SessionConfig().with_target_partitions(1))
    tabssl.register(ctx, models_dir=models)
    return ctx


def test_every_function_is_registered() -> None:
    ctx = context()
    ctx.sql("SELECT 1").collect()
    names = {
        "embed", "predict", "corrupt_mask", "corrupt_swap", "corrupt_swap_batch",
        "corrupt_noise", "corrupt_fill", "marginal_sample",
    }  # fmt: skip
    for name in names:
        # Each resolves: a missing function is a planning error naming it.
        with pytest.raises(Exception) as error:
            ctx.sql(f"SELECT {name}()").collect()
        assert "Invalid function" not in str(error.value), name
    models = ctx.sql("SELECT name FROM tabssl_models() ORDER BY name").to_pydict()["name"]
    assert "adult_vime" in models and "adult_scarf" in models
    rows = ctx.sql("SELECT count(*) AS n FROM tabssl_synthetic(1000, 7)").to_pydict()["n"]
    assert rows == [1000]


def test_embed_over_a_pyarrow_table_equals_the_cli(adult: pa.Table) -> None:
    ctx = context()
    ctx.register_record_batches("adult", [adult.to_batches()])
    sql = f"SELECT embed('adult_vime', {quoted(VIME_COLUMNS)}) AS e FROM adult"
    python = np.array(ctx.sql(sql).to_arrow_table().column("e").to_pylist(), dtype=np.float64)
    rows = cli_sql(f"{ADULT_SQL}; {sql}")
    reference = np.array([row["e"] for row in rows], dtype=np.float64)
    assert python.shape == reference.shape == (adult.num_rows, 16)
    assert np.max(np.abs(python - reference)) <= 1e-6


def test_predict_and_the_synthetic_table_equal_the_cli() -> None:
    ctx = context(FIXTURE_MODELS)
    columns = 'age, fnlwgt, "education-num", "capital-gain", "capital-loss", "hours-per-week"'
    sql = f"SELECT id, predict('income_head', {columns}) AS p FROM tabssl_synthetic(3000, 11) ORDER BY id"
    python = ctx.sql(sql).to_pydict()
    rows = cli_sql(sql, FIXTURE_MODELS)
    assert python["id"] == [r["id"] for r in rows]
    assert np.max(np.abs(np.array(python["p"]) - np.array([r["p"] for r in rows]))) <= 1e-6


def test_corruption_draws_equal_the_cli_for_the_same_seed_and_keys(tmp, adult: pa.Table) -> None:
    # The marginal sample comes from an export, as in a real pipeline.
    summary = tabssl.export(ADULT_CSV, tmp / "adult.parquet", "vime", seed=3, null_regex="\\?")
    marginals = summary["marginals"]
    sql = (
        f"SELECT fnlwgt, age, corrupt_mask(age, 0.3, 42, fnlwgt) AS m, "
        f"corrupt_swap(workclass, '{marginals}', 0.3, 42, fnlwgt) AS w, "
        f"corrupt_swap(age, '{marginals}', 0.5, 7, fnlwgt, 2) AS a "
        "FROM adult"
    )
    # The datafusion package's CSV reader ignores null_regex (apache/datafusion#25213, fixed
    # in tabssl's vendored reader): Python reads the file with pyarrow instead.
    ctx = context()
    ctx.register_record_batches("adult", [adult.to_batches()])
    python = ctx.sql(sql).to_pydict()
    rows = cli_sql(f"{ADULT_SQL}; {sql}")
    for column in ["fnlwgt", "m", "w", "a"]:
        assert python[column] == [r.get(column) for r in rows], column
    # Real draws, not constants: about 30% masked.
    assert 0.25 < np.mean(python["m"]) < 0.35


def test_export_is_byte_identical_to_the_cli(tmp) -> None:
    tabssl.export(ADULT_CSV, tmp / "py.parquet", "scarf", seed=9, views=2, null_regex="\\?")
    cli(
        "export", "--input", str(ADULT_CSV), "--output", str(tmp / "cli.parquet"),
        "--method", "scarf", "--seed", "9", "--views", "2", "--null-regex", "\\?",
    )  # fmt: skip
    assert (tmp / "py.parquet").read_bytes() == (tmp / "cli.parquet").read_bytes()
    assert (tmp / "py.marginals.parquet").read_bytes() == (tmp / "cli.marginals.parquet").read_bytes()
    assert pq.read_metadata(tmp / "py.parquet").num_rows == 2 * 32561


def test_marginal_sample_aggregates_through_ffi(adult: pa.Table) -> None:
    ctx = context()
    ctx.register_record_batches("adult", [adult.to_batches()])
    sql = "SELECT marginal_sample(workclass, fnlwgt, 64) AS s FROM adult"
    python = ctx.sql(sql).to_pydict()["s"][0]
    rows = cli_sql(f"{ADULT_SQL}; {sql}")
    assert python == rows[0]["s"]
    assert len(python) == 64


def test_session_options_follow_set() -> None:
    config = datafusion.SessionConfig().with_extension(tabssl.SessionOptions(models_dir=str(FIXTURE_MODELS)))
    ctx = datafusion.SessionContext(config)
    tabssl.register(ctx, models_dir=MODELS)
    # The session's own tabssl.models_dir wins over the registered one...
    names = ctx.sql("SELECT name FROM tabssl_models()").to_pydict()["name"]
    assert "income_head" in names and "adult_vime" not in names
    # ... and a value tabssl refuses is reported by the next query.
    ctx.sql("SET tabssl.provider = 'tpu'").collect()
    with pytest.raises(Exception, match="tabssl.provider"):
        ctx.sql("SELECT predict('income_head', 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)").collect()
