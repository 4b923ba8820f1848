#!/usr/bin/env python3
"""A Python client of `tabssl serve`, as a user would write it: the ADBC Flight SQL driver
(`adbc_driver_flightsql.dbapi`) for statements, ingest and parameters, and pyarrow.flight
for `DoExchange`. Run by `cargo test` (tests/it/serve_python.rs), which starts the server,
runs this script and compares what it wrote with the same SQL run locally.

    python3 tests/python/serve_adbc.py --address 127.0.0.1:PORT --token-file FILE --out DIR

The server must have the view `people` (Adult-shaped `tabssl_synthetic` rows) and the model
`percol` (tests/fixtures/models). Writes into DIR, as Arrow IPC files:
- query.arrow: a statement over `people` with an `embed` column (cursor.execute);
- entities.arrow / entities_result.arrow: rows ingested with `adbc_ingest` (create, then
  append) and the statement embedding them on the same connection;
- param_one.arrow / param_rows.arrow: a `$1` parameter bound to one value, then to a batch
  of four values (one execution per row, results in row order);
- qmark.arrow: the same query with DB-API `?` placeholders;
- exchange_input.arrow / exchange.arrow: batches sent through pyarrow.flight `DoExchange`
  (authenticated by the Basic handshake) and the enriched batches that came back;
and outcomes.json: the errors of the calls that must fail (DROP VIEW, a wrong token, another
connection's ingested table), the username/password handshake with three username lengths,
the rows each ingest reported, the server's info, and
the DoExchange error if there was one.
"""

import argparse
import json
import os
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.flight as flight

EMBED = "embed('percol', age, \"education-num\", workclass, sex)"
WORKCLASSES = ["Private", "Self-emp-not-inc", "Local-gov", "State-gov", "Federal-gov", "Without-pay"]


def write(directory, name, data):
    """Writes a table or a list of batches as an Arrow IPC file."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_batches(data)
    with pa.ipc.new_file(os.path.join(directory, name), table.schema) as writer:
        writer.write_table(table)


def entities(first, count):
    """Entity rows keyed `e0000`, ...; every 37th age is NULL (its embedding must be NULL)."""
    ids = range(first, first + count)
    return pa.table({
        "entity": pa.array([f"e{i:04d}" for i in ids], pa.string()),
        "age": pa.array([None if i % 37 == 5 else 18 + (i * 7) % 60 for i in ids], pa.int64()),
        "education-num": pa.array([1 + (i * 5) % 16 for i in ids], pa.int64()),
        "workclass": pa.array([WORKCLASSES[i % len(WORKCLASSES)] for i in ids], pa.string()),
        "sex": pa.array(["Female" if i % 3 == 0 else "Male" for i in ids], pa.string()),
    })


def error_of(call):
    """Runs `call`, which must fail; returns {"type", "message"} of the error."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - every failure is recorded and judged by the Rust side
        return {"type": type(error).__name__, "message": str(error)}
    return {"type": None, "message": "the call succeeded"}


