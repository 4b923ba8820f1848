//! `tabssl worker` processes on loopback serve `tabssl sql --workers` and
//! `tabssl export --workers`; a worker killed mid-export fails the export with its name and
//! leaves no output file, and the rerun on the other workers writes the single-process file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::harness::{models_dir, write_adult_parquet};

/// A `tabssl worker` child process and the lines of its stderr.
struct WorkerProcess {
    child: Child,
    address: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl WorkerProcess {
    fn start(models: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tabssl"))
            .args(["worker", "--listen", "127.0.0.1:0", "--models"])
            .arg(models)
            .env("RUST_LOG", "warn,tabssl::worker=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts tabssl worker");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().expect("log").push(line);
            }
        });
        let started = Instant::now();
        let address = loop {
            let found = log.lock().expect("log").iter().find_map(|line| {
                line.split("listening on http://")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_string)
            });
            if let Some(address) = found {
                break address;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the worker did not start: {:?}",
                log.lock()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self { child, address, log }
    }

    fn tasks(&self) -> usize {
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter(|l| l.contains("task "))
            .count()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tabssl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args(args)
        .env_remove("TABSSL_WORKERS")
        .output()
        .expect("runs tabssl")
}

fn succeed(output: Output) -> String {
    assert!(
        output.status.success(),
        "tabssl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// `n, s` of the CSV answer.
fn count_and_sum(csv: &str) -> (u64, f64) {
    let row = csv.lines().nth(1).expect("a row");
    let (n, s) = row.split_once(',').expect("two columns");
    (n.parse().expect("count"), s.parse().expect("sum"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_run_sql_and_exports_and_a_killed_one_fails_the_query_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = models_dir(dir.path());
    let table = write_adult_parquet(dir.path()).await;
    let mut workers: Vec<WorkerProcess> = (0..3).map(|_| WorkerProcess::start(&models)).collect();
    let all = workers.iter().map(|w| w.address.clone()).collect::<Vec<_>>().join(",");
    let models_arg = models.display().to_string();
    let create = format!(
        "CREATE EXTERNAL TABLE adult STORED AS PARQUET LOCATION '{}/'",
        table.display()
    );
    let query = "SELECT count(*) AS n, sum(CAST(array_max(embed('adult_vime', age, workclass, fnlwgt, education, \
                 \"education-num\", \"marital-status\", occupation, relationship, race, sex, \"capital-gain\", \
                 \"capital-loss\", \"hours-per-week\", \"native-country\")) AS DOUBLE)) AS s FROM adult";
    let split = "SET distributed.file_scan_config_bytes_per_partition = 100000";
    let sql = |workers: Option<&str>| {
        let mut args = vec![
            "sql",
            "--models",
            &models_arg,
            "--format",
            "csv",
            "-c",
            &create,
            "-c",
            query,
        ];
        if let Some(list) = workers {
            args.splice(1..1, ["--workers", list, "-c", split]);
        }
        succeed(tabssl(&args))
    };
    let (local_n, local_s) = count_and_sum(&sql(None));
    let (n, s) = count_and_sum(&sql(Some(&all)));
    assert_eq!(n, local_n);
    assert_eq!(n, 32_561);
    assert!((s - local_s).abs() <= 1e-6 * local_s.abs().max(1.0), "{s} vs {local_s}");
    let busy = workers.iter().filter(|w| w.tasks() > 0).count();
    assert!(busy >= 2, "tasks ran on {busy} of 3 worker processes");

    // An export over a table large enough to still be running when a worker dies.
    let input = table.display().to_string();
    let single = dir.path().join("single.parquet");
    let export_args = |output: &Path| {
        vec![
            "export".to_string(),
            "--input".into(),
            input.clone(),
            "--key".into(),
            "id".into(),
            "--keep".into(),
            "class".into(),
            "--views".into(),
            "40".into(),
            "--output".into(),
            output.display().to_string(),
        ]
    };
    let args = export_args(&single);
    succeed(tabssl(&args.iter().map(String::as_str).collect::<Vec<_>>()));

    let output = dir.path().join("distributed.parquet");
    let tasks_before: Vec<usize> = workers.iter().map(WorkerProcess::tasks).collect();
    let mut export = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args(export_args(&output))
        .args(["--workers", &all])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("starts the export");
    // The victim: the first worker that starts a task of this export.
    let started = Instant::now();
    let victim = loop {
        if let Some(busy) = (0..workers.len()).find(|&i| workers[i].tasks() > tasks_before[i]) {
            break busy;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no worker got a task");
        assert!(
            export.try_wait().expect("polls").is_none(),
            "the export ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    workers[victim].child.kill().expect("kills the worker");
    let killed = Instant::now();
    let status = loop {
        if let Some(status) = export.try_wait().expect("polls") {
            break status;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "the export hangs after the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut export.stderr.take().expect("stderr"), &mut stderr).expect("reads");
    assert!(!status.success(), "the export survived a dead worker: {stderr}");
    assert!(
        stderr.contains(&workers[victim].address),
        "the error names the dead worker: {stderr}"
    );
    assert!(!output.exists(), "no file under the final name");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("lists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("distributed") || name.starts_with(".distributed"))
        .collect();
    // The first pass's marginal sample is committed (whole) before the second pass reads it.
    assert!(
        leftovers.iter().all(|name| name == "distributed.marginals.parquet"),
        "temporary files removed: {leftovers:?}"
    );

    // The rerun on the two live workers writes the single-process file.
    drop(workers.remove(victim));
    let live = workers.iter().map(|w| w.address.clone()).collect::<Vec<_>>().join(",");
    let args = export_args(&output);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--workers", &live]);
    succeed(tabssl(&args));
    assert!(
        std::fs::read(&single).expect("reads") == std::fs::read(&output).expect("reads"),
        "the distributed export differs from the single-process one"
    );
}
