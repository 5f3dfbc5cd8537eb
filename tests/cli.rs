//! End to end through the `slant` binary: train on the fixture set,
//! evaluate, score, describe, and refuse bad input with clear errors.
//! The last test checks the committed default model against the shared
//! test splits; it needs ../shared/datasets, so it is ignored by a plain
//! `cargo test` and `.ci/run` runs it with `--ignored` (it fails, never
//! passes, without the data).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use slant::proto::{ArticleResponse, ScoreResponse, ScoredPassage};
use slant::text::split::split_article;

fn slant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slant"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run slant")
}

fn slant_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_slant"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn slant");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "slant failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `slant train --config config --out out`.
fn train(config: &Path, out: &Path) -> Output {
    slant(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

/// `slant info --json` of a model file.
fn info_json(model: &Path) -> Value {
    serde_json::from_str(&ok(&slant(&[
        "info",
        "--model",
        model.to_str().unwrap(),
        "--json",
    ])))
    .unwrap()
}

fn train_fixture(dir: &Path) -> PathBuf {
    let model = dir.join("fixture.slant");
    let out = train(Path::new("data/fixtures/fixture.toml"), &model);
    let text = ok(&out);
    assert!(
        text.contains("sentiment") && text.contains("clickbait") && text.contains("macro-F1"),
        "{text}"
    );
    model
}

#[test]
fn train_is_deterministic_and_info_describes_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let a = train_fixture(dir.path());
    let b = dir.path().join("again.slant");
    ok(&train(Path::new("data/fixtures/fixture.toml"), &b));
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same data and config, different bytes"
    );

    let info = info_json(&a);
    assert_eq!(info["model_id"].as_str().unwrap().len(), 16);
    let heads = info["heads"].as_array().unwrap();
    assert_eq!(
        heads[0]["labels"],
        serde_json::json!(["negative", "neutral", "positive"])
    );
    assert!(heads[0]["threshold"].is_null());
    let t = heads[1]["threshold"].as_f64().unwrap();
    assert!(t > 0.0 && t < 1.0);
    let sha = heads[1]["data"][0]["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    assert!(heads[1]["dev_metrics"]["clickbait_dev.tsv macro_f1"].is_number());
    assert!(info["features"]["terms"].as_u64().unwrap() > 100);
    assert!(heads[0]["hyperparameters"]["class_weight_balanced"].is_boolean());
    let text = ok(&slant(&["info", "--model", a.to_str().unwrap()]));
    assert!(
        text.contains("head clickbait") && text.contains("clickbait_train.csv"),
        "{text}"
    );
    assert!(text.contains("class_weight_balanced = false"), "{text}");
    // Each head's scope, from the config (passage unless it says headline).
    assert_eq!(heads[0]["scope"], "passage");
    assert_eq!(heads[1]["scope"], "headline");
    assert!(text.contains("scope: headline"), "{text}");
}

/// `refit = true` from the command line: the model says it was refitted,
/// and a config where no dev file is of a training file's source (in one
/// folder, sources are told apart by `domain`) is refused, naming the head.
#[test]
fn a_refit_is_recorded_and_one_with_nothing_to_join_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures");
    let config = |dev_domain: &str| {
        format!(
            "data_root = {:?}\n[features]\nmin_df = 1\n\
             [[heads]]\nname = \"sentiment\"\nlabels = [\"negative\", \"neutral\", \"positive\"]\n\
             c_grid = [1, 4]\nrefit = true\n\
             train = [{{ path = \"sentiment_train.jsonl\", domain = \"s\" }}]\n\
             dev = [{{ path = \"sentiment_dev.jsonl\"{dev_domain} }}]\n",
            fixtures.to_str().unwrap()
        )
    };
    let joined = dir.path().join("refit.toml");
    std::fs::write(&joined, config(", domain = \"s\"")).unwrap();
    let model = dir.path().join("refit.slant");
    ok(&train(&joined, &model));
    let info = info_json(&model);
    assert_eq!(info["heads"][0]["hyperparameters"]["refit_with_dev"], true);
    let text = ok(&slant(&["info", "--model", model.to_str().unwrap()]));
    assert!(text.contains("refit_with_dev = true"), "{text}");

    let alone = dir.path().join("alone.toml");
    std::fs::write(&alone, config("")).unwrap();
    let out = train(&alone, &model);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alone.toml") && err.contains("\"sentiment\"") && err.contains("refit"),
        "{err}"
    );
}

