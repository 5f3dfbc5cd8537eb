//! The page at `/` in a real browser: Debian's chromium, headless, driven
//! over WebDriver by chromedriver. It loads the page from a server started
//! here, fills the headline and the article, presses Score, and checks
//! that the passages shown (their offsets, sensational scores, tints and
//! underlines) are the API's answer for the same text; that hovering or
//! focusing a passage shows its scores; and that an error from the server
//! is shown in words. It saves a screenshot to docs/page.png.
//!
//! Ignored by a plain `cargo test` (it needs the browser); `.ci/run`
//! installs `chromium` and `chromium-driver` and runs it with
//! `-- --ignored`. Without them it says so and fails under CI (`CI` set),
//! and skips with a loud line elsewhere.

#[allow(dead_code)] // shared with tests/http.rs
mod common_http;
#[allow(dead_code)] // shared by the service tests, each using a part of it
mod common_service;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common_http::{Client, Version};
use http::Method;
use serde_json::{json, Value};
use slant::service::ServerConfig;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The page's tint: this much red at probability 1.
const TINT: f64 = 0.55;

const TITLE: &str = "You Won't Believe What the Council Just Did to Your Water Bill";
const ARTICLE: &str = "The city council voted 5-2 on Tuesday to raise water rates by 4 percent from July, citing the cost of replacing ageing pipes.\n\n\
Residents are FURIOUS. Critics called it a shocking betrayal that will devastate struggling families!!\n\n\
The utility said the average household will pay about $2.10 more a month. A public hearing on the budget is scheduled for next week.\n\n\
Experts warn the crisis could spiral out of control, sparking panic across the region.";

/// A WebDriver session on chromedriver.
struct Driver {
    client: Client,
    session: String,
}

impl Driver {
    async fn call(&mut self, method: Method, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        wd(&mut self.client, method, &path, body).await
    }

