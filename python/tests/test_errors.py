"""Errors reach Python as exceptions carrying tabssl's message."""

from __future__ import annotations

import datafusion
import pyarrow as pa
import pytest
import tabssl
from conftest import MODELS


def test_unknown_model_is_a_plan_error_naming_the_available_ones(adult: pa.Table) -> None:
    with pytest.raises(tabssl.PlanError, match="unknown model \"nope\".*adult_vime") as error:
        tabssl.embed(adult.slice(0, 10), "nope", models_dir=MODELS)
    assert isinstance(error.value, ValueError) and isinstance(error.value, tabssl.TabsslError)
    ctx = datafusion.SessionContext()
    tabssl.register(ctx, models_dir=MODELS)
    with pytest.raises(Exception, match="unknown model \"nope\""):
        ctx.sql("SELECT embed('nope', 1.0)").collect()


def test_wrong_arity_names_the_expected_inputs(adult: pa.Table) -> None:
    ctx = datafusion.SessionContext()
    tabssl.register(ctx, models_dir=MODELS)
    ctx.register_record_batches("adult", [adult.slice(0, 10).to_batches()])
    with pytest.raises(Exception, match="adult_vime.*14"):
        ctx.sql("SELECT embed('adult_vime', age, workclass) FROM adult").collect()
    with pytest.raises(tabssl.PlanError, match="adult_vime"):
        tabssl.embed(adult.slice(0, 10), "adult_vime", ["age"], models_dir=MODELS)


def test_bad_probability_is_refused_with_its_range() -> None:
    ctx = datafusion.SessionContext()
    tabssl.register(ctx)
    with pytest.raises(Exception, match=r"p must be .*\[0, 1\]|between 0 and 1|in \[0, 1\]"):
        ctx.sql("SELECT corrupt_mask(age, 1.5, 1, id) FROM tabssl_synthetic(10)").collect()
    with pytest.raises(tabssl.PlanError, match="p"):
        tabssl.export("synthetic:100", "never.parquet", "vime", p=2.0)


def test_bad_arguments_of_the_plain_functions(tmp) -> None:
    with pytest.raises(tabssl.PlanError, match="method"):
        tabssl.export("synthetic:100", tmp / "x.parquet", "bogus")
    with pytest.raises(tabssl.PlanError, match="provider"):
        tabssl.register(datafusion.SessionContext(), provider="tpu")
    with pytest.raises(TypeError, match="Arrow data"):
        tabssl.embed([1, 2, 3], "adult_vime")
    with pytest.raises(tabssl.PlanError, match="does not exist"):
        tabssl.export(tmp / "missing.csv", tmp / "x.parquet")
    with pytest.raises(tabssl.PlanError, match="already has a column"):
        tabssl.embed(pa.table({"embedding": [1.0]}), "adult_vime", ["embedding"], models_dir=MODELS)
    assert not (tmp / "x.parquet").exists()


def test_files_that_cannot_be_written_or_read_are_os_errors(tmp) -> None:
    missing = tmp / "no-such-dir"
    with pytest.raises(tabssl.TabsslIOError, match="no-such-dir.*does not exist") as error:
        tabssl.export("synthetic:10", missing / "x.parquet")
    assert isinstance(error.value, OSError)
    with pytest.raises(tabssl.TabsslIOError, match="does not exist"):
        tabssl.pretrain("synthetic:100", missing / "m.onnx", epochs=1)
    with pytest.raises(tabssl.TabsslIOError, match="registry directory does not exist"):
        tabssl.models(missing)


def test_a_datafusion_of_another_major_version_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(datafusion, "__version__", "54.1.0")
    with pytest.raises(tabssl.VersionMismatchError, match="DataFusion 55.*54.1.0") as error:
        tabssl.register(datafusion.SessionContext())
    assert isinstance(error.value, ImportError)
    assert tabssl.DATAFUSION_FFI_MAJOR == 55
