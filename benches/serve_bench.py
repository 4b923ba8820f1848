#!/usr/bin/env python3
"""`tabssl serve` over loopback: the latency of enriching one row, and the throughput of bulk
enrichment against the same query run locally by `tabssl sql`, measured side by side in one run.

    cargo build --release --bin tabssl            # the tabssl binary
    python3 benches/serve_bench.py [--requests 2000] [--clients 8] [--rows 1000000] [--repeat 3] \\
        [--serve-args '--intra-threads 1'] [--binary PATH, default $TABSSL_BIN or target/release/tabssl]

Python packages (pyarrow, the ADBC Flight SQL driver) come from target/bench-venv, installed on
first use. The server runs the shipped `adult_vime` encoder (models/, 14 Adult features → 16-d):
`SELECT id, embed('adult_vime', age, workclass, ...) AS e FROM <rows>`.

Latency (one row per request, each client its own connection, bearer token header):
- DoExchange (pyarrow.flight): descriptor + schema + one 1-row batch in, the enriched row out;
- statement (ADBC `cursor.execute`): `SELECT embed('adult_vime', <14 literals>)`, i.e.
  GetFlightInfo + DoGet, the literals differing per request;
with 1 client, then with --clients concurrent clients (threads); p50 / p99 / mean, requests/s
and the server's CPU time per request (from /proc/<pid>/stat).

Throughput: --rows Adult-shaped `tabssl_synthetic` rows (seed 1) in an Arrow IPC file, embedded
- locally: `tabssl sql` (whole process: start, model load, scan, inference, writing the
  result as an Arrow IPC file), the baseline;
- DoExchange: the rows streamed in 8192-row batches (writer thread), the enriched batches read
  concurrently;
- ADBC: `adbc_ingest` of the rows into the connection's session, then the query, results
  fetched as Arrow.
Best of --repeat runs per path, interleaved. The ratios are local seconds / served seconds
(served rows/s over local rows/s; ≥ 1 means serving is faster).
"""

import argparse
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_env  # noqa: E402

bench_env.ensure_packages(
    ["adbc_driver_flightsql.dbapi", "pyarrow.flight"],
    ["adbc-driver-flightsql==1.13.0", "adbc-driver-manager==1.13.0", "pyarrow==26.0.1"])

import adbc_driver_flightsql.dbapi as flight_sql  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.flight as flight  # noqa: E402

ROOT = bench_env.ROOT
TOKEN = "bench-token-0123456789"
FEATURE_NAMES = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
                 "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country"]
