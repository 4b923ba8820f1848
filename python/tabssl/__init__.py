"""tabssl: self-supervised learning for tabular data, inside SQL.

Register tabssl's functions into a ``datafusion.SessionContext``::

    import datafusion, tabssl
    ctx = datafusion.SessionContext()
    tabssl.register(ctx, models_dir="models")
    ctx.sql("SELECT embed('adult_vime', age, workclass, ...) FROM adult")

or call them on Arrow data (pyarrow, pandas, Polars) without SQL::

    table = tabssl.embed(frame, "adult_vime")        # -> pyarrow.Table, input columns + "embedding"
    tabssl.export("data.csv", "train.parquet", method="vime", key="id")
    tabssl.pretrain("train.parquet", "models/mine.onnx", method="scarf", epochs=5)
    tabssl.models("models")                          # -> pyarrow.Table
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal

import pyarrow as pa

from . import _native
from ._native import (
    DATAFUSION_FFI_MAJOR,
    ExecutionError,
    PlanError,
    ResourcesError,
    SessionOptions,
    TabsslError,
    TabsslIOError,
)

__version__: str = _native.__version__

# ONNX Runtime's locator asks a Python interpreter for an installed `onnxruntime`: this one.
os.environ.setdefault("TABSSL_PYTHON", sys.executable)

__all__ = [
    "DATAFUSION_FFI_MAJOR",
    "ExecutionError",
    "PlanError",
    "ResourcesError",
    "SessionOptions",
    "TabsslError",
    "TabsslIOError",
    "VersionMismatchError",
    "embed",
    "export",
    "models",
    "predict",
    "pretrain",
    "register",
]

Provider = Literal["cpu", "cuda", "auto"]


class VersionMismatchError(TabsslError, ImportError):
    """The installed ``datafusion`` package speaks another datafusion-ffi ABI than tabssl."""


def _check_datafusion(datafusion_module: Any) -> None:
    version = getattr(datafusion_module, "__version__", None)
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        major = None
    if major != DATAFUSION_FFI_MAJOR:
        msg = (
            f"tabssl {__version__} was built against DataFusion {DATAFUSION_FFI_MAJOR} "
            f"(datafusion-ffi {DATAFUSION_FFI_MAJOR}), but the installed datafusion Python "
            f"package is {version}; their function ABIs differ. Install "
            f"'datafusion>={DATAFUSION_FFI_MAJOR},<{DATAFUSION_FFI_MAJOR + 1}' "
            "or a tabssl built for your DataFusion."
        )
        raise VersionMismatchError(msg)


def register(
    ctx: Any,
    models_dir: str | os.PathLike[str] | None = None,
    provider: Provider = "cpu",
    *,
    device_id: int = 0,
    intra_threads: int = 0,
    sessions_per_model: int = 0,
) -> None:
    """Register every tabssl function in a ``datafusion.SessionContext``.

    Scalar: ``embed``, ``predict``, ``corrupt_mask``, ``corrupt_swap``,
    ``corrupt_swap_batch``, ``corrupt_noise``, ``corrupt_fill``; aggregate:
    ``marginal_sample``; table: ``tabssl_models()``, ``tabssl_synthetic(rows[, seed])``.

    ``models_dir`` is the model registry (default: ``$TABSSL_MODELS_DIR`` or ``models``),
    ``provider`` the ONNX Runtime execution provider. A session whose config carries a
    :class:`SessionOptions` extension follows its ``SET tabssl.*`` values instead.

    Raises :class:`VersionMismatchError` when the ``datafusion`` package is not the major
    version tabssl was built for (their ABIs differ), :class:`PlanError` for a bad option.
    """
    import datafusion

    _check_datafusion(datafusion)
    scalars, aggregates, tables = _native.functions(
        models_dir=None if models_dir is None else os.fspath(models_dir),
        provider=provider,
        device_id=device_id,
        intra_threads=intra_threads,
        sessions_per_model=sessions_per_model,
    )
    for function in scalars:
        ctx.register_udf(datafusion.ScalarUDF.from_pycapsule(function))
    for function in aggregates:
        ctx.register_udaf(datafusion.AggregateUDF.from_pycapsule(function))
    for function in tables:
        ctx.register_udtf(datafusion.TableFunction(function.name, function, ctx))


def _arrow(data: Any) -> Any:
    """``data`` as an object with ``__arrow_c_stream__`` (no copy where it has one)."""
    if hasattr(data, "__arrow_c_stream__"):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    msg = (
        "expected Arrow data (a pyarrow Table, RecordBatch or RecordBatchReader, a pandas or "
        f"Polars DataFrame), got {type(data).__name__}"
    )
    raise TypeError(msg)


def _source(source: Any) -> Any:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return _arrow(source)


def _run_model(function: str, data: Any, model: str, columns: list[str] | None, output: str, models_dir: Any,
               provider: str, device_id: int, intra_threads: int) -> pa.Table:
    stream = _native.embed(
        _arrow(data),
        model,
        columns,
        function=function,
        output=output,
        models_dir=None if models_dir is None else os.fspath(models_dir),
        provider=provider,
        device_id=device_id,
        intra_threads=intra_threads,
    )
    return pa.table(stream)


def embed(
    data: Any,
    model: str,
    columns: list[str] | None = None,
    *,
    output: str = "embedding",
    models_dir: str | os.PathLike[str] | None = None,
    provider: Provider = "cpu",
    device_id: int = 0,
    intra_threads: int = 0,
) -> pa.Table:
    """Embed every row of ``data`` with ``model``: the input columns plus ``output``.

    ``data`` is Arrow data: a pyarrow Table, RecordBatch or RecordBatchReader, or a
    pandas or Polars DataFrame (anything with ``__arrow_c_stream__`` is read without a
    copy). ``columns`` are the model's arguments in order; by default the column names
    its manifest declares. The result keeps the input's row order.
    """
    return _run_model("embed", data, model, columns, output, models_dir, provider, device_id, intra_threads)


def predict(
    data: Any,
    model: str,
    columns: list[str] | None = None,
    *,
    output: str = "prediction",
    models_dir: str | os.PathLike[str] | None = None,
    provider: Provider = "cpu",
    device_id: int = 0,
    intra_threads: int = 0,
) -> pa.Table:
    """Like :func:`embed` for one-value heads: ``output`` is a float32 column."""
    return _run_model("predict", data, model, columns, output, models_dir, provider, device_id, intra_threads)


def export(source: Any, output: str | os.PathLike[str], method: str = "vime", **options: Any) -> dict[str, Any]:
    """Write a corrupted pretraining set to ``output`` (Parquet or Arrow IPC, atomically).

    ``source`` is a path (CSV, Parquet, Arrow IPC, NDJSON, a directory),
    ``"synthetic:ROWS[:SEED]"``, or Arrow data. ``method`` is ``vime``, ``scarf``, ``dae``,
    ``noise`` or ``blank``; ``options`` are those of ``tabssl export``: ``p``, ``seed``,
    ``views``, ``columns``, ``key``, ``keep``, ``batch_local``, ``capacity``, ``noise_std``,
    ``fill``, ``outputs`` (e.g. ``"tilde,mask"``), ``format`` (``"parquet"`` or
    ``"arrow"``), ``compression`` (e.g. ``"zstd(3)"``), ``null_regex``, ``batch_size``.
    Returns the summary (rows, features, p, seconds...).
    """
    return _native.export(_source(source), os.fspath(output), method, **options)


def pretrain(source: Any, output: str | os.PathLike[str], method: str = "vime", **options: Any) -> dict[str, Any]:
    """Pretrain a VIME, SCARF or DAE encoder and write ``output`` (ONNX) and its manifest.

    ``source`` as in :func:`export` (a ``tabssl export`` file trains on its original
    columns). ``options`` are those of ``tabssl pretrain``: ``columns``, ``exclude``,
    ``sql``, ``p``, ``alpha``, ``temperature``, ``hidden``, ``dim``, ``epochs``,
    ``batch_size``, ``lr``, ``seed``, ``validation``, ``max_vocab``, ``min_count``,
    ``max_tensor_elements``, ``null_regex``, ``description``. The model is ready for :func:`embed` from the
    directory it was written to. Returns the run's report.
    """
    return _native.pretrain(_source(source), os.fspath(output), method, **options)


def models(models_dir: str | os.PathLike[str] | None = None, provider: Provider = "cpu") -> pa.Table:
    """The model registry: one row per model with its inputs, width, provider, manifest."""
    stream = _native.models(None if models_dir is None else os.fspath(models_dir), provider)
    return pa.table(stream)
