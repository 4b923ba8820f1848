"""Fixtures of the Python package's tests: the repository, the `tabssl` binary built by the
same `cargo test`, the committed Adult data and models (see pytest.rs, which runs them)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

REPO = Path(os.environ["TABSSL_TEST_REPO"])
BIN = Path(os.environ["TABSSL_TEST_BIN"])
ADULT_CSV = REPO / "data" / "adult" / "adult.data.csv.gz"
MODELS = REPO / "models"
FIXTURE_MODELS = REPO / "tests" / "fixtures" / "models"
ADULT_SQL = (
    f"CREATE EXTERNAL TABLE adult STORED AS CSV LOCATION '{ADULT_CSV}' "
    "OPTIONS ('format.compression' 'gzip', 'format.has_header' 'true', 'format.null_regex' '\\?')"
)
VIME_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country",
]  # fmt: skip


def quoted(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def cli(*args: str) -> str:
    """Runs the tabssl binary; returns stdout (fails the test with stderr on error)."""
    done = subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"tabssl {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def cli_sql(sql: str, models: Path = MODELS) -> list[dict]:
    """`tabssl sql` with NDJSON output, as rows."""
    out = cli("sql", "--models", str(models), "--partitions", "1", "--format", "ndjson", "-c", sql)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def adult() -> pa.Table:
    """UCI Adult's training file as pyarrow reads it ('?' is NULL)."""
    return pacsv.read_csv(
        ADULT_CSV,
        convert_options=pacsv.ConvertOptions(null_values=["?"], strings_can_be_null=True),
    )


@pytest.fixture()
def tmp(tmp_path: Path) -> Path:
    return tmp_path