/// A mixture head from the command line: trained from a config (two
/// domains with experts, one of a single label that only trains the gate),
/// the same bytes twice, described by `info`, and scored, explained and
/// evaluated as any head.
#[test]
fn a_mixture_head_trains_scores_and_explains() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures");
    let config = fixtures.join("mixture.toml");
    let (a, b) = (dir.path().join("a.slant"), dir.path().join("b.slant"));
    let text = ok(&train(&config, &a));
    assert!(
        text.contains("sentiment") && text.contains("macro-F1"),
        "{text}"
    );
    ok(&train(&config, &b));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let info = ok(&slant(&["info", "--model", a.to_str().unwrap()]));
    assert!(
        info.contains(
            "mixture: joint weight 0.3; gate over news, reviews (reads what follows a contrasting \"but\"), headlines (constant ["
        ),
        "{info}"
    );
    assert!(
        info.contains("expert news C = ") && info.contains("gate C = 2"),
        "{info}"
    );
    let json = info_json(&a);
    let experts = &json["heads"][0]["mixture"]["experts"];
    assert_eq!(experts[2]["kind"], "constant", "{json}");
    assert_eq!(
        (
            experts[0]["after_contrast"].as_bool(),
            experts[1]["after_contrast"].as_bool()
        ),
        (Some(false), Some(true)),
        "{json}"
    );
    // The constant expert: "neutral" for all 50 headlines, add-one smoothed.
    let p = experts[2]["probabilities"].as_array().unwrap();
    assert!((p[1].as_f64().unwrap() - 51.0 / 53.0).abs() < 1e-9, "{p:?}");
    let out = ok(&slant_stdin(
        &["score", "--model", a.to_str().unwrap(), "--explain", "2"],
        "The park was wonderful and everyone loved it.\n",
    ));
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let head = &v["results"][0]["heads"][0];
    assert_eq!(head["label"], "positive", "{v}");
    let total: f64 = head["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "{v}");
    let words: Vec<&str> = head["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["feature"].as_str().unwrap())
        .collect();
    assert!(
        words.contains(&"wonderful") || words.contains(&"loved"),
        "{words:?}"
    );
    let eval = ok(&slant(&[
        "eval",
        "--model",
        a.to_str().unwrap(),
        "--data",
        fixtures.join("sentiment_dev.jsonl").to_str().unwrap(),
        "--head",
        "sentiment",
    ]));
    assert!(eval.contains("sentiment_dev.jsonl"), "{eval}");
    // Joint weight 0: the experts alone. No joint model is trained or
    // kept, so the train table has no C of the head's own; it still
    // scores and explains.
    let lean_config = dir.path().join("lean.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &lean_config,
        text.replace("joint_weight = 0.3", "joint_weight = 0.0")
            .replace(
                "data_root = \".\"",
                &format!("data_root = {:?}", fixtures.to_str().unwrap()),
            ),
    )
    .unwrap();
    let lean = dir.path().join("lean.slant");
    let table = ok(&train(&lean_config, &lean));
    let row = table
        .lines()
        .find(|l| l.starts_with("sentiment "))
        .unwrap_or_default();
    assert_eq!(row.split_whitespace().nth(2), Some("-"), "{table}");
    let info = ok(&slant(&["info", "--model", lean.to_str().unwrap()]));
    assert!(info.contains("mixture: joint weight 0;"), "{info}");
    // No C of the head's own: the experts' and the gate's alone.
    assert!(
        info.contains("hyperparameters: class_weight_balanced = false, expert news C"),
        "{info}"
    );
    assert!(std::fs::metadata(&lean).unwrap().len() < std::fs::metadata(&a).unwrap().len());
    let out = ok(&slant_stdin(
        &["score", "--model", lean.to_str().unwrap(), "--explain", "2"],
        "The park was wonderful and everyone loved it.\n",
    ));
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["results"][0]["heads"][0]["label"], "positive", "{v}");
}

#[test]
fn eval_reports_every_metric_and_restricts_labels() {
    let dir = tempfile::tempdir().unwrap();
    let m = train_fixture(dir.path());
    let m = m.to_str().unwrap();
    let all: Value = serde_json::from_str(&ok(&slant(&[
        "eval",
        "--model",
        m,
        "--head",
        "sentiment",
        "--data",
        "data/fixtures/sentiment_dev.jsonl",
        "--json",
    ])))
    .unwrap();
    assert!(all["model_id"].is_string());
    let r = &all["sets"][0];
    for key in [
        "head",
        "n",
        "accuracy",
        "macro_f1",
        "per_class",
        "confusion",
        "log_loss",
        "ece",
    ] {
        assert!(r.get(key).is_some(), "missing {key} in {r}");
    }
    assert_eq!(r["n"], 18);
    assert!(r["restricted_to"].is_null());
    assert_eq!(r["per_class"]["neutral"]["support"], 6);
    assert!(r["accuracy"].as_f64().unwrap() > 0.8, "{r}");

    // Two-label data against the three-class head: argmax over those two.
    let r: Value = serde_json::from_str(&ok(&slant(&[
        "eval",
        "--model",
        m,
        "--head",
        "sentiment",
        "--data",
        "data/fixtures/sentiment_binary.jsonl",
        "--json",
    ])))
    .unwrap();
    let r = &r["sets"][0];
    assert_eq!(
        r["restricted_to"],
        serde_json::json!(["negative", "positive"])
    );
    assert_eq!(r["confusion"].as_array().unwrap().len(), 2);
    assert!(r["roc_auc"].is_number());

    // CSV and TSV with named columns.
    let r: Value = serde_json::from_str(&ok(&slant(&[
        "eval",
        "--model",
        m,
        "--head",
        "clickbait",
        "--data",
        "data/fixtures/clickbait_dev.tsv",
        "--text-field",
        "headline",
        "--label-field",
        "kind",
        "--json",
    ])))
    .unwrap();
    let r = &r["sets"][0];
    assert!(r["macro_f1"].as_f64().unwrap() > 0.8, "{r}");
    assert!(
        r.get("bootstrap").is_none() && r.get("versus").is_none(),
        "{r}"
    );

    // Bootstrap intervals, and the model against itself on the same draws,
    // on the dev set with every third label turned, so that some
    // predictions are wrong and the intervals have width.
    let dev = std::fs::read_to_string("data/fixtures/sentiment_dev.jsonl").unwrap();
    let turned: Vec<String> = dev
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut v: Value = serde_json::from_str(line).unwrap();
            if i % 3 == 0 {
                let to = if v["label"] == "positive" {
                    "negative"
                } else {
                    "positive"
                };
                v["label"] = to.into();
            }
            v.to_string()
        })
        .collect();
    let turned_path = dir.path().join("turned.jsonl");
    std::fs::write(&turned_path, turned.join("\n")).unwrap();
    let args = [
        "eval",
        "--model",
        m,
        "--head",
        "sentiment",
        "--data",
        turned_path.to_str().unwrap(),
        "--bootstrap",
        "200",
        "--compare",
        m,
    ];
    let r: Value = serde_json::from_str(&ok(&slant(&[&args[..], &["--json"]].concat()))).unwrap();
    let r = &r["sets"][0];
    let b = &r["bootstrap"];
    assert_eq!(
        (b["resamples"].as_u64(), b["level"].as_f64()),
        (Some(200), Some(0.95)),
        "{r}"
    );
    for metric in ["accuracy", "macro_f1"] {
        let (low, high) = (
            b[metric][0].as_f64().unwrap(),
            b[metric][1].as_f64().unwrap(),
        );
        let point = r[metric].as_f64().unwrap();
        assert!(low <= point && point <= high && low < high, "{metric}: {r}");
    }
    let v = &r["versus"];
    assert_eq!(v["model_id"], model_id(m));
    assert_eq!(v["macro_f1"], r["macro_f1"]);
    assert_eq!(v["accuracy"], r["accuracy"]);
    for d in ["accuracy_difference", "macro_f1_difference"] {
        assert_eq!(v[d], 0.0, "{d}: {v}");
        assert_eq!(
            v[format!("{d}_interval")],
            serde_json::json!([0.0, 0.0]),
            "{d}: {v}"
        );
    }
    assert_eq!(v["share_better"], 0.5);
    let table = ok(&slant(&args));
    assert!(
        table.contains("95% bootstrap intervals (200 resamples"),
        "{table}"
    );
    assert!(table.contains("against model "), "{table}");
    let row = table
        .lines()
        .rfind(|l| l.starts_with("sentiment ") && l.contains("turned.jsonl"))
        .unwrap_or_default();
    assert!(
        row.matches("+0.000 (0.000..0.000)").count() == 2 && row.ends_with("0.50"),
        "{table}"
    );
    // A model that is not there is named.
    let mut missing = args.to_vec();
    missing[args.len() - 1] = "no/such.slant";
    let err = slant(&missing);
    assert!(!err.status.success());
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("no/such.slant"),
        "{err:?}"
    );
}