def connect(uri, **db_kwargs):
    # The server has no transactions: autocommit stays on (the driver warns otherwise).
    return flight_sql.connect(uri, db_kwargs=db_kwargs, autocommit=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True, help="HOST:PORT of tabssl serve")
    parser.add_argument("--token-file", required=True, help="file whose first line is a valid token")
    parser.add_argument("--out", required=True, help="directory for the results")
    args = parser.parse_args()
    with open(args.token_file) as f:
        token = f.readline().strip()
    uri = f"grpc://{args.address}"
    out = args.out
    outcomes = {}

    # A statement over a server table, bearer token in the header.
    with connect(uri, **{"adbc.flight.sql.authorization_header": f"Bearer {token}"}) as conn:
        outcomes["info"] = {k: str(v) for k, v in conn.adbc_get_info().items()}
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT id, age, workclass, {EMBED} AS e FROM people WHERE id < 700 ORDER BY id")
            write(out, "query.arrow", cursor.fetch_arrow_table())

            # Parameters: one value, then a batch of values (one execution per row).
            cursor.execute(f"SELECT id, age, {EMBED} AS e FROM people WHERE id = $1", parameters=(5,))
            write(out, "param_one.arrow", cursor.fetch_arrow_table())
            rows = pa.record_batch({"id": pa.array([7, 3, 1999, 3], pa.int64())})
            cursor.execute(f"SELECT id, age, {EMBED} AS e FROM people WHERE id = $1", parameters=rows)
            write(out, "param_rows.arrow", cursor.fetch_arrow_table())
            # DB-API's qmark style, what generic Python code writes: the server numbers them.
            cursor.execute(f"SELECT id, age, {EMBED} AS e FROM people WHERE id = ? AND id < ?", parameters=(5, 10))
            write(out, "qmark.arrow", cursor.fetch_arrow_table())

            # Clients read, never write.
            outcomes["drop_view"] = error_of(lambda: cursor.execute("DROP VIEW people"))

    # The username/password handshake (Basic user:token). Go's Flight client encodes it in
    # base64 without padding, so three username lengths cover every padding case.
    outcomes["handshake"] = {}
    for user in ["u", "us", "usr"]:
        try:
            with connect(uri, username=user, password=token) as conn, conn.cursor() as cursor:
                cursor.execute("SELECT 1 AS one")
                outcomes["handshake"][user] = str(cursor.fetchall())
        except Exception as error:  # noqa: BLE001 - judged by the Rust side
            outcomes["handshake"][user] = f"{type(error).__name__}: {error}"

    # Ingest, then a query of the ingested rows on the same connection.
    bearer = {"adbc.flight.sql.authorization_header": f"Bearer {token}"}
    with connect(uri, **bearer) as conn:
        with conn.cursor() as cursor:
            first, second = entities(0, 300), entities(300, 60)
            outcomes["ingested"] = [
                cursor.adbc_ingest("entities", first, mode="create"),
                cursor.adbc_ingest("entities", second, mode="append"),
            ]
            write(out, "entities.arrow", pa.concat_tables([first, second]))
            cursor.execute(f"SELECT entity, {EMBED} AS e FROM entities ORDER BY entity")
            write(out, "entities_result.arrow", cursor.fetch_arrow_table())
            # Another connection's session does not see them (below, while this one is open).
            with connect(uri, **bearer) as other, other.cursor() as elsewhere:
                outcomes["other_session"] = error_of(lambda: elsewhere.execute("SELECT * FROM entities"))

    # A wrong token.
    def wrong_token():
        with connect(uri, **{"adbc.flight.sql.authorization_header": "Bearer not-a-token"}) as conn:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchall()
    outcomes["wrong_token"] = error_of(wrong_token)

    # DoExchange with pyarrow.flight: Basic handshake for the bearer header, then
    # batches of 128 rows in, the enriched batches out.
    sent = entities(1000, 1000).append_column("id", pa.array(range(1000), pa.int64()))
    write(out, "exchange_input.arrow", sent)
    try:
        client = flight.FlightClient(uri)
        header = client.authenticate_basic_token(b"python-test", token.encode())
        options = flight.FlightCallOptions(headers=[header])
        sql = f"SELECT id, entity, {EMBED} AS e FROM input"
        writer, reader = client.do_exchange(flight.FlightDescriptor.for_command(sql), options=options)
        with writer:
            writer.begin(sent.schema)
            for batch in sent.to_batches(max_chunksize=128):
                writer.write_batch(batch)
            writer.done_writing()
            write(out, "exchange.arrow", reader.read_all())
        client.close()
    except pa.ArrowException as error:
        outcomes["exchange_error"] = {"type": type(error).__name__, "message": str(error)}

    with open(os.path.join(out, "outcomes.json"), "w") as f:
        json.dump(outcomes, f, indent=1)
    print(f"serve_adbc.py: pyarrow {pa.__version__}, wrote {len(os.listdir(out))} files to {out}")


if __name__ == "__main__":
    sys.exit(main())
