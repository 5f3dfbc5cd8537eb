//! The container and Kubernetes files agree with the binary: every flag
//! the Dockerfile and deploy/*.yaml pass to `slant serve` and `slant score`
//! exists in that command's `--help`, every SLANT_* variable they set is
//! one `slant serve` reads, and the manifests have the structure they are
//! meant to have (read with yaml-rust2, a maintained pure-Rust YAML 1.2
//! parser, into (path, value) entries).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn help(command: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_slant"))
        .args([command, "--help"])
        .output()
        .expect("run slant");
    assert!(
        out.status.success(),
        "slant {command} --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The long flags (`--name`) a `--help` output lists.
fn help_flags(help: &str) -> BTreeSet<String> {
    flags(help.split_whitespace().map(|w| {
        w.trim_matches(|c: char| c == ',' || c == '[' || c == ']')
            .split('<')
            .next()
            .unwrap()
    }))
}

/// The `--name` flags among `words` (`--name=value` gives `--name`).
fn flags<'a>(words: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    words
        .into_iter()
        .filter(|w| {
            w.len() > 2
                && w.starts_with("--")
                && w[2..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '=')
        })
        .filter_map(|w| w.split('=').next().map(str::to_string))
        .collect()
}

fn assert_flags_exist(used: &BTreeSet<String>, known: &BTreeSet<String>, what: &str) {
    let missing: Vec<&String> = used.difference(known).collect();
    assert!(
        missing.is_empty(),
        "{what} passes flags that `slant` does not have: {missing:?} (it has {known:?})"
    );
}

// ---------------------------------------------------------------------
// Manifests as (path, value) entries.

#[derive(Debug, Clone)]
struct Entry {
    /// Mapping keys from the document root (sequence items add nothing).
    path: Vec<String>,
    /// Scalar value ("" for a key that opens a nested block).
    value: String,
}

/// A scalar's text as written (numbers and booleans in their YAML form).
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

/// Every key and scalar under `y`, depth first, as [`Entry`]s.
fn flatten(name: &str, y: &Yaml, path: &mut Vec<String>, out: &mut Vec<Entry>) {
    match y {
        Yaml::Hash(map) => {
            for (k, v) in map {
                let key = scalar(k).unwrap_or_else(|| panic!("{name}: a non-scalar key {k:?}"));
                path.push(key);
                match scalar(v) {
                    Some(value) => out.push(Entry {
                        path: path.clone(),
                        value,
                    }),
                    None => {
                        out.push(Entry {
                            path: path.clone(),
                            value: String::new(),
                        });
                        flatten(name, v, path, out);
                    }
                }
                path.pop();
            }
        }
        Yaml::Array(items) => {
            for item in items {
                match scalar(item) {
                    Some(value) => out.push(Entry {
                        path: path.clone(),
                        value,
                    }),
                    None => flatten(name, item, path, out),
                }
            }
        }
        other => panic!("{name}: unexpected YAML {other:?}"),
    }
}

/// The documents of a YAML file, each as its entries.
fn parse_yaml(name: &str, text: &str) -> Vec<Vec<Entry>> {
    let docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    docs.iter()
        .map(|d| {
            let mut out = Vec::new();
            flatten(name, d, &mut Vec::new(), &mut out);
            out
        })
        .filter(|d| !d.is_empty())
        .collect()
}

/// One manifest: a single YAML document.
struct Doc {
    name: String,
    entries: Vec<Entry>,
}

impl Doc {
    fn load(rel: &str) -> Self {
        let mut docs = parse_yaml(rel, &read(rel));
        assert_eq!(docs.len(), 1, "{rel}: expected one YAML document");
        Doc {
            name: rel.to_string(),
            entries: docs.pop().unwrap(),
        }
    }