/// The model id `slant info` prints for the model at `path`.
fn model_id(path: &str) -> String {
    let info = ok(&slant(&["info", "--model", path]));
    info.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn eval_prints_one_table_of_heads_by_sets_with_slices() {
    let dir = tempfile::tempdir().unwrap();
    let m = train_fixture(dir.path());
    let m = m.to_str().unwrap();
    // An eval config: three sets, two heads, one of them two-label data.
    let text = ok(&slant(&[
        "eval",
        "--model",
        m,
        "--config",
        "data/fixtures/eval.toml",
    ]));
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("model "), "{text}");
    assert!(
        rows[1].contains("macro-F1") && rows[1].contains("ECE"),
        "{text}"
    );
    for (row, (head, set)) in rows[2..5].iter().zip([
        ("sentiment", "fixtures/sentiment_dev.jsonl"),
        ("sentiment", "fixtures/sentiment_binary.jsonl"),
        ("clickbait", "fixtures/clickbait_dev.tsv"),
    ]) {
        assert!(row.starts_with(head) && row.contains(set), "{row}\n{text}");
    }
    let json: Value = serde_json::from_str(&ok(&slant(&[
        "eval",
        "--model",
        m,
        "--config",
        "data/fixtures/eval.toml",
        "--json",
    ])))
    .unwrap();
    let sets = json["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 3);
    assert_eq!(
        sets[1]["restricted_to"],
        serde_json::json!(["negative", "positive"])
    );
    assert_eq!(sets[2]["head"], "clickbait");
    for s in sets {
        assert!(s["ece"].is_number() && s["macro_f1"].is_number(), "{s}");
    }

    // Data labelled in other words, sliced by outlet, several --data files.
    let other = dir.path().join("other.jsonl");
    std::fs::write(
        &other,
        [
            r#"{"text": "The film was wonderful.", "label": "good", "outlet": "A"}"#,
            r#"{"text": "Critics called it horrible.", "label": "bad", "outlet": "A"}"#,
            r#"{"text": "Everyone loved the wonderful park.", "label": "good", "outlet": "B"}"#,
            r#"{"text": "A horrible, awful meeting.", "label": "bad", "outlet": "B"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let json: Value = serde_json::from_str(&ok(&slant(&[
        "eval",
        "--model",
        m,
        "--head",
        "sentiment",
        "--data",
        other.to_str().unwrap(),
        "--data",
        "data/fixtures/sentiment_dev.jsonl",
        "--label-map",
        "good=positive,bad=negative",
        "--json",
    ])))
    .unwrap();
    let first = &json["sets"][0];
    assert_eq!(first["n"], 4);
    let outlets: Vec<(String, u64)> = first["slices"]["outlet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_string(),
                v["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(outlets, [("A".to_string(), 2), ("B".to_string(), 2)]);
    assert_eq!(json["sets"][1]["n"], 18);
    let text = ok(&slant(&[
        "eval",
        "--model",
        m,
        "--head",
        "sentiment",
        "--data",
        other.to_str().unwrap(),
        "--label-map",
        "good=positive,bad=negative",
    ]));
    assert!(
        text.contains("by slice:") && text.contains("outlet=A"),
        "{text}"
    );
    // Without the map, the unknown label is named with its line.
    let out = slant(&[
        "eval",
        "--model",
        m,
        "--head",
        "sentiment",
        "--data",
        other.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other.jsonl:1: unknown label \"good\""),
        "{err}"
    );
    let out = slant(&[
        "eval",
        "--model",
        m,
        "--head",
        "sentiment",
        "--label-map",
        "nope",
    ]);
    assert!(!out.status.success());
}

#[test]
fn leave_one_out_measures_each_source_on_its_own_dev() {
    // Two sources of the fixture's sentences, each with a dev file, and a
    // third without one.
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures");
    let lines = |f: &str| -> Vec<String> {
        std::fs::read_to_string(fixtures.join(f))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (train, dev) = (lines("sentiment_train.jsonl"), lines("sentiment_dev.jsonl"));
    for (folder, rows, dev_rows) in [
        ("a", &train[..train.len() / 2], &dev[..dev.len() / 2]),
        ("b", &train[train.len() / 2..], &dev[dev.len() / 2..]),
    ] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
        std::fs::write(dir.path().join(folder).join("train.jsonl"), rows.join("\n")).unwrap();
        std::fs::write(
            dir.path().join(folder).join("dev.jsonl"),
            dev_rows.join("\n"),
        )
        .unwrap();
    }
    std::fs::create_dir(dir.path().join("c")).unwrap();
    std::fs::write(dir.path().join("c/train.jsonl"), train[..6].join("\n")).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        r#"[features]
min_df = 1
[[heads]]
name = "sentiment"
labels = ["negative", "neutral", "positive"]
c_grid = [1, 4]
train = [{ path = "a/train.jsonl" }, { path = "b/train.jsonl" }, { path = "c/train.jsonl" }]
dev = [{ path = "a/dev.jsonl" }, { path = "b/dev.jsonl" }]
"#,
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let json: Value = serde_json::from_str(&ok(&slant(&[
        "train",
        "--config",
        config,
        "--leave-one-out",
        "--json",
    ])))
    .unwrap();
    let rows = json["rows"].as_array().unwrap();
    let left: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["left_out"].as_str().unwrap(), r["dev"].as_str().unwrap()))
        .collect();
    assert_eq!(
        left,
        [
            ("a/train.jsonl", "a/dev.jsonl"),
            ("b/train.jsonl", "b/dev.jsonl")
        ]
    );
    for r in rows {
        for k in ["macro_f1", "with_macro_f1", "accuracy", "ece"] {
            let v = r[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k} {v} in {r}");
        }
    }
    assert_eq!(json["skipped"][0]["left_out"], "c/train.jsonl");
    assert!(rows.iter().all(|r| r.get("macro_f1_interval").is_none()));
    let text = ok(&slant(&["train", "--config", config, "--leave-one-out"]));
    assert!(
        text.contains("F1 without") && text.contains("skipped: no dev file"),
        "{text}"
    );
    assert!(!text.contains("95% interval"), "{text}");
    // Each held-out figure with its bootstrap interval.
    let args = [
        "train",
        "--config",
        config,
        "--leave-one-out",
        "--bootstrap",
        "200",
    ];
    let json: Value =
        serde_json::from_str(&ok(&slant(&[&args[..], &["--json"]].concat()))).unwrap();
    for r in json["rows"].as_array().unwrap() {
        let i = &r["macro_f1_interval"];
        let (low, high) = (i[0].as_f64().unwrap(), i[1].as_f64().unwrap());
        let f1 = r["macro_f1"].as_f64().unwrap();
        assert!(low <= f1 && f1 <= high, "{r}");
    }
    let text = ok(&slant(&args));
    assert!(
        text.contains("95% interval") && text.contains(".."),
        "{text}"
    );
    // --bootstrap, --json and --head belong to --leave-one-out: without it
    // they are refused, and no model is written.
    let out_path = dir.path().join("x.slant");
    let out_path = out_path.to_str().unwrap();
    for extra in [
        &["--bootstrap", "5"][..],
        &["--json"],
        &["--head", "sentiment"],
    ] {
        let alone = slant(&[&["train", "--config", config, "--out", out_path][..], extra].concat());
        assert!(!alone.status.success(), "{extra:?}");
        let err = String::from_utf8_lossy(&alone.stderr);
        assert!(
            err.contains(extra[0]) && err.contains("--leave-one-out"),
            "{err}"
        );
    }
    assert!(!dir.path().join("x.slant").exists());
    // No model is written, and --out cannot be given with it.
    let out = slant(&[
        "train",
        "--config",
        config,
        "--leave-one-out",
        "--out",
        "x.slant",
    ]);
    assert!(!out.status.success());
}

