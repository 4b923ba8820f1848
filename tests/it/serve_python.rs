//! `tabssl serve` as a Python user reaches it: the `tabssl` binary on 127.0.0.1:0 and
//! tests/python/serve_adbc.py driving it with the ADBC Flight SQL driver and pyarrow.flight.
//! Every result the script writes must equal the same SQL run locally (embeddings within
//! 1e-6), the calls that must fail fail with the documented errors, and SIGTERM stops the
//! server cleanly.
//!
//! The Python packages (pinned below) are installed with `python3 -m pip install --target`
//! into a folder under Cargo's target tmp dir on first use and reused after that; with no
//! `python3`, no pip or no package registry the test fails and says so.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::common::{context, fixture_models, output_row, repo, run};

/// What `pip install` gets: versions with wheels for CPython 3.9–3.13 on Linux x86_64.
const PACKAGES: [&str; 3] = [
    "adbc-driver-flightsql==1.13.0",
    "adbc-driver-manager==1.13.0",
    "pyarrow==26.0.1",
];
const TOKEN: &str = "py-t0ken-for-tests";
const PEOPLE: &str = "CREATE VIEW people AS SELECT * FROM tabssl_synthetic(2000, 5)";
const EMBED: &str = "embed('percol', age, \"education-num\", workclass, sex)";
/// The longest the Python client may take (it needs a few seconds; CI machines are slow).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn a_python_adbc_client_gets_the_local_results() {
    let packages = python_packages();
    let dir = tempfile::tempdir().expect("tempdir");
    let init = dir.path().join("init.sql");
    std::fs::write(&init, format!("{PEOPLE};\n")).expect("writes init.sql");
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, format!("{TOKEN}\n")).expect("writes tokens");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("creates out");

    let mut server = Server::start(&[
        "--models",
        &fixture_models().display().to_string(),
        "--sql-file",
        &init.display().to_string(),
        "--token-file",
        &tokens.display().to_string(),
    ]);
    let started = Instant::now();
    let script = run_python(
        &packages,
        &[
            &repo().join("tests/python/serve_adbc.py").display().to_string(),
            "--address",
            &server.address,
            "--token-file",
            &tokens.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
    );
    assert!(
        script.status.success(),
        "tests/python/serve_adbc.py failed ({}):\n{}\n{}\nserver stderr:\n{}",
        script.status,
        String::from_utf8_lossy(&script.stdout),
        String::from_utf8_lossy(&script.stderr),
        server.stderr()
    );
    eprintln!("serve_adbc.py ran in {:.1} s", started.elapsed().as_secs_f64());
    server.stop();

    let outcomes: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("outcomes.json")).expect("outcomes.json"))
            .expect("outcomes.json is JSON");
    check_outcomes(&outcomes);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ctx = context(&fixture_models());
        run(&ctx, PEOPLE).await;
        register(&ctx, "entities", &read_ipc(&out.join("entities.arrow")));
        register(&ctx, "input", &read_ipc(&out.join("exchange_input.arrow")));

        let sql = format!("SELECT id, age, workclass, {EMBED} AS e FROM people WHERE id < 700 ORDER BY id");
        assert_same(
            &read_ipc(&out.join("query.arrow")),
            &local(&ctx, &sql).await,
            "statement",
        );

        let by_id = |id: i64| format!("SELECT id, age, {EMBED} AS e FROM people WHERE id = {id}");
        assert_same(
            &read_ipc(&out.join("param_one.arrow")),
            &local(&ctx, &by_id(5)).await,
            "one parameter",
        );
        assert_same(
            &read_ipc(&out.join("qmark.arrow")),
            &local(&ctx, &by_id(5)).await,
            "`?` placeholders",
        );
        let mut expected = Vec::new();
        for id in [7, 3, 1999, 3] {
            expected.push(local(&ctx, &by_id(id)).await);
        }
        let expected = concat_batches(&expected[0].schema(), &expected).expect("concat");
        assert_same(
            &read_ipc(&out.join("param_rows.arrow")),
            &expected,
            "a batch of parameter rows",
        );

        let sql = format!("SELECT entity, {EMBED} AS e FROM entities ORDER BY entity");
        let ingested = read_ipc(&out.join("entities_result.arrow"));
        assert_same(&ingested, &local(&ctx, &sql).await, "ingested table");
        assert_eq!(ingested.num_rows(), 360, "both ingests are in the table");
        assert!(ingested.column(1).null_count() > 0, "NULL ages give NULL embeddings");

        for (user, outcome) in outcomes["handshake"].as_object().expect("handshake outcomes") {
            assert_eq!(
                outcome, "[(1,)]",
                "the ADBC username/password handshake as user {user:?} (unpadded base64 of user:token)"
            );
        }
        assert!(
            outcomes.get("exchange_error").is_none(),
            "DoExchange from pyarrow.flight failed: {}",
            outcomes["exchange_error"]["message"]
        );
        // DoExchange keeps the input's order: the ids went out as 0..1000.
        let exchanged = read_ipc(&out.join("exchange.arrow"));
        let ids: Vec<i64> = exchanged
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec();
        assert_eq!(
            ids,
            (0..1000).collect::<Vec<i64>>(),
            "DoExchange returns every row once, in order"
        );
        let sql = format!("SELECT id, entity, {EMBED} AS e FROM input ORDER BY id");
        assert_same(&exchanged, &local(&ctx, &sql).await, "DoExchange");
    });
}

