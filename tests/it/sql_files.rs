//! Every example in sql/ runs through the CLI, as the README shows.

use std::process::Command;

use crate::common::repo;

#[test]
fn every_sql_example_runs() {
    let mut files: Vec<_> = std::fs::read_dir(repo().join("sql"))
        .expect("sql/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let output = Command::new(env!("CARGO_BIN_EXE_tabssl"))
            .args(["sql", "-f"])
            .arg(&file)
            .args(["--format", "csv"])
            .current_dir(repo())
            .output()
            .expect("tabssl runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{} failed:\n{}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.lines().count() > 1, "{} printed no rows", file.display());
    }
}