    /// Every scalar value at `path` (keys separated by spaces; keys that
    /// open a nested block have none).
    fn all(&self, path: &str) -> Vec<&str> {
        let want: Vec<&str> = path.split(' ').collect();
        self.entries
            .iter()
            .filter(|e| e.path.iter().map(String::as_str).eq(want.iter().copied()))
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The one value at `path`.
    fn get(&self, path: &str) -> &str {
        match self.all(path).as_slice() {
            [v] => v,
            other => panic!("{}: {path:?} has {} values", self.name, other.len()),
        }
    }

    fn has(&self, path: &str) -> bool {
        !self.all(path).is_empty()
    }

    fn num(&self, path: &str) -> u64 {
        let v = self.get(path);
        v.parse()
            .unwrap_or_else(|_| panic!("{}: {path} = {v:?} is not a number", self.name))
    }
}

/// `20s` / `500ms` / `1m` in seconds, rounded up.
fn seconds(v: &str) -> u64 {
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().unwrap_or_else(|_| panic!("duration {v:?}"));
    match &v[digits.len()..] {
        "ms" => n.div_ceil(1000),
        "s" | "" => n,
        "m" => n * 60,
        unit => panic!("duration unit {unit:?} in {v:?}"),
    }
}

/// The value after `flag` in an argument list (`--flag value` or `--flag=value`).
fn flag_value<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if *a == flag {
            args.get(i + 1).copied()
        } else {
            a.strip_prefix(flag).and_then(|r| r.strip_prefix('='))
        }
    })
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

// ---------------------------------------------------------------------
// Dockerfile

/// The Dockerfile's instructions (continuation lines joined, comments
/// dropped) as (instruction, arguments).
fn dockerfile() -> Vec<(String, String)> {
    let text = read("Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                let (ins, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((ins.to_ascii_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

/// The strings of an exec-form (JSON array) instruction.
fn exec_form(args: &str) -> Vec<String> {
    let args = args.trim();
    assert!(
        args.starts_with('[') && args.ends_with(']'),
        "not exec form: {args}"
    );
    args[1..args.len() - 1]
        .split(',')
        .map(|s| {
            let s = s.trim();
            assert!(
                s.len() >= 2 && s.starts_with('"') && s.ends_with('"'),
                "{s:?}"
            );
            s[1..s.len() - 1].to_string()
        })
        .collect()
}

fn instruction<'a>(ins: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    ins.iter()
        .filter(|(i, _)| i == name)
        .map(|(_, a)| a.as_str())
        .collect()
}

#[test]
fn dockerfile_serves_with_existing_flags_as_non_root() {
    let ins = dockerfile();
    let from = instruction(&ins, "FROM");
    assert!(from.len() >= 2, "multi-stage: {from:?}");
    assert!(
        from[0].starts_with("rust:1") && from[0].ends_with(" AS build"),
        "builder {:?}",
        from[0]
    );
    let runs = instruction(&ins, "RUN").join("\n");
    assert!(
        runs.contains("cargo build --release --locked"),
        "the builder runs cargo build --release --locked"
    );

    let entry = exec_form(instruction(&ins, "ENTRYPOINT")[0]);
    assert_eq!(entry, ["slant", "serve"]);
    let cmd = exec_form(instruction(&ins, "CMD")[0]);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    assert_flags_exist(
        &flags(cmd.iter().copied()),
        &help_flags(&help("serve")),
        "Dockerfile CMD",
    );
    assert_eq!(flag_value(&cmd, "--addr"), Some("0.0.0.0:50051"));
    let model = flag_value(&cmd, "--model").expect("--model in CMD");
    assert_eq!(model, "/models/default.slant");
    let copies = instruction(&ins, "COPY");
    assert!(
        copies.contains(&"models/default.slant /models/default.slant"),
        "the default model is copied to {model}: {copies:?}"
    );
    let metrics = flag_value(&cmd, "--metrics-addr").expect("--metrics-addr");

    let exposed: BTreeSet<&str> = instruction(&ins, "EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .collect();
    assert!(exposed.contains("50051") && exposed.contains(port(metrics)));

    let users = instruction(&ins, "USER");
    let user = users.last().expect("a USER instruction");
    assert!(
        !matches!(user.split(':').next(), Some("root" | "0")),
        "runs as {user}"
    );
    let health = instruction(&ins, "HEALTHCHECK");
    assert!(
        health.len() == 1 && health[0].contains("CMD"),
        "one HEALTHCHECK: {health:?}"
    );
    // The probe binary it runs is copied into the runtime image.
    let probe = health[0]
        .split('"')
        .nth(1)
        .expect("HEALTHCHECK CMD in exec form");
    assert!(
        copies.iter().any(|c| c.ends_with(&format!("/{probe}"))),
        "{probe} is not copied into the image"
    );
    for (name, args) in &ins {
        if name == "ENV" {
            check_env_names(
                args.split_whitespace()
                    .filter_map(|kv| kv.split('=').next()),
            );
        }
    }
}

#[test]
fn dockerignore_keeps_build_outputs_and_git_out() {
    let ignore = read(".dockerignore");
    let lines: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for want in ["target/", ".git/"] {
        assert!(lines.contains(want), ".dockerignore lacks {want}");
    }
    assert!(lines.contains("fuzz/") || lines.contains("fuzz/target/"));
    // What the build copies must not be ignored.
    for needed in ["src/", "proto/", "models/", "Cargo.lock"] {
        assert!(!lines.contains(needed), ".dockerignore drops {needed}");
    }
}

/// Every SLANT_* name is an environment variable `slant serve` reads.
fn check_env_names<'a>(names: impl IntoIterator<Item = &'a str>) {
    let help = help("serve");
    for name in names.into_iter().filter(|n| n.starts_with("SLANT_")) {
        assert!(
            help.contains(&format!("[env: {name}=")),
            "{name} is not a `slant serve` variable"
        );
    }
}

// ---------------------------------------------------------------------
// Kubernetes

#[test]
fn every_manifest_is_yaml_with_api_version_and_kind() {
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("deploy")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let rel = format!("deploy/{}", path.file_name().unwrap().to_str().unwrap());
        let doc = Doc::load(&rel);
        assert!(!doc.get("apiVersion").is_empty(), "{rel}: apiVersion");
        assert!(!doc.get("kind").is_empty(), "{rel}: kind");
        seen += 1;
    }
    assert!(seen >= 6, "deploy/ has {seen} manifests");
}