    async fn find(&mut self, css: &str) -> String {
        let v = self
            .call(
                Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn type_into(&mut self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            Method::POST,
            &format!("/element/{id}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&mut self, css: &str) {
        let id = self.find(css).await;
        self.call(Method::POST, &format!("/element/{id}/click"), json!({}))
            .await;
    }

    async fn script(&mut self, script: &str) -> Value {
        self.call(
            Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Runs `script` until it returns something truthy, for at most 10 s.
    async fn wait_for(&mut self, script: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.script(script).await;
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            assert!(Instant::now() < until, "timed out waiting for {script}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn wd(client: &mut Client, method: Method, path: &str, body: Value) -> Value {
    let body = if method == Method::GET || method == Method::DELETE {
        String::new()
    } else {
        body.to_string()
    };
    let answer = client
        .send(method, path, &[("content-type", "application/json")], body)
        .await;
    let v = answer.json();
    assert!(
        answer.status.is_success(),
        "WebDriver {path}: {} {v}",
        answer.status
    );
    v["value"].clone()
}

/// What the page should show for one API passage: its sensational
/// probability and the byte ranges (in the passage's text) of the
/// contributions that pushed the sensational head towards its positive
/// label, merged, as the page's `drivers` does.
fn expected(p: &Value) -> (f64, Vec<(u64, u64)>) {
    let heads = p["score"]["heads"].as_array().unwrap();
    let sens = heads.iter().find(|h| h["head"] == "sensational").unwrap();
    let probs = sens["probabilities"].as_array().unwrap();
    let prob = probs[1]["probability"].as_f64().unwrap();
    // Contributions are signed towards `explainedLabel` (the positive
    // label, for word explanations of a two-class head).
    let towards = if sens["explainedLabel"] == probs[1]["label"] {
        1.0
    } else {
        -1.0
    };
    let start = p["start"].as_u64().unwrap();
    let len = p["end"].as_u64().unwrap() - start;
    let mut spans: Vec<(u64, u64)> = sens["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["weight"].as_f64().unwrap() * towards > 0.0)
        .flat_map(|c| c["spans"].as_array().unwrap().clone())
        .map(|s| (s["start"].as_u64().unwrap(), s["end"].as_u64().unwrap()))
        .filter(|&(s, e)| s < e && e <= len)
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    (
        prob,
        merged
            .into_iter()
            .map(|(s, e)| (start + s, start + e))
            .collect(),
    )
}

/// The alpha of a computed `rgba(r, g, b, a)` colour (1 for `rgb(...)`).
fn alpha(css: &str) -> f64 {
    let inner = css
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')');
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if parts.len() == 4 {
        parts[3].parse().unwrap()
    } else {
        1.0
    }
}

/// A child process, killed when dropped (also when the test fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver; .ci/run installs them and runs it"]
async fn the_page_shows_an_articles_framing_in_a_real_browser() {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "the browser test DID NOT RUN: {} missing (apt-get install -y chromium chromium-driver)",
            missing.join(" and ")
        );
        if std::env::var_os("CI").is_some() {
            panic!("{why}");
        }
        eprintln!("SKIPPED: {why}");
        return;
    }

    // The server, with the committed default model, on 127.0.0.1:0.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = ServerConfig::new(root.join("models/default.slant"));
    config.limits.max_article_bytes = 20_000;
    let server = common_service::serve(config).await;
    let addr = server.addr;

    // chromedriver, and a headless chromium with a fresh profile.
    let port = free_port();
    let _driver_process = Killed(
        std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let driver_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let started = Instant::now();
    let mut client = loop {
        if let Ok(tcp) = tokio::net::TcpStream::connect(driver_addr).await {
            drop(tcp);
            break Client::connect(driver_addr, Version::H1).await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let profile = tempfile::tempdir().unwrap();
    let session = wd(
        &mut client,
        Method::POST,
        "/session",
        json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}}),
    )
    .await;
    let session = session["sessionId"].as_str().unwrap().to_string();
    let mut d = Driver { client, session };
    d.call(
        Method::POST,
        "/window/rect",
        json!({"width": 1000, "height": 1500}),
    )
    .await;
    d.call(
        Method::POST,
        "/url",
        json!({"url": format!("http://{addr}/")}),
    )
    .await;

    // An empty form: an error in words, no request.
    d.click("#score").await;
    let error = d
        .wait_for("var e = document.getElementById('error'); return !e.hidden && e.textContent;")
        .await;
    assert!(
        error.as_str().unwrap().contains("Nothing to score"),
        "{error}"
    );

    // A reader types a headline and an article and presses Score.
    d.type_into("#title", TITLE).await;
    d.type_into("#article", ARTICLE).await;
    d.click("#score").await;
    d.wait_for("return document.querySelectorAll('.passage').length;")
        .await;
    let shown = d
        .script(
            "return Array.from(document.querySelectorAll('.passage')).map(function (p) {
               return {
                 start: +p.dataset.start, end: +p.dataset.end,
                 sensational: p.dataset.sensational, title: p.dataset.inTitle === 'true',
                 background: getComputedStyle(p).backgroundColor,
                 underlines: Array.from(p.querySelectorAll('u.drive')).map(function (u) {
                   return [+u.dataset.start, +u.dataset.end, getComputedStyle(u).textDecorationLine];
                 })
               };
             });",
        )
        .await;
    let shown = shown.as_array().unwrap();

    // The API's answer for the same text.
    let mut api = Client::connect(addr, Version::H1).await;
    let answer = api
        .post_json(
            "/v1/score-article",
            &json!({"text": ARTICLE, "title": TITLE, "explain": 5}),
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer = answer.json();
    let passages = answer["passages"].as_array().unwrap();
    assert_eq!(
        shown.len(),
        passages.len(),
        "one .passage per scored passage"
    );
    assert!(passages.len() >= 4, "{answer}");
    let mut underlined = 0;
    for p in passages {
        let in_title = p["inTitle"].as_bool().unwrap();
        let (start, end) = (p["start"].as_u64().unwrap(), p["end"].as_u64().unwrap());
        let el = shown
            .iter()
            .find(|s| s["title"] == in_title && s["start"] == start && s["end"] == end)
            .unwrap_or_else(|| panic!("no .passage for {p}"));
        let (prob, drivers) = expected(p);
        assert_eq!(el["sensational"], format!("{prob:.3}"), "{el}");
        let a = alpha(el["background"].as_str().unwrap());
        assert!(
            (a - prob * TINT).abs() < 0.01,
            "tint {a} for p = {prob}: {el}"
        );
        let got: Vec<(u64, u64)> = el["underlines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                assert_eq!(u[2], "underline", "{u}");
                (u[0].as_u64().unwrap(), u[1].as_u64().unwrap())
            })
            .collect();
        assert_eq!(got, drivers, "underlines of {el}");
        underlined += got.len();
    }
    assert!(underlined > 0, "nothing underlined: {answer}");
    // The more sensational passages are tinted deeper.
    let tints: Vec<f64> = shown
        .iter()
        .map(|s| alpha(s["background"].as_str().unwrap()))
        .collect();
    assert!(
        tints.iter().any(|&t| t > 0.2) && tints.iter().any(|&t| t < 0.2),
        "{tints:?}"
    );

    // A summary bar per head, and the headline's clickbait score.
    let heads = d
        .script("return Array.from(document.querySelectorAll('#summary .head')).map(function (h) { return h.dataset.head; });")
        .await;
    let summary: Vec<&str> = answer["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["head"].as_str().unwrap())
        .collect();
    assert_eq!(heads, json!(summary));
    let title = passages.iter().find(|p| p["inTitle"] == true).unwrap();
    let clickbait = title["score"]["heads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["head"] == "clickbait")
        .unwrap()["probabilities"][1]["probability"]
        .as_f64()
        .unwrap();
    let shown_clickbait = d
        .script("return document.getElementById('clickbait').dataset.clickbait;")
        .await;
    assert_eq!(shown_clickbait, format!("{clickbait:.3}"));

    // Keyboard focus on a passage shows its scores and contributions.
    let detail = d
        .script(
            "var p = document.querySelectorAll('#passages .passage')[1]; p.focus();
             return document.activeElement === p && document.getElementById('detail').textContent;",
        )
        .await;
    let detail = detail.as_str().unwrap_or("");
    for needle in ["sensational", "sentiment", "%"] {
        assert!(detail.contains(needle), "{needle} not in {detail:?}");
    }
    // Clickbait reads headlines: a body passage has no clickbait score.
    assert!(!detail.contains("clickbait"), "{detail:?}");

    // The screenshot: the results in view, the second passage focused.
    d.script("window.scrollTo(0, document.getElementById('results').offsetTop - 8); return true;")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.script("document.activeElement.blur(); document.querySelectorAll('#passages .passage')[1].focus({preventScroll: true}); return true;")
        .await;
    let png = d.call(Method::GET, "/screenshot", Value::Null).await;
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(root.join("docs/page.png"), &png).unwrap();
    eprintln!(
        "browser test: {} passages checked, {underlined} underlines; screenshot in docs/page.png",
        passages.len()
    );

    // An error from the server, in words: an article over max-article-bytes.
    d.script(&format!(
        "document.getElementById('article').value = 'word '.repeat({}); return true;",
        5_000
    ))
    .await;
    d.click("#score").await;
    let error = d
        .wait_for("var e = document.getElementById('error'); return !e.hidden && e.textContent;")
        .await;
    let error = error.as_str().unwrap();
    assert!(
        error.contains("could not score") && error.contains("max-article-bytes"),
        "{error}"
    );

    // On a phone-sized screen nothing runs off the side.
    d.script(&format!(
        "document.getElementById('article').value = {}; return true;",
        serde_json::to_string(ARTICLE).unwrap()
    ))
    .await;
    d.call(
        Method::POST,
        "/window/rect",
        json!({"width": 390, "height": 844}),
    )
    .await;
    d.click("#score").await;
    let fits = d
        .wait_for(
            "return window.innerWidth <= 430 && document.querySelectorAll('.passage').length > 0
               && document.documentElement.scrollWidth <= window.innerWidth
               && [document.documentElement.scrollWidth, window.innerWidth];",
        )
        .await;
    eprintln!("phone-sized: page width, window width = {fits}");
    let png = d.call(Method::GET, "/screenshot", Value::Null).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    let phone = root.join("target/page-phone.png");
    std::fs::write(&phone, &png).unwrap();

    d.call(Method::DELETE, "", Value::Null).await;
    server.stop().await;
}
