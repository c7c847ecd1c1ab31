//! README's control-API walkthrough, run exactly as written (bash, curl, jq) against the real
//! server, on SQLite and on PostgreSQL; and schemathesis against `/openapi.json`.

mod common;

use common::fixtures;
use common::server::{binary, Db, Server};
use std::process::Command;

/// The bash block between README's `readme-test` markers.
fn walkthrough() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- readme-test:begin -->")
        .expect("begin marker");
    let end = readme.find("<!-- readme-test:end -->").expect("end marker");
    let block = &readme[start..end];
    let code = block
        .split_once("```bash\n")
        .expect("a bash block")
        .1
        .rsplit_once("```")
        .expect("its end")
        .0;
    code.to_string()
}

async fn run_walkthrough(db: Db) {
    let s = Server::start(db, &[]).await;
    std::fs::copy(
        fixtures().join("formats/flac_16bit_44k_stereo.flac"),
        s.dir.join("track.flac"),
    )
    .unwrap();
    let bin_dir = binary().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &walkthrough()])
        .current_dir(&s.dir)
        .env("VEZA", &s.url)
        .env("PATH", path)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "README walkthrough failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    // What the comments in the block promise.
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.contains(&"[2,2]"), "{stdout}");
    assert!(lines.contains(&"upload-offset: 100000"), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("veza-track: /v1/tracks/")),
        "{stdout}"
    );
    assert!(lines.contains(&"202"), "{stdout}");
    assert_eq!(lines.last(), Some(&"3.1.0"), "{stdout}");
}

#[tokio::test]
async fn readme_walkthrough_runs_sqlite() {
    run_walkthrough(Db::Sqlite).await;
}

#[tokio::test]
async fn readme_walkthrough_runs_postgres() {
    run_walkthrough(Db::Postgres).await;
}

/// Schemathesis generates requests for every operation of `/openapi.json` (examples, boundary
/// values, then random ones; 30 per operation, deterministic) as an admin, and checks that no
/// answer is a 5xx, and that every status, content type and body is what the document declares.
async fn schemathesis(db: Db) {
    // The rate limits have their own test; here they would only turn the fuzzing into 429s.
    let s = Server::start(
        db,
        &[
            ("VEZA_LIMITS__PER_SUBJECT_PER_MINUTE", "0"),
            ("VEZA_LIMITS__PER_IP_PER_MINUTE", "0"),
        ],
    )
    .await;
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api");
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new("schemathesis")
        .args([
            "run",
            &format!("{}/openapi.json", s.url),
            "-H",
            &format!("Authorization: Bearer {}", s.key),
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "30",
            "--generation-deterministic",
            "--suppress-health-check",
            "filter_too_much",
        ])
        // Its example cache goes to a scratch directory, not into the tree.
        .current_dir(scratch.path())
        .env("PYTHONPATH", hooks)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis (pip install schemathesis)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Tested: 68"), "{stdout}");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[tokio::test]
async fn schemathesis_finds_no_server_errors_or_schema_violations_sqlite() {
    schemathesis(Db::Sqlite).await;
}

#[tokio::test]
async fn schemathesis_finds_no_server_errors_or_schema_violations_postgres() {
    schemathesis(Db::Postgres).await;
}