#[test]
fn deployment_probes_resources_security_and_flags() {
    let d = Doc::load("deploy/deployment.yaml");
    assert_eq!(d.get("apiVersion"), "apps/v1");
    assert_eq!(d.get("kind"), "Deployment");
    let c = "spec template spec containers";
    assert_eq!(d.all(&format!("{c} name")).len(), 1, "one container");

    let args = d.all(&format!("{c} args"));
    assert_flags_exist(
        &flags(args.iter().copied()),
        &help_flags(&help("serve")),
        "deploy/deployment.yaml",
    );
    check_env_names(d.all(&format!("{c} env name")));

    let grpc = port(flag_value(&args, "--addr").expect("--addr")).to_string();
    let metrics = port(flag_value(&args, "--metrics-addr").expect("--metrics-addr")).to_string();
    let ports = d.all(&format!("{c} ports containerPort"));
    assert!(ports.contains(&grpc.as_str()) && ports.contains(&metrics.as_str()));
    // Native gRPC probes on the serving port.
    assert_eq!(d.get(&format!("{c} livenessProbe grpc port")), grpc);
    assert_eq!(d.get(&format!("{c} readinessProbe grpc port")), grpc);
    assert_eq!(
        d.get(&format!("{c} readinessProbe grpc service")),
        "slant.v1.Scorer"
    );

    // The kubelet waits longer than the preStop sleep plus the drain.
    let drain = seconds(flag_value(&args, "--drain-timeout").expect("--drain-timeout"));
    let pre_stop = d
        .all(&format!("{c} lifecycle preStop sleep seconds"))
        .first()
        .map_or(0, |s| s.parse::<u64>().unwrap());
    let grace = d.num("spec template spec terminationGracePeriodSeconds");
    assert!(
        grace > pre_stop + drain,
        "terminationGracePeriodSeconds {grace} <= preStop {pre_stop} + drain {drain}"
    );

    for r in [
        "requests cpu",
        "requests memory",
        "limits cpu",
        "limits memory",
    ] {
        assert!(d.has(&format!("{c} resources {r}")), "resources {r}");
    }
    assert_eq!(
        d.get("spec template spec securityContext runAsNonRoot"),
        "true"
    );
    assert_eq!(
        d.get(&format!("{c} securityContext readOnlyRootFilesystem")),
        "true"
    );
    assert_eq!(
        d.get(&format!("{c} securityContext allowPrivilegeEscalation")),
        "false"
    );
    let labels = d.get("spec template metadata labels app.kubernetes.io/name");
    assert_eq!(
        d.get("spec selector matchLabels app.kubernetes.io/name"),
        labels
    );
}

