//! The README's examples run: every `curl` line of its serving example
//! against a real server (its address put in for 127.0.0.1:50051), and its
//! Python client is the file `.ci/run` runs (docs/examples/score.py).

#[allow(dead_code)] // shared by the service tests, each using a part of it
mod common_service;

use std::path::Path;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The fenced block of kind `lang` that follows the first line containing
/// `marker`.
fn block_after(text: &str, marker: &str, lang: &str) -> String {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in the README"));
    let rest = &text[at..];
    let open = format!("```{lang}\n");
    let start = rest.find(&open).unwrap() + open.len();
    let end = rest[start..].find("```").unwrap();
    rest[start..start + end].to_string()
}

#[test]
fn the_python_example_in_the_readme_is_the_file_ci_runs() {
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/score.py"),
    )
    .unwrap();
    let shown = block_after(&readme(), "**gRPC from Python.**", "python");
    assert_eq!(
        shown, file,
        "README's Python block differs from docs/examples/score.py"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_curl_examples_run() {
    let block = block_after(&readme(), "tests/examples.rs", "sh");
    let lines: Vec<&str> = block.lines().filter(|l| l.starts_with("curl ")).collect();
    assert!(lines.len() >= 7, "{block}");
    if Command::new("curl").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "curl is missing");
        eprintln!("SKIPPED: the README's curl examples DID NOT RUN: curl is not installed");
        return;
    }
    let server = common_service::start(|_, _| {}).await;
    let addr = server.addr;
    for line in lines {
        let command = line.replace("127.0.0.1:50051", &addr.to_string());
        let out = tokio::task::spawn_blocking(move || {
            Command::new("sh")
                .arg("-c")
                .arg(format!("{command} -w '\\n%{{http_code}}'"))
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", ""));
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(code, "200", "{line}: {body}");
        if !line.ends_with("/metrics") {
            let json: serde_json::Value = serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("{line}: not JSON ({e}): {body}"));
            assert!(json.is_object(), "{line}: {body}");
        }
    }
    server.stop().await;
}