FEATURES = ", ".join(f'"{name}"' if "-" in name else name for name in FEATURE_NAMES)
QUERY = f"SELECT id, embed('adult_vime', {FEATURES}) AS e FROM {{table}}"
BEARER = (b"authorization", f"Bearer {TOKEN}".encode())


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_process(command):
    """Runs a command to completion with its output discarded; returns (wall s, CPU s)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")
    return seconds, usage.ru_utime + usage.ru_stime


def start_server(tabssl, work, extra, models=os.path.join(ROOT, "models")):
    tokens = os.path.join(work, "tokens.txt")
    with open(tokens, "w") as f:
        f.write(TOKEN + "\n")
    log = open(os.path.join(work, "server.log"), "w+")
    process = subprocess.Popen(
        [tabssl, "serve", "--listen", "127.0.0.1:0", "--models", models,
         "--token-file", tokens, *extra], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        log.seek(0)
        found = re.search(r"Flight SQL on (\S+) ", log.read())
        if found:
            return process, found.group(1), log
        if process.poll() is not None:
            break
        time.sleep(0.05)
    log.seek(0)
    process.kill()
    raise SystemExit(f"tabssl serve did not start:\n{log.read()}")


def stop_server(process, log):
    process.terminate()
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise SystemExit("tabssl serve did not stop within 60 s of SIGTERM")
    log.seek(0)
    text = log.read()
    if code != 0 or "tabssl serve: stopped" not in text:
        raise SystemExit(f"tabssl serve did not stop cleanly (exit {code}):\n{text[-2000:]}")


def exchange(client, sql, table, options, chunk=8192):
    """One DoExchange: writes `table` in `chunk`-row batches from a thread while this thread
    reads the output; returns the output table."""
    writer, reader = client.do_exchange(flight.FlightDescriptor.for_command(sql), options=options)
    failure = []

    def write():
        try:
            writer.begin(table.schema)
            for batch in table.to_batches(max_chunksize=chunk):
                writer.write_batch(batch)
            writer.done_writing()
        except Exception as error:  # noqa: BLE001 - surfaced after the read below
            failure.append(error)

    if table.num_rows <= chunk:
        write()
        result = reader.read_all()
    else:
        thread = threading.Thread(target=write)
        thread.start()
        result = reader.read_all()
        thread.join()
    writer.close()
    if failure:
        raise failure[0]
    return result


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def latency_run(connect, request, requests, clients, warmup=20):
    """`requests` requests spread over `clients` threads, each with its own connection
    (`connect()` returns (client, close)); returns (sorted latencies in ms, requests/s)."""
    per_client = requests // clients
    latencies = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors = []

    def worker(index):
        try:
            client, close = connect()
            for i in range(warmup):
                request(client, index * per_client + i)
            barrier.wait()
            mine = []
            for i in range(per_client):
                started = time.perf_counter()
                request(client, index * per_client + i)
                mine.append((time.perf_counter() - started) * 1000)
            with lock:
                latencies.extend(mine)
            close()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return sorted(latencies), len(latencies) / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per latency measurement")
    parser.add_argument("--statement-requests", type=int, default=2000, help="requests for the statement rows")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the second latency runs")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the throughput comparison")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per path (the best is reported)")
    parser.add_argument("--serve-args", default="", help="extra flags of tabssl serve, e.g. '--intra-threads 1'")
    parser.add_argument("--binary", default=os.environ.get("bench_env.TABSSL_BIN", bench_env.TABSSL))
    args = parser.parse_args()
    bench_env.require(args.binary)
    tabssl = args.binary
    if not os.path.exists(tabssl):
        subprocess.run(["cargo", "build", "--all-targets"], cwd=ROOT, check=True)
    cores = os.cpu_count()
    print(f"machine: {platform.machine()}, {cores} cores ({cpu_model()}); binary {os.path.relpath(tabssl, ROOT)}; "
          f"pyarrow {pa.__version__}, adbc-driver-flightsql {flight_sql.adbc_driver_flightsql.__version__}"
          + (f"; serve {args.serve_args}" if args.serve_args else ""))

    with tempfile.TemporaryDirectory() as work:
        rows_file = os.path.join(work, "rows.arrow")
        subprocess.run([tabssl, "sql", "-c", f"COPY (SELECT * FROM tabssl_synthetic({args.rows}, 1)) TO '{rows_file}' "
                        "STORED AS ARROW"], check=True, stdout=subprocess.DEVNULL)
        rows = pa.ipc.open_file(rows_file).read_all()
        one_row = [rows.slice(i, 1).combine_chunks() for i in range(64)]

        server, address, log = start_server(tabssl, work, ["--max-concurrent-queries", "16", *shlex.split(args.serve_args)])
        uri = f"grpc://{address}"
        options = flight.FlightCallOptions(headers=[BEARER])
        try:
            # --- latency ---------------------------------------------------------------
            sql = QUERY.format(table="input")

            def exchange_one(client, i):
                out = exchange(client, sql, one_row[i % len(one_row)], options)
                assert out.num_rows == 1

            def literal(value):
                if value is None:
                    return "NULL"
                return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"

            statements = [f"SELECT embed('adult_vime', {', '.join(literal(row[name]) for name in FEATURE_NAMES)}) AS e"
                          for row in rows.slice(0, 64).to_pylist()]

            def statement_one(cursor, i):
                cursor.execute(statements[i % len(statements)])
                assert cursor.fetch_arrow_table().num_rows == 1

            def exchange_client():
                client = flight.FlightClient(uri)
                return client, client.close

            def statement_client():
                conn = flight_sql.connect(uri, db_kwargs={"adbc.flight.sql.authorization_header": BEARER[1].decode()},
                                          autocommit=True)
                cursor = conn.cursor()
                return cursor, lambda: (cursor.close(), conn.close())

            runs = [
                ("DoExchange, 1 row", exchange_client, exchange_one, args.requests, 1),
                ("DoExchange, 1 row", exchange_client, exchange_one, args.requests, args.clients),
                ("statement (ADBC execute), 1 row", statement_client, statement_one, args.statement_requests, 1),
                ("statement (ADBC execute), 1 row", statement_client, statement_one, args.statement_requests,
                 args.clients),
            ]
            print("\n| request (adult_vime, 14 features → 16-d) | clients | requests | p50 ms | p99 ms | mean ms "
                  "| requests/s | server CPU ms / request |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|")
            p99_single = None
            for name, connect, request, count, clients in runs:
                cpu_before = cpu_seconds(server.pid)
                latencies, rate = latency_run(connect, request, count, clients)
                cpu = (cpu_seconds(server.pid) - cpu_before) * 1000 / (count + 20 * clients)  # with warm-up
                p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
                if p99_single is None:
                    p99_single = p99
                print(f"| {name} | {clients} | {len(latencies)} | {p50:.2f} | {p99:.2f} | "
                      f"{statistics.fmean(latencies):.2f} | {rate:,.0f} | {cpu:.2f} |")
            verdict = "met" if p99_single <= 5.0 else "NOT met"
            print(f"\np99 of a 1-row DoExchange, 1 client: {p99_single:.2f} ms (goal ≤ 5 ms on {cores} cores: {verdict})")

            # --- throughput ------------------------------------------------------------
            n = rows.num_rows
            out_file = os.path.join(work, "out.arrow")
            local_command = [tabssl, "sql", "--models", os.path.join(ROOT, "models"),
                             "-c", f"CREATE EXTERNAL TABLE rows STORED AS ARROW LOCATION '{rows_file}'",
                             "-c", f"COPY ({QUERY.format(table='rows')}) TO '{out_file}' STORED AS ARROW"]

            def run_local():
                seconds, cpu = timed_process(local_command)
                os.remove(out_file)
                return seconds, cpu, ""

            def run_exchange():
                client = flight.FlightClient(uri)
                cpu_before, started = cpu_seconds(server.pid), time.perf_counter()
                result = exchange(client, sql, rows, options)
                seconds, cpu = time.perf_counter() - started, cpu_seconds(server.pid) - cpu_before
                client.close()
                if result.num_rows != n or result.column("id") != rows.column("id"):
                    raise SystemExit(f"DoExchange returned {result.num_rows} rows, or not in order")
                return seconds, cpu, ""

            def run_adbc():
                with flight_sql.connect(uri, db_kwargs={"adbc.flight.sql.authorization_header": BEARER[1].decode()},
                                        autocommit=True) as conn, conn.cursor() as cursor:
                    cpu_before, started = cpu_seconds(server.pid), time.perf_counter()
                    cursor.adbc_ingest("rows", rows, mode="create")
                    ingested = time.perf_counter() - started
                    cursor.execute(QUERY.format(table="rows"))
                    result = cursor.fetch_arrow_table()
                    seconds, cpu = time.perf_counter() - started, cpu_seconds(server.pid) - cpu_before
                if result.num_rows != n:
                    raise SystemExit(f"the ADBC query returned {result.num_rows} rows")
                return seconds, cpu, f" (ingest {ingested:.2f} s, query {seconds - ingested:.2f} s)"

            paths = [
                ("local: `tabssl sql` process, Arrow IPC file → Arrow IPC file", run_local),
                ("DoExchange (pyarrow.flight), 8192-row batches in, batches out", run_exchange),
                ("ADBC: `adbc_ingest`, then the query, `fetch_arrow_table`", run_adbc),
            ]
            best = {}
            for _ in range(args.repeat):
                for name, measure in paths:
                    result = measure()
                    if name not in best or result[0] < best[name][0]:
                        best[name] = result
            print(f"\n| {n:,} rows, best of {args.repeat} | seconds | rows/s | vs local | CPU s (server, or the local process) |")
            print("|---|---:|---:|---:|---:|")
            local = best[paths[0][0]][0]
            for name, _ in paths:
                seconds, cpu, detail = best[name]
                print(f"| {name}{detail} | {seconds:.2f} | {n / seconds:,.0f} | **{local / seconds:.2f}×** | {cpu:.2f} |")
            ratios = ", ".join(f"{name.split(':')[0].split(' (')[0]} {local / best[name][0]:.2f}×" for name, _ in paths[1:])
            print(f"\nserved / local rows/s (goal ≥ 0.8×): {ratios}")
        finally:
            stop_server(server, log)


if __name__ == "__main__":
    main()