#[test]
fn headless_service_hpa_and_pdb_select_the_deployment() {
    let d = Doc::load("deploy/deployment.yaml");
    let name = d.get("metadata name");
    let labels = d.get("spec template metadata labels app.kubernetes.io/name");

    let s = Doc::load("deploy/service-headless.yaml");
    assert_eq!(s.get("kind"), "Service");
    assert_eq!(s.get("spec clusterIP"), "None", "headless");
    assert_eq!(s.get("spec selector app.kubernetes.io/name"), labels);
    assert!(s.all("spec ports targetPort").contains(&"grpc"));
    assert!(d
        .all("spec template spec containers ports name")
        .contains(&"grpc"));

    let h = Doc::load("deploy/hpa.yaml");
    assert_eq!(h.get("apiVersion"), "autoscaling/v2");
    assert_eq!(h.get("kind"), "HorizontalPodAutoscaler");
    assert_eq!(h.get("spec scaleTargetRef kind"), "Deployment");
    assert_eq!(h.get("spec scaleTargetRef name"), name);
    assert_eq!(h.get("spec metrics resource name"), "cpu");
    assert!(
        h.num("spec minReplicas") >= 2 && h.num("spec maxReplicas") > h.num("spec minReplicas")
    );

    let p = Doc::load("deploy/pdb.yaml");
    assert_eq!(p.get("apiVersion"), "policy/v1");
    assert_eq!(p.get("kind"), "PodDisruptionBudget");
    assert_eq!(
        p.get("spec selector matchLabels app.kubernetes.io/name"),
        labels
    );
    // It must leave room to evict: fewer pods required than the minimum.
    if p.has("spec minAvailable") {
        assert!(p.num("spec minAvailable") < h.num("spec minReplicas"));
    } else {
        assert!(p.num("spec maxUnavailable") >= 1);
    }
}

#[test]
fn indexed_job_shards_with_existing_score_flags() {
    let j = Doc::load("deploy/job-score-corpus.yaml");
    assert_eq!(j.get("apiVersion"), "batch/v1");
    assert_eq!(j.get("kind"), "Job");
    assert_eq!(j.get("spec completionMode"), "Indexed");
    let completions = j.num("spec completions");
    assert!(completions > 1 && j.num("spec parallelism") >= 1);
    let c = "spec template spec containers";
    let env_names = j.all(&format!("{c} env name"));
    let env_values = j.all(&format!("{c} env value"));
    let shards = env_names
        .iter()
        .position(|n| *n == "SHARDS")
        .map(|i| env_values[i])
        .expect("SHARDS env");
    assert_eq!(
        shards,
        completions.to_string(),
        "SHARDS must equal completions"
    );
    let script = j.all(&format!("{c} args")).join("\n");
    assert!(script.contains("$JOB_COMPLETION_INDEX") && script.contains("$SHARDS"));
    let score_lines: Vec<&str> = script
        .lines()
        .filter(|l| l.contains("slant score"))
        .collect();
    assert!(!score_lines.is_empty(), "the Job runs slant score");
    let known = help_flags(&help("score"));
    for line in score_lines {
        let args = line.split("slant score").nth(1).unwrap();
        let used = flags(args.split_whitespace());
        assert!(used.contains("--model"));
        assert_flags_exist(&used, &known, "deploy/job-score-corpus.yaml");
    }
    // Every mounted volume is declared.
    let declared = j.all("spec template spec volumes name");
    for m in j.all(&format!("{c} volumeMounts name")) {
        assert!(declared.contains(&m), "volume {m} is not declared");
    }
}

#[test]
fn kustomization_lists_existing_manifests() {
    let k = Doc::load("deploy/kustomization.yaml");
    assert_eq!(k.get("kind"), "Kustomization");
    let resources = k.all("resources");
    for want in [
        "deployment.yaml",
        "service-headless.yaml",
        "hpa.yaml",
        "pdb.yaml",
    ] {
        assert!(resources.contains(&want), "kustomization lacks {want}");
    }
    for r in resources {
        assert!(
            Path::new(&root().join("deploy").join(r)).is_file(),
            "{r} does not exist"
        );
    }
}