/// The calls that must fail failed with the documented errors; the rest of the outcomes.
fn check_outcomes(outcomes: &serde_json::Value) {
    let message = |key: &str| {
        outcomes[key]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("outcomes.json has no {key}: {outcomes:#}"))
            .to_string()
    };
    assert_eq!(outcomes["info"]["vendor_name"], "tabssl", "{outcomes:#}");
    assert_eq!(
        outcomes["ingested"],
        serde_json::json!([300, 60]),
        "rows ingested (create, append)"
    );
    let drop = message("drop_view");
    assert!(
        drop.contains("PermissionDenied") && drop.contains("--sql-file"),
        "DROP VIEW is refused and points at --sql-file: {drop}"
    );
    let wrong = message("wrong_token");
    assert!(wrong.contains("Unauthenticated"), "a wrong token is refused: {wrong}");
    assert!(
        !wrong.contains("not-a-token"),
        "the refusal does not echo the token: {wrong}"
    );
    let other = message("other_session");
    assert!(
        other.contains("entities") && other.contains("not found"),
        "another connection does not see the ingested table: {other}"
    );
}

/// The folder holding the pinned packages, installed on first use. Panics (the test fails)
/// when they cannot be installed.
fn python_packages() -> PathBuf {
    let version = python(&["-c", "import sys; print('%d.%d' % sys.version_info[:2])"], None);
    assert!(
        version.status.success(),
        "python3 is needed for this test (README: the Rust toolchain and python3 with pip): {}",
        String::from_utf8_lossy(&version.stderr)
    );
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let name = format!("python{version}-{}", PACKAGES.join("-").replace("==", "-"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let imports = "import adbc_driver_flightsql.dbapi, pyarrow.flight";
    if dir.is_dir() && python(&["-c", imports], Some(&dir)).status.success() {
        return dir;
    }
    // Install into a fresh folder and rename it when complete: an interrupted install
    // never looks like a finished one.
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let started = Instant::now();
    let mut args = vec![
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
    ];
    let target = partial.display().to_string();
    args.extend(["--target", &target]);
    args.extend(PACKAGES);
    let install = python(&args, None);
    assert!(
        install.status.success(),
        "could not install the test's Python packages ({}) with `python3 {}`; this test needs python3 \
         with pip and access to the package registry:\n{}{}",
        PACKAGES.join(", "),
        args.join(" "),
        String::from_utf8_lossy(&install.stdout),
        String::from_utf8_lossy(&install.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&partial, &dir).expect("renames the package folder");
    let check = python(&["-c", imports], Some(&dir));
    assert!(
        check.status.success(),
        "the installed packages do not import: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    eprintln!(
        "installed {} in {:.0} s",
        PACKAGES.join(", "),
        started.elapsed().as_secs_f64()
    );
    dir
}

/// `python3 -s ARGS`, with `packages` on its path.
fn python(args: &[&str], packages: Option<&Path>) -> Output {
    let mut command = Command::new("python3");
    command.arg("-s").args(args).current_dir(repo()).stdin(Stdio::null());
    if let Some(packages) = packages {
        command.env("PYTHONPATH", packages);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for this test and did not start: {e}"))
}

/// Runs a Python script with the packages, killing it after [`SCRIPT_TIMEOUT`].
fn run_python(packages: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("python3")
        .arg("-s")
        .args(args)
        .env("PYTHONPATH", packages)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 did not start: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the Python client ran past {SCRIPT_TIMEOUT:?}:\n{}",
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout thread"),
        stderr: stderr.join().expect("stderr thread"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// `tabssl serve` on a free loopback port; killed when dropped unless stopped.
struct Server {
    child: Child,
    address: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tabssl"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tabssl serve starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (found, address) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let lines = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("tabssl serve: Flight SQL on ") {
                    let _ = found.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
                let mut all = lines.lock().expect("lock");
                all.push_str(&line);
                all.push('\n');
            }
        });
        let mut server = Self {
            child,
            address: String::new(),
            stderr,
        };
        match address.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => server.address = address,
            Err(_) => panic!("tabssl serve printed no address within 60 s:\n{}", server.stderr()),
        }
        server
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// SIGTERM, then a clean exit within 30 s.
    fn stop(&mut self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waits") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "tabssl serve did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread has the last lines once the pipe closes.
        std::thread::sleep(Duration::from_millis(100));
        let stderr = self.stderr();
        assert!(status.success(), "SIGTERM is a clean stop: {status}\n{stderr}");
        assert!(stderr.contains("tabssl serve: stopped"), "no stop line:\n{stderr}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_ipc(path: &Path) -> RecordBatch {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = arrow::ipc::reader::FileReader::try_new(file, None).expect("an Arrow IPC file");
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("batches");
    concat_batches(&schema, &batches).expect("concat")
}

fn register(ctx: &SessionContext, name: &str, batch: &RecordBatch) {
    let table = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).expect("table");
    ctx.register_table(name, Arc::new(table)).expect("registers");
}

async fn local(ctx: &SessionContext, sql: &str) -> RecordBatch {
    let batches = run(ctx, sql).await;
    let schema = ctx.sql(sql).await.expect("plans").schema().as_arrow().clone();
    concat_batches(&Arc::new(schema), &batches).expect("concat")
}

/// Same column names and types; embeddings within 1e-6 (relative above 1), the rest equal.
fn assert_same(actual: &RecordBatch, expected: &RecordBatch, what: &str) {
    let fields = |batch: &RecordBatch| -> Vec<(String, DataType)> {
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    assert_eq!(fields(actual), fields(expected), "{what}: columns");
    assert_eq!(actual.num_rows(), expected.num_rows(), "{what}: rows");
    for (index, (a, e)) in actual.columns().iter().zip(expected.columns()).enumerate() {
        if matches!(e.data_type(), DataType::FixedSizeList(_, _)) {
            assert_close_rows(a, e, &format!("{what}: column {index}"));
        } else {
            assert_eq!(a.as_ref(), e.as_ref(), "{what}: column {index}");
        }
    }
}

fn assert_close_rows(actual: &ArrayRef, expected: &ArrayRef, what: &str) {
    for row in 0..expected.len() {
        match (output_row(actual.as_ref(), row), output_row(expected.as_ref(), row)) {
            (Some(got), Some(want)) => {
                assert_eq!(got.len(), want.len(), "{what} row {row}: width");
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{what} row {row}: {g} vs {w}");
                }
            }
            (got, want) => assert_eq!(got.is_some(), want.is_some(), "{what} row {row}: NULL"),
        }
    }
}
