"""`tabssl.embed` reads its input through the Arrow C stream interface: the result's input
columns are the input's own buffers, and embedding a 1M-row table grows peak RSS by the
embedding column and one batch's working memory, far less than a copy of the input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import MODELS

SCRIPT = textwrap.dedent(
    """
    import gc, json, sys
    import datafusion, pyarrow as pa, tabssl

    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    ctx = datafusion.SessionContext()
    tabssl.register(ctx)
    # One 1M-row chunk, as a pandas or Polars frame hands it over.
    table = ctx.sql("SELECT * FROM tabssl_synthetic(1000000, 3)").to_arrow_table().combine_chunks()
    models = sys.argv[1]
    tabssl.embed(table.slice(0, 100), "adult_vime", models_dir=models)  # loads ONNX Runtime
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current RSS
    before = status("VmRSS")
    result = tabssl.embed(table, "adult_vime", models_dir=models)
    peak = status("VmHWM")

    def inside(chunk, original):
        # Every buffer of the result's chunk lies inside the input's buffer: a view, not a copy.
        pairs = zip(chunk.buffers(), original.buffers())
        return all(b is None or (o is not None and o.address <= b.address < o.address + max(o.size, 1))
                   for b, o in pairs)

    shared = all(inside(chunk, table.column(name).chunk(0))
                 for name in table.column_names for chunk in result.column(name).chunks)
    print(json.dumps({
        "input": table.nbytes, "output": result.column("embedding").nbytes,
        "rows": result.num_rows, "growth": peak - before, "shared": shared,
    }))
    """
)


def test_embedding_a_million_rows_does_not_copy_the_input() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(MODELS)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    print("embed 1M rows:", measured)
    assert measured["rows"] == 1_000_000
    assert measured["shared"], "the result's input columns are copies"
    # A copy of the input alone would add `input` bytes.
    assert measured["growth"] < measured["output"] + 0.25 * measured["input"], measured
