"""Type stubs of tabssl's extension module (Rust, pyo3)."""

import os
from typing import Any

__version__: str
DATAFUSION_FFI_MAJOR: int

class TabsslError(Exception): ...
class PlanError(TabsslError, ValueError): ...
class TabsslIOError(TabsslError, OSError): ...
class ExecutionError(TabsslError, RuntimeError): ...
class ResourcesError(TabsslError, RuntimeError): ...

class ScalarFunction:
    @property
    def name(self) -> str: ...
    def __datafusion_scalar_udf__(self) -> object: ...

class AggregateFunction:
    @property
    def name(self) -> str: ...
    def __datafusion_aggregate_udf__(self) -> object: ...

class TableFunction:
    @property
    def name(self) -> str: ...
    def __datafusion_table_function__(self, session: Any) -> object: ...

class SessionOptions:
    def __init__(
        self,
        models_dir: str | None = None,
        provider: str = "cpu",
        device_id: int = 0,
        intra_threads: int = 0,
        sessions_per_model: int = 0,
    ) -> None: ...
    def __datafusion_extension_options__(self) -> object: ...

class ArrowStream:
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

def functions(
    models_dir: str | None = None,
    provider: str = "cpu",
    device_id: int = 0,
    intra_threads: int = 0,
    sessions_per_model: int = 0,
) -> tuple[list[ScalarFunction], list[AggregateFunction], list[TableFunction]]: ...
def embed(
    data: Any,
    model: str,
    columns: list[str] | None = None,
    *,
    function: str = "embed",
    output: str = "embedding",
    models_dir: str | None = None,
    provider: str = "cpu",
    device_id: int = 0,
    intra_threads: int = 0,
) -> ArrowStream: ...
def export(source: Any, output: str | os.PathLike[str], method: str = "vime", **options: Any) -> dict[str, Any]: ...
def pretrain(source: Any, output: str | os.PathLike[str], method: str = "vime", **options: Any) -> dict[str, Any]: ...
def models(models_dir: str | None = None, provider: str = "cpu", device_id: int = 0) -> ArrowStream: ...