/// A behaviour suite for the fixture model: a label test, a "not" test,
/// an invariance test and a directional one.
const FIXTURE_SUITE: &str = r#"
[fill]
thing = ["film", "report", "park"]
good = ["wonderful", "superb"]
bad = ["awful", "terrible"]

[[tests]]
name = "praise"
capability = "vocabulary"
head = "sentiment"
templates = ["The {thing} was {good}.", "The {thing} was {bad}."]
label = "positive"

[[tests]]
name = "no bait in plain headlines"
capability = "reporting"
head = "clickbait"
templates = ["Officials said the {thing} opened last week"]
not = "clickbait"

[[tests]]
name = "a link appended"
capability = "robustness"
head = "sentiment"
templates = ["The {thing} was {good}.", "The {thing} was {bad}."]
append = [" https://t.co/Xk3Lq9Zp2a"]
typo = true

[[tests]]
name = "intensified"
capability = "intensity"
head = "sentiment"
templates = ["The {thing} was {good}.", "The {thing} was {bad}."]
edited = ["The {thing} was very {good}.", "The {thing} was very {bad}."]
raises = "positive"
"#;

#[test]
fn check_runs_a_behaviour_suite_and_counts_what_score_says() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_fixture(dir.path());
    let m = model.to_str().unwrap();
    let suite = dir.path().join("suite.toml");
    std::fs::write(&suite, FIXTURE_SUITE).unwrap();
    let sp = suite.to_str().unwrap();
    // `slant check --suite <this suite>` and more: its table, or its JSON.
    let check = |args: &[&str]| ok(&slant(&[&["check", "--suite", sp][..], args].concat()));
    let check_json = |args: &[&str]| -> Value {
        serde_json::from_str(&check(&[args, &["--json"]].concat())).unwrap()
    };
    let j = check_json(&["--model", m, "--examples", "100"]);
    assert_eq!(j["model_id"], Value::String(model_id(m)));
    let tests = j["tests"].as_array().unwrap();
    let kinds: Vec<(&str, &str, u64)> = tests
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["kind"].as_str().unwrap(),
                t["cases"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("praise", "label", 12),
            ("no bait in plain headlines", "not", 3),
            ("a link appended", "same", 12),
            ("intensified", "raises", 12),
        ]
    );
    // The label test's failures are the cases `slant score` labels
    // otherwise, each shown (--examples 100) with that label.
    let cases: Vec<String> = ["film", "report", "park"]
        .iter()
        .flat_map(|t| {
            ["wonderful", "superb", "awful", "terrible"]
                .iter()
                .map(move |a| format!("The {t} was {a}."))
        })
        .collect();
    // Each passage's sentiment label and P(positive), as `slant score` says.
    let sentiment = |passages: &[String]| -> Vec<(String, f64)> {
        let out = ok(&slant_stdin(
            &[
                "score",
                "--model",
                m,
                "--heads",
                "sentiment",
                "--format",
                "plain",
            ],
            &passages.join("\n"),
        ));
        out.lines()
            .map(|l| {
                let r: ScoreResponse = serde_json::from_str(l).unwrap();
                let h = &r.results[0].heads[0];
                (h.label.clone(), h.probabilities[2].probability)
            })
            .collect()
    };
    let scored = sentiment(&cases);
    let wrong: Vec<(String, String)> = cases
        .iter()
        .zip(&scored)
        .filter(|(_, (label, _))| label != "positive")
        .map(|(case, (label, _))| (case.clone(), label.clone()))
        .collect();
    // The bad adjectives at least are not praise.
    assert!(wrong.len() >= 6, "{wrong:?}");
    let praise = &tests[0];
    assert_eq!(praise["failed"].as_u64().unwrap() as usize, wrong.len());
    let rate = praise["failure_rate"].as_f64().unwrap();
    assert!((rate - wrong.len() as f64 / 12.0).abs() < 1e-12, "{rate}");
    let shown: Vec<(String, String)> = praise["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["passage"].as_str().unwrap().to_string(),
                e["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(shown, wrong);
    // An invariance failure names the edited passage and its label.
    for e in tests[2]["examples"].as_array().unwrap() {
        let edited = e["edited"].as_str().unwrap();
        let base = e["passage"].as_str().unwrap();
        assert!(
            edited.starts_with(base) || edited.len() == base.len(),
            "{e}"
        );
        assert_ne!(e["label"], e["edited_label"], "{e}");
    }

    // The directional test's failures are the cases whose edited form
    // `slant score` gives a lower P(positive), each shown with both.
    let edited: Vec<String> = cases
        .iter()
        .map(|c| c.replace(" was ", " was very "))
        .collect();
    let before: Vec<f64> = scored.iter().map(|(_, p)| *p).collect();
    let after: Vec<f64> = sentiment(&edited).iter().map(|(_, p)| *p).collect();
    let lower: Vec<usize> = (0..cases.len()).filter(|&i| after[i] < before[i]).collect();
    let intensified = &tests[3];
    assert_eq!(
        intensified["failed"].as_u64().unwrap() as usize,
        lower.len()
    );
    for (e, &i) in intensified["examples"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&lower)
    {
        assert_eq!(e["passage"].as_str().unwrap(), cases[i]);
        assert_eq!(e["edited"].as_str().unwrap(), edited[i]);
        assert!(
            (e["probability"].as_f64().unwrap() - before[i]).abs() < 1e-9,
            "{e}"
        );
        assert!(
            (e["edited_probability"].as_f64().unwrap() - after[i]).abs() < 1e-9,
            "{e}"
        );
    }

    // The table: one row a test, and the totals.
    let table = check(&["--model", m]);
    assert!(
        table.contains("capability") && table.contains("failed"),
        "{table}"
    );
    for name in [
        "praise",
        "no bait in plain headlines",
        "a link appended",
        "intensified",
    ] {
        assert!(table.contains(name), "{name}: {table}");
    }
    assert!(table.contains("P(positive) not lower"), "{table}");
    assert!(table.contains("4 tests, 39 cases"), "{table}");

    // Against another model (the committed default, this model's --compare):
    // its failures on the same cases, and the cases fixed and broken,
    // which account for the difference.
    let j = check_json(&["--model", "models/default.slant", "--compare", m]);
    let compared = j["tests"].as_array().unwrap();
    assert_eq!(compared.len(), 4);
    for (t, fixture) in compared.iter().zip(tests) {
        let v = &t["versus"];
        assert_eq!(v["model_id"], Value::String(model_id(m)), "{t}");
        assert_eq!(v["failed"], fixture["failed"], "{t}");
        let (fixed, broken) = (v["fixed"].as_i64().unwrap(), v["broken"].as_i64().unwrap());
        let (a, b) = (t["failed"].as_i64().unwrap(), v["failed"].as_i64().unwrap());
        assert_eq!(a - b, broken - fixed, "{t}");
    }
    let table = check(&["--model", m, "--compare", m]);
    assert!(
        table.contains("fixed") && table.contains("broken"),
        "{table}"
    );
    // A model compared with itself fixes and breaks nothing.
    let j = check_json(&["--model", m, "--compare", m]);
    for t in j["tests"].as_array().unwrap() {
        assert_eq!(
            (&t["versus"]["fixed"], &t["versus"]["broken"]),
            (&Value::from(0), &Value::from(0)),
            "{t}"
        );
    }
    // A --compare model the suite cannot run on is named (the team's suite
    // reads heads the fixture lacks).
    let out = slant(&["check", "--compare", m]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(m) && err.contains("no head"),
        "{err}"
    );

    // A test the model cannot run is named, and nothing is printed.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[tests]]\nname = 'tone'\ncapability = 'c'\nhead = 'tone'\ntemplates = ['x']\nlabel = 'up'\n",
    )
    .unwrap();
    let out = slant(&["check", "--model", m, "--suite", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("test \"tone\"") && err.contains("no head \"tone\""),
        "{err}"
    );
    // A file that is not a suite names itself and the field.
    std::fs::write(&bad, "[[tests]]\nname = 'x'\n").unwrap();
    let out = slant(&["check", "--model", m, "--suite", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("bad.toml") && err.contains("capability"),
        "{err}"
    );
    let out = slant(&["check", "--model", m, "--suite", "no/such/suite.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no/such/suite.toml"),
        "{err}"
    );
}

#[test]
fn the_teams_behaviour_suite_runs_on_the_default_model() {
    // data/behaviour.toml, as the README runs it: every test runs on the
    // committed model (its heads and labels), whatever its failure rates.
    let j: Value = serde_json::from_str(&ok(&slant(&["check", "--json"]))).unwrap();
    let tests = j["tests"].as_array().unwrap();
    assert!(tests.len() >= 10, "{j}");
    for t in tests {
        let (cases, failed) = (t["cases"].as_u64().unwrap(), t["failed"].as_u64().unwrap());
        assert!(cases > 0 && failed <= cases, "{t}");
    }
}

#[test]
fn score_writes_labels_probabilities_and_spans() {
    let dir = tempfile::tempdir().unwrap();
    let m = train_fixture(dir.path());
    let passages = [
        "You won't believe this SHOCKING kitchen trick!!",
        "Council approves new budget for bridge repairs",
    ];
    let input = passages
        .iter()
        .map(|p| serde_json::json!({ "text": p }).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let out = ok(&slant_stdin(
        &[
            "score",
            "--model",
            m.to_str().unwrap(),
            "--explain",
            "4",
            "-",
        ],
        &input,
    ));
    // Each line is a ScoreResponse in the proto3 JSON mapping: the types
    // the gRPC server answers with read it.
    let lines: Vec<ScoreResponse> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let head = |r: &ScoreResponse, name: &str| {
        r.results[0]
            .heads
            .iter()
            .find(|h| h.head == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(lines[0].request_id, "1");
    assert_eq!(lines[1].request_id, "2");
    assert_eq!(lines[0].model_id.len(), 16);
    assert_eq!(head(&lines[0], "clickbait").label, "clickbait");
    assert_eq!(head(&lines[1], "clickbait").label, "not_clickbait");
    for (line, passage) in lines.iter().zip(passages) {
        for name in ["sentiment", "clickbait"] {
            let h = head(line, name);
            let sum: f64 = h.probabilities.iter().map(|p| p.probability).sum();
            assert!((sum - 1.0).abs() < 1e-9);
            assert!(!h.contributions.is_empty() && h.contributions.len() <= 4);
            // Words: each names the passage's text at each of its spans.
            for c in &h.contributions {
                assert!(!c.spans.is_empty(), "{c:?}");
                for span in &c.spans {
                    let (s, e) = (span.start as usize, span.end as usize);
                    assert!(s < e && e <= passage.len());
                    assert_eq!(&passage[s..e], c.feature, "span of {}", c.feature);
                }
            }
        }
    }
    // --raw-features: the model's features, each with its spans.
    let out = ok(&slant_stdin(
        &[
            "score",
            "--model",
            m.to_str().unwrap(),
            "--explain",
            "4",
            "--raw-features",
            "-",
        ],
        &input,
    ));
    let lines: Vec<ScoreResponse> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (line, passage) in lines.iter().zip(passages) {
        for name in ["sentiment", "clickbait"] {
            let h = head(line, name);
            assert!(!h.contributions.is_empty() && h.contributions.len() <= 4);
            for c in &h.contributions {
                let feature = c.feature.as_str();
                for span in &c.spans {
                    let (s, e) = (span.start as usize, span.end as usize);
                    assert!(s < e && e <= passage.len());
                    let text = passage[s..e].to_lowercase();
                    if !feature.starts_with('<')
                        && !feature.starts_with("ch:")
                        && !feature.contains('!')
                    {
                        assert_eq!(
                            text.split_whitespace().collect::<Vec<_>>().join(" "),
                            feature,
                            "span of {feature}"
                        );
                    }
                }
            }
        }
    }
    // --heads selects; plain lines work too.
    let out = ok(&slant_stdin(
        &[
            "score",
            "--model",
            m.to_str().unwrap(),
            "--heads",
            "clickbait",
        ],
        "plain text line\n",
    ));
    let v: ScoreResponse = serde_json::from_str(out.trim()).unwrap();
    let names: Vec<&str> = v.results[0].heads.iter().map(|h| h.head.as_str()).collect();
    assert_eq!(names, ["clickbait"]);
    // The same JSON through serde_json's own types: camelCase names, every
    // field written (an empty list of contributions too).
    let raw: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        raw["modelId"].is_string() && raw["requestId"] == "1",
        "{raw}"
    );
    assert!(raw["results"][0]["heads"][0]["contributions"].is_array());

    // CSV and TSV are read by column; --text-field picks it.
    let csv = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    std::fs::write(
        csv.path(),
        "kind,headline\nx,\"You won't believe this, SHOCKING\"\ny,Council meets\n",
    )
    .unwrap();
    let csv_path = csv.path().to_str().unwrap();
    let out = ok(&slant(&[
        "score",
        "--model",
        m.to_str().unwrap(),
        "--text-field",
        "headline",
        csv_path,
    ]));
    let r: Vec<ScoreResponse> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(r.len(), 2, "{out}");
    assert_eq!(
        (r[0].request_id.as_str(), r[1].request_id.as_str()),
        ("2", "3")
    );
    // Without it, the error lists the file's columns and names the flag.
    let out = slant(&["score", "--model", m.to_str().unwrap(), csv_path]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no column \"text\" (the file has \"kind\", \"headline\"); --text-field"),
        "{err}"
    );
    // --format overrides the extension: the same file as plain lines.
    let out = ok(&slant(&[
        "score",
        "--model",
        m.to_str().unwrap(),
        "--format",
        "plain",
        csv_path,
    ]));
    assert_eq!(out.lines().count(), 3);
    let out = slant_stdin(
        &["score", "--model", m.to_str().unwrap(), "--heads", "nope"],
        "x\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no head \"nope\""));
}

#[test]
fn score_an_article_applies_headline_heads_to_the_title_only() {
    let dir = tempfile::tempdir().unwrap();
    let m = train_fixture(dir.path());
    let info = ok(&slant(&["info", "--model", m.to_str().unwrap()]));
    assert!(info.contains("headline"), "{info}");
    let text =
        "Council approves new budget for bridge repairs. You won't believe this kitchen trick!!";
    let article = |extra: &[&str]| -> ArticleResponse {
        let mut args = vec!["score", "--model", m.to_str().unwrap(), "--article"];
        args.extend_from_slice(extra);
        args.push("-");
        let out = ok(&slant_stdin(&args, text));
        assert_eq!(out.lines().count(), 1, "{out}");
        serde_json::from_str(&out).unwrap()
    };
    let a = article(&[
        "--title",
        "  You won't believe what happened next  ",
        "--explain",
        "2",
    ]);
    // The title first (offsets into the title, trimmed), then the body as
    // ScoreArticle splits it.
    assert!(a.passages[0].in_title);
    assert_eq!((a.passages[0].start, a.passages[0].end), (0, 36));
    let body: Vec<_> = a.passages[1..]
        .iter()
        .map(|p| p.start as usize..p.end as usize)
        .collect();
    assert_eq!(body, split_article(text, 64 * 1024));
    let names = |p: &ScoredPassage| -> Vec<String> {
        p.score
            .as_ref()
            .unwrap()
            .heads
            .iter()
            .map(|h| h.head.clone())
            .collect()
    };
    assert_eq!(names(&a.passages[0]), ["sentiment", "clickbait"]);
    for p in &a.passages[1..] {
        assert_eq!(names(p), ["sentiment"]);
    }
    let basis: Vec<(&str, &str)> = a
        .summary
        .iter()
        .map(|h| (h.head.as_str(), h.basis.as_str()))
        .collect();
    assert_eq!(basis, [("sentiment", "passages"), ("clickbait", "title")]);
    assert_eq!(a.summary[1].label, "clickbait");
    // No title: the clickbait head reads nothing, and the summary says so.
    let a = article(&["--heads", "clickbait"]);
    assert!(a.passages.iter().all(|p| names(p).is_empty()));
    assert_eq!(a.summary[0].basis, "none");
    assert!(a.summary[0].probabilities.is_empty());
    // --title without --article is refused by the parser.
    let out = slant(&["score", "--title", "x", "--model", m.to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn bad_inputs_are_named_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let m = train_fixture(dir.path());
    let m = m.to_str().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"text\":\"fine\",\"label\":\"positive\"}\n{\"text\":\"x\",\"label\":\"happy\"}\n",
    )
    .unwrap();
    let out = slant(&[
        "eval",
        "--model",
        m,
        "--head",
        "sentiment",
        "--data",
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:2: unknown label \"happy\""),
        "{err}"
    );
    // --skip-invalid goes on and says how many it skipped.
    let out = slant(&[
        "eval",
        "--model",
        m,
        "--head",
        "sentiment",
        "--data",
        bad.to_str().unwrap(),
        "--skip-invalid",
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 1 invalid lines"));

    std::fs::write(&bad, b"{\"text\":\"ok\"}\n\xff\xfe\n").unwrap();
    let out = slant(&["score", "--model", m, bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.jsonl:2: not valid UTF-8"));

    // A corrupted and a truncated model file: named, typed, no panic.
    let bytes = std::fs::read(m).unwrap();
    let corrupt = dir.path().join("corrupt.slant");
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    std::fs::write(&corrupt, &flipped).unwrap();
    let out = slant(&["info", "--model", corrupt.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt.slant: checksum mismatch"), "{err}");
    std::fs::write(&corrupt, &bytes[..40]).unwrap();
    let err =
        String::from_utf8_lossy(&slant(&["info", "--model", corrupt.to_str().unwrap()]).stderr)
            .to_string();
    assert!(err.contains("corrupt.slant: truncated"), "{err}");
    assert!(!err.contains("panicked"));

    // A config naming a missing file.
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[[heads]]\nname = \"s\"\nlabels = [\"a\", \"b\"]\ntrain = [{ path = \"missing.jsonl\" }]\ndev = [{ path = \"missing.jsonl\" }]\n",
    )
    .unwrap();
    let out = train(&cfg, &dir.path().join("x.slant"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.jsonl"));

    // A JSONL text that is not a string, and invalid JSON: file:line, and
    // the column said to be within that line.
    std::fs::write(
        &bad,
        "{\"text\": 5}\n{\"text\": \"ok\",}\n{\"text\": \"fine\"}\n",
    )
    .unwrap();
    let out = slant(&["score", "--model", m, bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.jsonl:1: the text field \"text\" must be a string, not a number"),
        "{err}"
    );
    let out = slant(&[
        "score",
        "--model",
        m,
        "--skip-invalid",
        bad.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("skipped 2 invalid lines"), "{err}");
    std::fs::write(&bad, "{\"text\": \"ok\",}\n").unwrap();
    let err =
        String::from_utf8_lossy(&slant(&["score", "--model", m, bad.to_str().unwrap()]).stderr)
            .to_string();
    assert!(
        err.contains("bad.jsonl:1: invalid JSON at column 15 of that line: trailing comma"),
        "{err}"
    );

    // eval with a missing column: the file's columns and the flag.
    let out = slant(&[
        "eval",
        "--model",
        m,
        "--head",
        "clickbait",
        "--data",
        "data/fixtures/clickbait_dev.tsv",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no column \"text\" (the file has")
            && err.contains("--text-field picks another"),
        "{err}"
    );

    // Each cause is said once: the directory error is not repeated.
    let out = slant(&["info", "--model", dir.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("a directory, not a regular file").count(),
        1,
        "{err}"
    );
    // A relative model path that fails says where it was looked for.
    let out = slant(&["info", "--model", "no/such/model.slant"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let looked = Path::new(env!("CARGO_MANIFEST_DIR")).join("no/such/model.slant");
    assert!(
        err.contains(&format!("looked for {}", looked.display())),
        "{err}"
    );
    // A TOML error's snippet is shown once.
    std::fs::write(&cfg, "heads = [\n").unwrap();
    let out = train(&cfg, Path::new("x.slant"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("heads = [").count(), 1, "{err}");

    // train needs --out: it never writes a default path of its own.
    let out = slant(&["train", "--config", "data/fixtures/fixture.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
}

#[test]
fn bench_score_times_the_corpus_and_its_stages() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_fixture(dir.path());
    // The corpus: the text of every `*/train.jsonl`, folders sorted.
    let corpus = dir.path().join("corpus");
    let folders = [
        ("b", ["SHOCKING news!!", "the senator lied"]),
        ("a", ["café Über alles", "calm day"]),
    ];
    for (folder, texts) in folders {
        std::fs::create_dir_all(corpus.join(folder)).unwrap();
        let lines: Vec<String> = texts
            .iter()
            .map(|t| serde_json::json!({"text": t, "label": "x"}).to_string() + "\n")
            .collect();
        std::fs::write(corpus.join(folder).join("train.jsonl"), lines.concat()).unwrap();
    }
    let bench = |corpus: &Path, extra: &[&str]| {
        let mut args = vec![
            "bench",
            "score",
            "--model",
            model.to_str().unwrap(),
            "--corpus",
            corpus.to_str().unwrap(),
            "--passages",
            "1000",
        ];
        args.extend_from_slice(extra);
        slant(&args)
    };
    let json = |extra: &[&str]| {
        let args = [&["--json"], extra].concat();
        serde_json::from_str::<Value>(&ok(&bench(&corpus, &args))).unwrap()
    };
    let plain = json(&[]);
    assert_eq!(plain["passages"], 1000);
    assert_eq!(plain["heads"], 2);
    assert!(plain["passages_per_s"].as_f64().unwrap() > 0.0);
    assert!(plain.get("stages").is_none(), "{plain}");
    // 250 rounds of the 4 passages (UTF-8 bytes: é and Ü take two).
    let bytes: usize = folders
        .iter()
        .flat_map(|(_, texts)| texts)
        .map(|t| t.len())
        .sum();
    assert!((plain["mb"].as_f64().unwrap() - 250.0 * bytes as f64 / 1e6).abs() < 1e-9);
    let staged = json(&["--stages"]);
    let stages = staged["stages"].as_array().unwrap();
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tokenize", "words", "chars", "all"]);
    assert!(stages
        .iter()
        .all(|s| s["ns_per_passage"].as_f64().unwrap() > 0.0));

    // Against peers: their command runs before slant in every round, and
    // each peer's ratio is the median of the rounds' own ratios.
    let peer = r#"echo fitting; echo '{"peer": "steady", "passages_per_s": 100}'"#;
    let versus = json(&["--rounds", "3", "--peers", "sh", "-c", peer]);
    let rounds = versus["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    let mut rates: Vec<f64> = rounds
        .iter()
        .map(|r| {
            assert_eq!(r["peers"][0]["peer"], "steady");
            r["passages_per_s"].as_f64().unwrap()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let ratios: Vec<f64> = rates.iter().map(|r| r / 100.0).collect();
    let v = &versus["versus"][0];
    assert_eq!(v["peer"], "steady");
    assert_eq!(v["rounds"], 3);
    assert_eq!(v["ratio"].as_f64().unwrap(), ratios[1]);
    assert_eq!(v["min_ratio"].as_f64().unwrap(), ratios[0]);
    assert_eq!(v["max_ratio"].as_f64().unwrap(), ratios[2]);
    // The report leads with the median round.
    assert_eq!(versus["passages_per_s"].as_f64().unwrap(), rates[1]);
    let text = ok(&bench(&corpus, &["--peers", "sh", "-c", peer]));
    assert!(text.contains("x steady: median of 1 round (min "), "{text}");
    // A peers' command that fails, or prints no rate, stops the bench
    // with the command named.
    for (command, says) in [
        ("echo oops >&2; exit 3", "oops"),
        ("echo nothing", "no peer's rate"),
    ] {
        let out = bench(&corpus, &["--peers", "sh", "-c", command]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(command) && err.contains(says), "{err}");
    }

    // A folder without any `*/train.jsonl` is refused, by name.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = bench(&empty, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(empty.to_str().unwrap()), "{err}");
}

/// The committed default model holds its measured figures on every test
/// split of data/eval.toml.
#[test]
#[ignore = "needs ../shared/datasets; .ci/run runs it with --ignored"]
fn accuracy_of_the_default_model_on_the_shared_test_splits() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    assert!(
        data.is_dir(),
        "{} is absent: this test checks the default model on the shared test splits",
        data.display()
    );
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.slant");
    meets(&model, |b| b.3);
}

/// The shared test splits' bars for the committed default model and for
/// data/mixture.toml's: (head, set as data/eval.toml names it, metric, at
/// least for the default, at least for the mixture). Each is the model's
/// measured figure (models/MODEL_CARD.md; its "Mixture" section) less a
/// margin of about 0.01 (0.025 on SemEval's 149 headlines), so a retrain
/// that loses ground fails. Where they sit under the issue's bars, the
/// model card says so. The last five are the share of ordinary reporting
/// NOT called fake: the issue's two (at most 15% fake), then financial
/// sentences, news headlines and Stop Clickbait's news headlines.
#[rustfmt::skip]
const TEST_BARS: [(&str, &str, &str, f64, f64); 16] = [
    ("sentiment",       "sentiment_sst3/test.jsonl",         "macro_f1", 0.555, 0.555),
    ("sentiment",       "sentiment_sst2/test.jsonl",         "accuracy", 0.81,  0.81),
    ("sentiment",       "sentiment_newsmtsc/test.jsonl",     "macro_f1", 0.615, 0.63),
    ("sentiment",       "semeval2007_affective/test.jsonl",  "macro_f1", 0.54,  0.54),
    ("sentiment",       "sentfin/test.jsonl",                "macro_f1", 0.835, 0.83),
    ("sentiment",       "twitter_financial_news/test.jsonl", "macro_f1", 0.755, 0.745),
    ("sensational",     "sensational/test.jsonl",            "macro_f1", 0.66,  0.68),
    ("sensational",     "babe/test.jsonl",                   "macro_f1", 0.675, 0.675),
    ("clickbait",       "clickbait/test.jsonl",              "macro_f1", 0.975, 0.97),
    ("clickbait",       "webis_clickbait17/test.jsonl",      "macro_f1", 0.72,  0.71),
    ("misinformation",  "misinformation_liar/test.jsonl",    "macro_f1", 0.59,  0.595),
    ("misinformation",  "sentiment_newsmtsc/test.jsonl",     "accuracy", 0.85,  0.89),
    ("misinformation",  "babe/test.jsonl",                   "accuracy", 0.85,  0.86),
    ("misinformation",  "sentfin/test.jsonl",                "accuracy", 0.98,  0.98),
    ("misinformation",  "semeval2007_affective/test.jsonl",  "accuracy", 0.86,  0.85),
    ("misinformation",  "clickbait/test.jsonl",              "accuracy", 0.86,  0.86),
];

/// Checks `model` on data/eval.toml's sets against its column of
/// [`TEST_BARS`] (`bar` picks it), and that every set reports its
/// calibration.
fn meets(model: &Path, bar: impl Fn(&(&str, &str, &str, f64, f64)) -> f64) {
    let out = ok(&slant(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--config",
        "data/eval.toml",
        "--json",
    ]));
    let r: Value = serde_json::from_str(&out).unwrap();
    let sets = r["sets"].as_array().unwrap();
    for b @ &(head, file, metric, _, _) in &TEST_BARS {
        let bar = bar(b);
        let set = sets
            .iter()
            .find(|s| s["head"] == head && s["data"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("data/eval.toml has no {head} set {file}"));
        let got = set[metric].as_f64().unwrap();
        assert!(got >= bar, "{head} on {file}: {metric} {got:.4} < {bar}");
        // Calibration is reported per set.
        assert!(set["ece"].as_f64().is_some(), "{head} on {file}: no ECE");
    }
}

/// The mixture config (data/mixture.toml) on the shared test splits. CI
/// trains it with the release binary (a debug build would take minutes)
/// and names the model in `SLANT_MIXTURE_MODEL`.
#[test]
#[ignore = "needs a model trained from data/mixture.toml; .ci/run trains it and runs this with --ignored"]
fn accuracy_of_the_mixture_config_on_the_shared_test_splits() {
    let model = std::env::var_os("SLANT_MIXTURE_MODEL").unwrap_or_else(|| {
        panic!("SLANT_MIXTURE_MODEL is unset: train data/mixture.toml and name the model there")
    });
    meets(Path::new(&model), |b| b.4);
}
