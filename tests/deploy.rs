//! The container and Kubernetes files agree with the binary: every flag
//! the Dockerfile and deploy/*.yaml pass to `slant serve` and `slant score`
//! exists in that command's `--help`, every SLANT_* variable they set is
//! one `slant serve` reads, and the manifests have the structure they are
//! meant to have (read with yaml-rust2, a maintained pure-Rust YAML 1.2
//! parser, into (path, value) entries, and as YAML where one list item's
//! fields must agree): the model directory from a volume, the key file
//! from a Secret, the probes on the one API port, and a memory limit that
//! holds what the sizing comment counts.

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

/// The documents of a YAML file, each as its entries and as YAML.
fn parse_yaml(name: &str, text: &str) -> Vec<(Vec<Entry>, Yaml)> {
    let docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    docs.into_iter()
        .map(|d| {
            let mut out = Vec::new();
            flatten(name, &d, &mut Vec::new(), &mut out);
            (out, d)
        })
        .filter(|(d, _)| !d.is_empty())
        .collect()
}

/// One manifest: a single YAML document.
struct Doc {
    name: String,
    entries: Vec<Entry>,
    yaml: Yaml,
    /// The file as written, comments included.
    text: String,
}

impl Doc {
    fn load(rel: &str) -> Self {
        let text = read(rel);
        let mut docs = parse_yaml(rel, &text);
        assert_eq!(docs.len(), 1, "{rel}: expected one YAML document");
        let (entries, yaml) = docs.pop().unwrap();
        Doc {
            name: rel.to_string(),
            entries,
            yaml,
            text,
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

/// A size in bytes: `65536`, `64KiB`, `4MiB` (slant's flags) or `512Mi`
/// (Kubernetes quantities).
fn bytes(v: &str) -> u64 {
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().unwrap_or_else(|_| panic!("size {v:?}"));
    let unit = match &v[digits.len()..] {
        "" | "B" => 1,
        "KiB" | "Ki" => 1 << 10,
        "MiB" | "Mi" => 1 << 20,
        "GiB" | "Gi" => 1 << 30,
        unit => panic!("size unit {unit:?} in {v:?}"),
    };
    n * unit
}

/// A YAML scalar's text ("" when absent).
fn text(y: &Yaml) -> String {
    scalar(y).unwrap_or_default()
}

/// The item of a YAML list whose `name` is `name`.
fn named<'a>(list: &'a Yaml, name: &str, what: &str) -> &'a Yaml {
    list.as_vec()
        .into_iter()
        .flatten()
        .find(|item| item["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {what} named {name:?}"))
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
    let addr = flag_value(&cmd, "--addr").expect("--addr in CMD");
    assert_eq!(addr, "0.0.0.0:50051");
    // The baked model is a model directory's default/1, served and
    // watched, so a volume mounted over it serves other models.
    let dir = flag_value(&cmd, "--model-dir").expect("--model-dir in CMD");
    assert_eq!(dir, "/models");
    assert!(cmd.contains(&"--watch"), "CMD serves with --watch");
    assert!(
        flag_value(&cmd, "--model").is_none(),
        "--model and --model-dir"
    );
    let model = baked_model();
    assert_eq!(model, format!("{dir}/default/1.slant"));
    let copies = instruction(&ins, "COPY");

    // One port; a second only for a separate metrics listener.
    let mut ports = BTreeSet::from([port(addr)]);
    if let Some(metrics) = flag_value(&cmd, "--metrics-addr") {
        ports.insert(port(metrics));
    }
    let exposed: BTreeSet<&str> = instruction(&ins, "EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .map(|p| p.trim_end_matches("/tcp"))
        .collect();
    assert_eq!(exposed, ports, "EXPOSE lists the ports slant serves");

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
    assert!(
        health[0].contains(&format!(":{}", port(addr))),
        "the HEALTHCHECK asks the API port: {}",
        health[0]
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

/// Where the Dockerfile puts `models/default.slant` in the image.
fn baked_model() -> String {
    let ins = dockerfile();
    let copies = instruction(&ins, "COPY");
    let dest: Vec<&str> = copies
        .iter()
        .filter_map(|c| c.strip_prefix("models/default.slant "))
        .collect();
    assert_eq!(
        dest.len(),
        1,
        "the default model is copied once: {copies:?}"
    );
    dest[0].trim().to_string()
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
    assert!(seen >= 9, "deploy/ has {seen} manifests");
}

/// Resident memory of one loaded version of the default model, as the
/// deployment's sizing comment counts it.
const MODEL_MIB: u64 = 70;

/// The volume mount at `path` in a container.
fn mount_at<'a>(container: &'a Yaml, path: &str) -> &'a Yaml {
    container["volumeMounts"]
        .as_vec()
        .into_iter()
        .flatten()
        .find(|m| m["mountPath"].as_str() == Some(path))
        .unwrap_or_else(|| panic!("nothing is mounted at {path}"))
}

#[test]
fn deployment_probes_resources_security_and_flags() {
    let d = Doc::load("deploy/deployment.yaml");
    assert_eq!(d.get("apiVersion"), "apps/v1");
    assert_eq!(d.get("kind"), "Deployment");
    let c = "spec template spec containers";
    assert_eq!(d.all(&format!("{c} name")).len(), 1, "one container");
    let pod = &d.yaml["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    let args = d.all(&format!("{c} args"));
    assert_flags_exist(
        &flags(args.iter().copied()),
        &help_flags(&help("serve")),
        "deploy/deployment.yaml",
    );
    check_env_names(d.all(&format!("{c} env name")));

    // One API port, named, and no separate metrics listener.
    let api = port(flag_value(&args, "--addr").expect("--addr")).to_string();
    assert!(
        flag_value(&args, "--metrics-addr").is_none(),
        "/metrics is on the API port"
    );
    assert_eq!(d.all(&format!("{c} ports containerPort")), [api.as_str()]);
    let api_name = d.get(&format!("{c} ports name"));
    // A probe's port, by name or number, is the API port.
    let on_api = |probe: &str| {
        let p = text(&container[probe]["httpGet"]["port"]);
        p == api_name || p == api
    };

    // Readiness: /healthz, 503 with no model or while draining.
    assert_eq!(
        d.get(&format!("{c} readinessProbe httpGet path")),
        "/healthz"
    );
    assert!(on_api("readinessProbe"), "readiness on the API port");
    // Liveness (and startup): a route that answers whatever the models
    // and keys, so a pod with no model is not restarted in a loop.
    for probe in ["livenessProbe", "startupProbe"] {
        let path = d.get(&format!("{c} {probe} httpGet path"));
        assert!(
            ["/openapi.json", "/"].contains(&path),
            "{probe} asks {path}, which depends on the models or a key"
        );
        assert!(on_api(probe), "{probe} on the API port");
    }
    // The kubelet's probes cannot present a key.
    assert!(
        !args.contains(&"--protect-all"),
        "--protect-all would lock the readiness probe out of /healthz"
    );

    // The kubelet waits longer than the preStop sleep plus the drain...
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
    // ...and liveness, refused (503) while draining, does not kill the
    // pod before the drain ends.
    let live = d.num(&format!("{c} livenessProbe periodSeconds"))
        * d.num(&format!("{c} livenessProbe failureThreshold"));
    assert!(
        live > pre_stop + drain,
        "liveness gives up after {live}s, within preStop {pre_stop} + drain {drain}"
    );

    // Models: the claim, read-only, at --model-dir, watched.
    let model_dir = flag_value(&args, "--model-dir").expect("--model-dir");
    assert!(
        flag_value(&args, "--model").is_none(),
        "--model and --model-dir"
    );
    assert!(
        args.contains(&"--watch"),
        "--watch picks up new versions and keys"
    );
    let mount = mount_at(container, model_dir);
    assert_eq!(text(&mount["readOnly"]), "true", "models read-only");
    let volume = named(&pod["volumes"], &text(&mount["name"]), "volume");
    assert_eq!(
        text(&volume["persistentVolumeClaim"]["claimName"]),
        Doc::load("deploy/pvc-models.yaml").get("metadata name")
    );
    assert_eq!(text(&volume["persistentVolumeClaim"]["readOnly"]), "true");

    // Keys: a Secret's key mounted as a directory (a subPath mount is
    // never updated, so --watch would not see the Secret change).
    let keys = Path::new(flag_value(&args, "--api-keys").expect("--api-keys"));
    let keys_dir = keys.parent().unwrap().to_str().unwrap();
    let keys_file = keys.file_name().unwrap().to_str().unwrap();
    let mount = mount_at(container, keys_dir);
    assert!(
        mount["subPath"].is_badvalue(),
        "the key file without subPath"
    );
    assert_eq!(text(&mount["readOnly"]), "true", "keys read-only");
    let volume = named(&pod["volumes"], &text(&mount["name"]), "volume");
    let secret = &volume["secret"];
    let example = Doc::load("deploy/secret-api-keys.example.yaml");
    assert_eq!(text(&secret["secretName"]), example.get("metadata name"));
    let key = match secret["items"].as_vec() {
        None => keys_file.to_string(),
        Some(items) => items
            .iter()
            .find(|i| text(&i["path"]) == keys_file)
            .map(|i| text(&i["key"]))
            .unwrap_or_else(|| panic!("no Secret item lands at {keys_file}")),
    };
    assert!(
        example.has(&format!("stringData {key}")),
        "the Secret's template has no key {key}"
    );

    // Memory: the sizing comment's sum fits under the limit.
    assert!(
        d.text.contains(&format!("{MODEL_MIB} MiB")),
        "the sizing comment counts {MODEL_MIB} MiB a version"
    );
    let keep: u64 = flag_value(&args, "--keep-versions").map_or(2, |v| v.parse().unwrap());
    let models = (keep + 1) * (MODEL_MIB << 20);
    let buffered = bytes(flag_value(&args, "--max-buffered-bytes").expect("--max-buffered-bytes"));
    let calls: u64 = flag_value(&args, "--max-concurrent-requests")
        .expect("--max-concurrent-requests")
        .parse()
        .unwrap();
    let in_flight =
        calls * bytes(flag_value(&args, "--max-message-bytes").expect("--max-message-bytes"));
    let need = models + buffered + in_flight;
    let limit = bytes(d.get(&format!("{c} resources limits memory")));
    assert!(
        limit >= need,
        "memory limit {} MiB < {} MiB: {} versions, {} MiB buffered, {} MiB in flight",
        limit >> 20,
        need >> 20,
        keep + 1,
        buffered >> 20,
        in_flight >> 20
    );
    let request = bytes(d.get(&format!("{c} resources requests memory")));
    assert!(
        request >= keep * (MODEL_MIB << 20) && request <= limit,
        "memory request {} MiB: the kept versions, under the limit",
        request >> 20
    );
    for r in ["requests cpu", "limits cpu"] {
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
fn models_claim_seed_job_and_keys_template() {
    let pvc = Doc::load("deploy/pvc-models.yaml");
    assert_eq!(pvc.get("kind"), "PersistentVolumeClaim");
    // Pods on many nodes read it while a publisher writes it.
    assert!(pvc.all("spec accessModes").contains(&"ReadWriteMany"));
    assert!(pvc.has("spec resources requests storage"));

    // The seed Job copies the image's model into the claim as
    // default/<version>.slant, renamed into place.
    let j = Doc::load("deploy/job-seed-models.yaml");
    assert_eq!(j.get("kind"), "Job");
    let pod = &j.yaml["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mount = &container["volumeMounts"][0];
    let volume = named(&pod["volumes"], &text(&mount["name"]), "volume");
    assert_eq!(
        text(&volume["persistentVolumeClaim"]["claimName"]),
        pvc.get("metadata name")
    );
    let at = text(&mount["mountPath"]);
    let script = j.all("spec template spec containers args").join("\n");
    let model = baked_model();
    let published = format!("{at}/default/{}", model.rsplit('/').next().unwrap());
    assert!(
        script.contains(&format!("cp {model} {published}.part")),
        "{script}"
    );
    assert!(
        script.contains(&format!("mv {published}.part {published}")),
        "{script}"
    );

    let s = Doc::load("deploy/secret-api-keys.example.yaml");
    assert_eq!(s.get("kind"), "Secret");
    assert!(s.has("stringData keys.txt"));
    assert!(
        s.text.contains(r#"printf %s "$KEY" | sha256sum"#),
        "the template says how to make a key's hash"
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
    // Its one port is the container's one (API) port, spoken to as h2c
    // (HTTP/2 without TLS), which every protocol on it accepts.
    let c = "spec template spec containers";
    let target = s.get("spec ports targetPort");
    assert!(
        target == d.get(&format!("{c} ports name"))
            || target == d.get(&format!("{c} ports containerPort")),
        "the Service targets {target}, not the API port"
    );
    assert_eq!(s.get("spec ports appProtocol"), "kubernetes.io/h2c");

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
        let words: Vec<&str> = args.split_whitespace().collect();
        let used = flags(words.iter().copied());
        assert_flags_exist(&used, &known, "deploy/job-score-corpus.yaml");
        // The image's model, with no volume mounted over it.
        assert_eq!(flag_value(&words, "--model"), Some(baked_model().as_str()));
    }
    assert!(!j
        .all(&format!("{c} volumeMounts mountPath"))
        .iter()
        .any(|m| baked_model().starts_with(&format!("{m}/"))));
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
    for r in &resources {
        assert!(
            Path::new(&root().join("deploy").join(r)).is_file(),
            "{r} does not exist"
        );
    }
    // Applied once, on their own: the claim holds data that outlives the
    // service, the Secret is a template, a Job's template is immutable.
    for r in &resources {
        assert!(
            !(r.starts_with("pvc-") || r.starts_with("job-") || r.contains(".example.")),
            "the kustomization lists {r}"
        );
    }
}
