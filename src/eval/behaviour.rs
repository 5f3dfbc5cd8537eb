//! Behaviour suites: a model's heads against sentences made from
//! templates, by capability (vocabulary, negation, contrast, robustness to
//! links and typos, …), in the manner of CheckList (Ribeiro et al., "Beyond
//! Accuracy: Behavioral Testing of NLP Models with CheckList", ACL 2020).
//! Accuracy on a labeled set says how often a head is right on data like
//! its own; a suite says which kinds of sentence it gets wrong.
//!
//! ```toml
//! [fill]                                  # what each {placeholder} takes
//! thing = ["flight", "meal"]
//! good = ["great", "pleasant"]
//!
//! [[tests]]                               # a label it must give
//! name = "plain praise"
//! capability = "vocabulary"
//! head = "sentiment"
//! templates = ["The {thing} was {good}."]
//! label = "positive"
//!
//! [[tests]]                               # a label it must not give
//! name = "negated praise"
//! capability = "negation"
//! head = "sentiment"
//! templates = ["The {thing} was not {good}."]
//! not = "positive"
//!
//! [[tests]]                               # edits that must not change it
//! name = "a link appended"
//! capability = "robustness"
//! head = "sentiment"
//! templates = ["The {thing} was {good}."]
//! append = [" https://t.co/Xk3Lq9Zp2a"]   # also: prepend = [...], typo = true
//!
//! [[tests]]                               # edits that must move it one way
//! name = "intensified praise"
//! capability = "intensifiers"
//! head = "sentiment"
//! templates = ["The {thing} was {good}."]
//! edited = ["The {thing} was very {good}."]   # one for each template
//! raises = "positive"                     # or lowers = "..."; tolerance = 0.0
//! ```
//!
//! A template is filled with every combination of its placeholders' words
//! (and its edited form, if any, with the same words), in order (at most
//! `max_cases`, spread evenly over them). A case of a test of edits fails
//! when any of its edited forms gets another label than the sentence
//! itself (no `raises` or `lowers`: an invariance test), or a lower
//! probability of the `raises` label (a higher one of the `lowers` label)
//! by more than `tolerance`: a directional test. Everything is
//! deterministic: the same suite and model give the same report.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::{read_toml, TomlFileError};
use crate::model::{Model, Workspace};

/// Cases per test when the test does not say.
pub const DEFAULT_MAX_CASES: usize = 200;
/// The most cases a test may ask for.
pub const MAX_CASES: usize = 100_000;

/// A suite as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Each placeholder's words.
    #[serde(default)]
    pub fill: BTreeMap<String, Vec<String>>,
    pub tests: Vec<TestSpec>,
}

/// One test as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    pub name: String,
    pub capability: String,
    pub head: String,
    pub templates: Vec<String>,
    /// The label every case must get.
    #[serde(default)]
    pub label: Option<String>,
    /// A label no case may get.
    #[serde(default)]
    pub not: Option<String>,
    /// Texts appended to each case: each must keep its label.
    #[serde(default)]
    pub append: Vec<String>,
    /// Texts put before each case: each must keep its label.
    #[serde(default)]
    pub prepend: Vec<String>,
    /// Two neighbouring letters of each case's longest word swapped: it
    /// must keep its label.
    #[serde(default)]
    pub typo: bool,
    /// Edited templates, one for each of `templates`, filled with the same
    /// words: "The {thing} was very {good}." beside "The {thing} was
    /// {good}.".
    #[serde(default)]
    pub edited: Vec<String>,
    /// A label whose probability each edit must not lower (by more than
    /// `tolerance`): a directional test.
    #[serde(default)]
    pub raises: Option<String>,
    /// A label whose probability each edit must not raise (by more than
    /// `tolerance`).
    #[serde(default)]
    pub lowers: Option<String>,
    #[serde(default)]
    pub tolerance: f64,
    #[serde(default)]
    pub max_cases: Option<usize>,
}

/// What a test expects of each case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    Label(usize),
    Not(usize),
    /// The case's edited forms keep its label.
    Same,
    /// The case's edited forms do not lower this label's probability by
    /// more than the tolerance.
    Raises(usize, f64),
    /// Nor raise it.
    Lowers(usize, f64),
}

/// A case: a filled template and its edited forms.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub text: String,
    pub edited: Vec<String>,
}

/// An edit made to every case of a test.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    Append(String),
    Prepend(String),
    Typo,
}

impl Edit {
    /// The edited passage, or `None` when the edit does not apply (a typo
    /// in a passage without a word of four letters).
    pub fn apply(&self, passage: &str) -> Option<String> {
        match self {
            Edit::Append(s) => Some(format!("{passage}{s}")),
            Edit::Prepend(s) => Some(format!("{s}{passage}")),
            Edit::Typo => typo(passage),
        }
    }
}

/// Swaps two neighbouring letters in the middle of the passage's longest
/// word (the first, on ties) of at least four letters: "great" → "gerat".
pub fn typo(passage: &str) -> Option<String> {
    let mut best: Option<(usize, usize)> = None;
    let mut start = None;
    for (i, c) in passage
        .char_indices()
        .chain(std::iter::once((passage.len(), ' ')))
    {
        match (c.is_alphabetic(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let letters = passage[s..i].chars().count();
                if letters >= 4
                    && best.is_none_or(|(bs, be)| passage[bs..be].chars().count() < letters)
                {
                    best = Some((s, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    let (s, e) = best?;
    let mut letters: Vec<char> = passage[s..e].chars().collect();
    // The pair nearest the middle whose letters differ ("good": "ogod").
    let middle = letters.len() / 2 - 1;
    let i = (0..letters.len() - 1)
        .filter(|&i| letters[i] != letters[i + 1])
        .min_by_key(|&i| (i.abs_diff(middle), i))?;
    letters.swap(i, i + 1);
    let word: String = letters.into_iter().collect();
    Some(format!("{}{}{}", &passage[..s], word, &passage[e..]))
}

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    File(#[from] TomlFileError),
    #[error("the suite lists no [[tests]]")]
    NoTests,
    #[error("test {test:?}: {problem}")]
    Test { test: String, problem: String },
}

fn problem(test: &TestSpec, problem: impl Into<String>) -> SuiteError {
    SuiteError::Test {
        test: test.name.clone(),
        problem: problem.into(),
    }
}

impl Suite {
    pub fn load(path: &Path) -> Result<Self, SuiteError> {
        Ok(read_toml(path)?)
    }

    /// Runs every test against `model`; a test the model cannot run (an
    /// unknown head or label, a placeholder the suite does not fill) is an
    /// error naming the test, before anything is scored.
    pub fn run(&self, model: &Model, examples: usize) -> Result<Vec<TestReport>, SuiteError> {
        if self.tests.is_empty() {
            return Err(SuiteError::NoTests);
        }
        let planned = self
            .tests
            .iter()
            .map(|t| self.plan(model, t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ws = Workspace::default();
        Ok(planned
            .into_iter()
            .zip(&self.tests)
            .map(|((head, expect, cases), t)| {
                run_test(model, &mut ws, t, head, expect, &cases, examples)
            })
            .collect())
    }

    /// A test's head, what it expects and its cases.
    fn plan(&self, model: &Model, t: &TestSpec) -> Result<(usize, Expect, Vec<Case>), SuiteError> {
        let Some(head) = model.head_index(&t.head) else {
            let known: Vec<&str> = model.heads().iter().map(|h| h.name.as_str()).collect();
            return Err(problem(
                t,
                format!(
                    "the model has no head {:?} (heads: {})",
                    t.head,
                    known.join(", ")
                ),
            ));
        };
        let labels = &model.heads()[head].labels;
        let label = |l: &str| {
            labels.iter().position(|x| x == l).ok_or_else(|| {
                problem(
                    t,
                    format!(
                        "head {:?} has no label {l:?} (labels: {})",
                        t.head,
                        labels.join(", ")
                    ),
                )
            })
        };
        let mut edits: Vec<Edit> = t.append.iter().cloned().map(Edit::Append).collect();
        edits.extend(t.prepend.iter().cloned().map(Edit::Prepend));
        if t.typo {
            edits.push(Edit::Typo);
        }
        let edited = !edits.is_empty() || !t.edited.is_empty();
        let tolerance = t.tolerance;
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Err(problem(
                t,
                format!("tolerance {tolerance} is not a number ≥ 0"),
            ));
        }
        let expect = match (&t.label, &t.not, &t.raises, &t.lowers, edited) {
            (Some(l), None, None, None, false) => Expect::Label(label(l)?),
            (None, Some(l), None, None, false) => Expect::Not(label(l)?),
            (None, None, None, None, true) => Expect::Same,
            (None, None, Some(l), None, true) => Expect::Raises(label(l)?, tolerance),
            (None, None, None, Some(l), true) => Expect::Lowers(label(l)?, tolerance),
            _ => {
                return Err(problem(
                    t,
                    "give `label` or `not` without edits, or edits (`edited`, `append`, \
                     `prepend`, `typo`) with `raises`, `lowers` or neither (same label)",
                ))
            }
        };
        if t.templates.is_empty() {
            return Err(problem(t, "lists no templates"));
        }
        if !t.edited.is_empty() && t.edited.len() != t.templates.len() {
            return Err(problem(
                t,
                format!(
                    "has {} templates but {} edited ones: give one edited template for each",
                    t.templates.len(),
                    t.edited.len()
                ),
            ));
        }
        let max = t.max_cases.unwrap_or(DEFAULT_MAX_CASES);
        if max == 0 {
            return Err(problem(t, "max_cases must be at least 1"));
        }
        if max > MAX_CASES {
            return Err(problem(t, format!("max_cases must be at most {MAX_CASES}")));
        }
        let mut fillings = Vec::with_capacity(t.templates.len());
        for (i, template) in t.templates.iter().enumerate() {
            let other = t.edited.get(i).map(String::as_str);
            fillings.push(self.filling(template, other).map_err(|p| problem(t, p))?);
        }
        let total = fillings
            .iter()
            .try_fold(0usize, |n, f| n.checked_add(f.total))
            .ok_or_else(|| problem(t, "has too many fillings to count"))?;
        let cases = spread(total, max)
            .filter_map(|mut k| {
                // Case k of the templates' fillings, one template's after another's.
                fillings.iter().find_map(|f| {
                    if k < f.total {
                        Some(f.fill(k))
                    } else {
                        k -= f.total;
                        None
                    }
                })
            })
            .map(|(text, other)| {
                let mut edited: Vec<String> = other.into_iter().collect();
                edited.extend(edits.iter().filter_map(|e| e.apply(&text)));
                Case { text, edited }
            })
            .collect();
        Ok((head, expect, cases))
    }

    /// A template and, when given, its edited form, ready to fill with
    /// the words of their placeholders (those of both, numbered in the
    /// order they first appear), and how many fillings they have (an error
    /// when that would not fit a `usize`).
    fn filling<'s>(
        &'s self,
        template: &'s str,
        edited: Option<&'s str>,
    ) -> Result<Filling<'s>, String> {
        let mut names: Vec<&str> = Vec::new();
        let parts = parse_template(template, &mut names)?;
        let other = edited.map(|e| parse_template(e, &mut names)).transpose()?;
        let mut words: Vec<&[String]> = Vec::with_capacity(names.len());
        for n in &names {
            match self.fill.get(*n) {
                Some(w) if !w.is_empty() => words.push(w),
                Some(_) => return Err(format!("[fill] {n} is empty")),
                None => return Err(format!("placeholder {{{n}}} is not in [fill]")),
            }
        }
        let total = words
            .iter()
            .try_fold(1usize, |n, w| n.checked_mul(w.len()))
            .ok_or_else(|| format!("template {template:?} has too many fillings to count"))?;
        Ok(Filling {
            parts,
            other,
            words,
            total,
        })
    }
}

/// A template and its edited form, parsed, with their placeholders'
/// words: filling number `k` is made on demand, so a test capped at
/// `max_cases` makes only the cases it keeps, however many combinations
/// its words have.
struct Filling<'a> {
    parts: Vec<Part<'a>>,
    other: Option<Vec<Part<'a>>>,
    /// Each placeholder's words, by its number.
    words: Vec<&'a [String]>,
    total: usize,
}

impl Filling<'_> {
    /// Filling `k` (below `total`), the first placeholder's words varying
    /// slowest.
    fn fill(&self, mut k: usize) -> (String, Option<String>) {
        let mut pick = vec![""; self.words.len()];
        for (i, w) in self.words.iter().enumerate().rev() {
            pick[i] = w.get(k % w.len()).map_or("", String::as_str);
            k /= w.len();
        }
        let fill = |parts: &[Part]| {
            let mut s = String::new();
            for p in parts {
                match p {
                    Part::Text(t) => s.push_str(t),
                    Part::Slot(i) => s.push_str(pick.get(*i).copied().unwrap_or("")),
                }
            }
            s
        };
        (fill(&self.parts), self.other.as_deref().map(fill))
    }
}

enum Part<'a> {
    Text(&'a str),
    /// A placeholder, by its number in `names` (see [`parse_template`]).
    Slot(usize),
}

/// A template's text and `{placeholders}`; `{{` and `}}` are braces. Each
/// placeholder is numbered by its place in `names`, where a new one is
/// added.
fn parse_template<'a>(
    template: &'a str,
    names: &mut Vec<&'a str>,
) -> Result<Vec<Part<'a>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        if rest[i..].starts_with("{{") || rest[i..].starts_with("}}") {
            parts.push(Part::Text(&rest[..i + 1]));
            rest = &rest[i + 2..];
            continue;
        }
        if rest[i..].starts_with('}') {
            return Err(format!("template {template:?} has a `}}` without its `{{`"));
        }
        parts.push(Part::Text(&rest[..i]));
        let Some(end) = rest[i..].find('}') else {
            return Err(format!("template {template:?} has a `{{` without its `}}`"));
        };
        let name = &rest[i + 1..i + end];
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!(
                "template {template:?}: {{{name}}} is not a placeholder name"
            ));
        }
        let number = match names.iter().position(|n| *n == name) {
            Some(number) => number,
            None => {
                names.push(name);
                names.len() - 1
            }
        };
        parts.push(Part::Slot(number));
        rest = &rest[i + end + 1..];
    }
    parts.push(Part::Text(rest));
    Ok(parts)
}

/// Which of `n` cases a test keeps: at most `max`, evenly spread over
/// them, in order.
fn spread(n: usize, max: usize) -> impl Iterator<Item = usize> {
    let kept = n.min(max);
    // In u128, so that i · n cannot overflow for any n.
    (0..kept).map(move |i| (i as u128 * n as u128 / kept.max(1) as u128) as usize)
}

/// One test's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub name: String,
    pub capability: String,
    pub head: String,
    /// `label`, `not`, `same`, `raises` or `lowers`.
    pub kind: &'static str,
    /// The label expected (`label`), ruled out (`not`) or whose
    /// probability the edits must not lower (`raises`) or raise (`lowers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    pub cases: usize,
    pub failed: usize,
    pub failure_rate: f64,
    /// The first few failures.
    pub examples: Vec<Failure>,
    /// Another model's outcome on the same cases (see [`compare`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versus: Option<Versus>,
    /// Whether each case failed, in order.
    #[serde(skip)]
    pub outcomes: Vec<bool>,
}

/// Another model's failures on a test's cases, beside this model's:
/// `fixed` cases this model passes and the other fails, `broken` the
/// reverse.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Versus {
    pub model_id: String,
    pub failed: usize,
    pub failure_rate: f64,
    pub fixed: usize,
    pub broken: usize,
}

/// Sets each test's [`Versus`] from `other`, the same suite's reports for
/// another model (the same tests and cases, in the same order).
pub fn compare(reports: &mut [TestReport], other: &[TestReport], other_id: &str) {
    for (r, o) in reports.iter_mut().zip(other) {
        let pairs = || r.outcomes.iter().zip(&o.outcomes);
        r.versus = Some(Versus {
            model_id: other_id.to_string(),
            failed: o.failed,
            failure_rate: o.failure_rate,
            fixed: pairs().filter(|&(&mine, &theirs)| !mine && theirs).count(),
            broken: pairs().filter(|&(&mine, &theirs)| mine && !theirs).count(),
        });
    }
}

/// A failed case: the passage and the label it got; for a test of edits,
/// the edited passage that failed and its label too, and for a
/// directional test the two probabilities of the test's label.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub passage: String,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_probability: Option<f64>,
}

/// Head `head`'s decided label for `passage`, and the probability of
/// label `of`.
fn decide(
    model: &Model,
    ws: &mut Workspace,
    head: usize,
    passage: &str,
    of: usize,
) -> (usize, f64) {
    model.classify(passage, ws);
    ws.head(model, head).map_or((0, 0.0), |(p, label)| {
        (label, p.get(of).copied().unwrap_or(0.0))
    })
}

fn run_test(
    model: &Model,
    ws: &mut Workspace,
    t: &TestSpec,
    head: usize,
    expect: Expect,
    cases: &[Case],
    examples: usize,
) -> TestReport {
    let labels = &model.heads()[head].labels;
    let name = |i: usize| labels.get(i).cloned().unwrap_or_default();
    let of = match expect {
        Expect::Raises(l, _) | Expect::Lowers(l, _) => l,
        _ => 0,
    };
    let directional = matches!(expect, Expect::Raises(..) | Expect::Lowers(..));
    let mut shown = Vec::new();
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in cases {
        let (got, p) = decide(model, ws, head, &case.text, of);
        // `Some` when the case fails, with the edit that broke it (its
        // text, label and probability), if an edit did.
        let failure = match expect {
            Expect::Label(l) => (got != l).then_some(None),
            Expect::Not(l) => (got == l).then_some(None),
            Expect::Same | Expect::Raises(..) | Expect::Lowers(..) => {
                case.edited.iter().find_map(|e| {
                    let (other, q) = decide(model, ws, head, e, of);
                    let fails = match expect {
                        Expect::Raises(_, tol) => q < p - tol,
                        Expect::Lowers(_, tol) => q > p + tol,
                        _ => other != got,
                    };
                    fails.then_some(Some((e, other, q)))
                })
            }
        };
        outcomes.push(failure.is_some());
        if let Some(edited) = failure.filter(|_| shown.len() < examples) {
            shown.push(Failure {
                passage: case.text.clone(),
                label: name(got),
                edited: edited.map(|(e, _, _)| e.clone()),
                edited_label: edited.map(|(_, l, _)| name(l)),
                probability: directional.then_some(p),
                edited_probability: edited.filter(|_| directional).map(|(_, _, q)| q),
            });
        }
    }
    let failed = outcomes.iter().filter(|&&f| f).count();
    let (kind, expected) = match expect {
        Expect::Label(l) => ("label", Some(name(l))),
        Expect::Not(l) => ("not", Some(name(l))),
        Expect::Same => ("same", None),
        Expect::Raises(l, _) => ("raises", Some(name(l))),
        Expect::Lowers(l, _) => ("lowers", Some(name(l))),
    };
    TestReport {
        name: t.name.clone(),
        capability: t.capability.clone(),
        head: t.head.clone(),
        kind,
        expected,
        cases: cases.len(),
        failed,
        failure_rate: if cases.is_empty() {
            0.0
        } else {
            failed as f64 / cases.len() as f64
        },
        examples: shown,
        versus: None,
        outcomes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(toml: &str) -> Suite {
        toml::from_str(toml).unwrap()
    }

    impl Suite {
        /// Every filling of a template and, when given, its edited form.
        fn expand_pair(
            &self,
            template: &str,
            edited: Option<&str>,
        ) -> Result<Vec<(String, Option<String>)>, String> {
            let f = self.filling(template, edited)?;
            Ok((0..f.total).map(|k| f.fill(k)).collect())
        }

        /// Every filling of a template, the first placeholder's words
        /// varying slowest.
        fn expand(&self, template: &str) -> Result<Vec<String>, String> {
            Ok(self
                .expand_pair(template, None)?
                .into_iter()
                .map(|(t, _)| t)
                .collect())
        }
    }

    #[test]
    fn templates_fill_every_combination_in_order() {
        let s = suite(
            r#"
            tests = []
            [fill]
            a = ["x", "y"]
            b = ["1", "2", "3"]
            "#,
        );
        assert_eq!(
            s.expand("{a}-{b}-{a}").unwrap(),
            ["x-1-x", "x-2-x", "x-3-x", "y-1-y", "y-2-y", "y-3-y"]
        );
        assert_eq!(s.expand("no slots").unwrap(), ["no slots"]);
        assert_eq!(
            s.expand("{{literal}} {a}").unwrap(),
            ["{literal} x", "{literal} y"]
        );
    }

    #[test]
    fn bad_templates_are_named() {
        let s = suite("tests = []\n[fill]\na = [\"x\"]\nempty = []");
        assert!(s
            .expand("{b}")
            .unwrap_err()
            .contains("{b} is not in [fill]"));
        assert!(s.expand("{empty}").unwrap_err().contains("empty is empty"));
        assert!(s.expand("{a").unwrap_err().contains("without its"));
        assert!(s.expand("a}").unwrap_err().contains("without its"));
        assert!(s.expand("{a b}").unwrap_err().contains("not a placeholder"));
    }

    #[test]
    fn an_edited_template_takes_the_same_words() {
        let s = suite("tests = []\n[fill]\na = ['x', 'y']\nb = ['1', '2']");
        assert_eq!(
            s.expand_pair("{a} is {b}", Some("{a} is very {b}"))
                .unwrap(),
            [
                ("x is 1".to_string(), Some("x is very 1".to_string())),
                ("x is 2".into(), Some("x is very 2".into())),
                ("y is 1".into(), Some("y is very 1".into())),
                ("y is 2".into(), Some("y is very 2".into())),
            ]
        );
        // A placeholder of the edited form alone varies too, after the others.
        assert_eq!(
            s.expand_pair("{a}", Some("{a}{b}")).unwrap(),
            [
                ("x".to_string(), Some("x1".to_string())),
                ("x".into(), Some("x2".into())),
                ("y".into(), Some("y1".into())),
                ("y".into(), Some("y2".into())),
            ]
        );
        assert!(s
            .expand_pair("{a}", Some("{c}"))
            .unwrap_err()
            .contains("{c}"));
    }

    #[test]
    fn cases_are_spread_evenly_when_capped() {
        assert_eq!(
            spread(10, 20).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(spread(10, 4).collect::<Vec<_>>(), [0, 2, 5, 7]);
        assert_eq!(spread(0, 4).count(), 0);
        // However many there are, only the kept ones are counted out.
        let huge: Vec<usize> = spread(usize::MAX, 3).collect();
        assert_eq!(huge, [0, usize::MAX / 3, usize::MAX / 3 * 2]);
    }

    #[test]
    fn only_the_kept_cases_are_made_however_many_combinations() {
        let model = tiny();
        let words: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        let mut s = suite(
            "[[tests]]\nname = 'many'\ncapability = 'c'\nhead = 'sentiment'\ntemplates = []\nnot = 'negative'\nmax_cases = 5",
        );
        let slots: String = (0..8).map(|i| format!("{{p{i}}} ")).collect();
        for i in 0..8 {
            s.fill.insert(format!("p{i}"), words.clone());
        }
        // 100^8 = 10^16 combinations, of which five are made.
        s.tests[0].templates = vec![slots.clone()];
        let r = s.run(&model, 0).unwrap();
        assert_eq!(r[0].cases, 5);
        // Too many to count in a usize: refused, not wrapped.
        let slots: String = (0..12).map(|i| format!("{{p{i}}} ")).collect();
        for i in 8..12 {
            s.fill.insert(format!("p{i}"), words.clone());
        }
        s.tests[0].templates = vec![slots];
        let e = s.run(&model, 0).unwrap_err().to_string();
        assert!(e.contains("too many fillings"), "{e}");
        // Counted without being made.
        assert_eq!(s.filling("{p0}{p1}{p2}", None).unwrap().total, 1_000_000);
        // A cap beyond MAX_CASES is refused.
        s.tests[0].max_cases = Some(MAX_CASES + 1);
        let e = s.run(&model, 0).unwrap_err().to_string();
        assert!(e.contains("at most"), "{e}");
    }

    #[test]
    fn a_typo_swaps_the_middle_of_the_longest_word() {
        assert_eq!(
            typo("The meal was great.").as_deref(),
            Some("The meal was gerat.")
        );
        assert_eq!(typo("Flights are fun").as_deref(), Some("Flgihts are fun"));
        assert_eq!(
            typo("Ça coûte très cher").as_deref(),
            Some("Ça cûote très cher")
        );
        // Never a swap of two equal letters, which would change nothing.
        assert_eq!(typo("good food").as_deref(), Some("ogod food"));
        assert_eq!(typo("It is ok"), None);
        assert_eq!(typo("aaaa"), None);
    }

    #[test]
    fn edits_apply_around_the_passage() {
        assert_eq!(Edit::Append(" x".into()).apply("a").as_deref(), Some("a x"));
        assert_eq!(
            Edit::Prepend("@b ".into()).apply("a").as_deref(),
            Some("@b a")
        );
    }

    fn tiny() -> Model {
        Model::from_data(crate::model::tiny(), "t".into(), Path::new("t")).unwrap()
    }

    const TINY_SUITE: &str = r#"
        [fill]
        w = ["good", "bad"]

        [[tests]]
        name = "praise"
        capability = "vocabulary"
        head = "sentiment"
        templates = ["{w} news"]
        label = "positive"

        [[tests]]
        name = "not negative"
        capability = "vocabulary"
        head = "sentiment"
        templates = ["good news", "news"]
        not = "negative"

        [[tests]]
        name = "a neutral word appended"
        capability = "robustness"
        head = "sentiment"
        templates = ["{w} news"]
        append = [" news"]

        [[tests]]
        name = "a contrary word appended"
        capability = "robustness"
        head = "sentiment"
        templates = ["good news"]
        append = [" news", " bad bad bad"]
    "#;

    #[test]
    fn a_suite_counts_each_tests_failures() {
        let model = tiny();
        let r = suite(TINY_SUITE).run(&model, 5).unwrap();
        let got: Vec<(&str, usize, usize)> = r
            .iter()
            .map(|t| (t.name.as_str(), t.cases, t.failed))
            .collect();
        assert_eq!(
            got,
            [
                ("praise", 2, 1),
                ("not negative", 2, 0),
                ("a neutral word appended", 2, 0),
                ("a contrary word appended", 1, 1),
            ]
        );
        assert_eq!(r[0].failure_rate, 0.5);
        assert_eq!(
            (r[0].kind, r[0].expected.as_deref()),
            ("label", Some("positive"))
        );
        assert_eq!(r[0].examples[0].passage, "bad news");
        assert_eq!(r[0].examples[0].label, "negative");
        assert_eq!(r[2].kind, "same");
        let f = &r[3].examples[0];
        assert_eq!(
            (f.passage.as_str(), f.label.as_str()),
            ("good news", "positive")
        );
        assert_eq!(f.edited.as_deref(), Some("good news bad bad bad"));
        assert_eq!(f.edited_label.as_deref(), Some("negative"));
        // Examples are capped; the count is not.
        let r = suite(TINY_SUITE).run(&model, 0).unwrap();
        assert_eq!((r[0].failed, r[0].examples.len()), (1, 0));
    }

    #[test]
    fn directional_tests_compare_the_labels_probability() {
        // "good" raises P(positive) and "bad" lowers it, in the tiny model.
        let model = tiny();
        let toml = r#"
            [fill]
            w = ["news", "bad news"]

            [[tests]]
            name = "good raises positive"
            capability = "c"
            head = "sentiment"
            templates = ["{w}"]
            edited = ["good {w}"]
            raises = "positive"

            [[tests]]
            name = "good lowers positive"
            capability = "c"
            head = "sentiment"
            templates = ["{w}"]
            edited = ["good {w}"]
            lowers = "positive"

            [[tests]]
            name = "bad raises positive"
            capability = "c"
            head = "sentiment"
            templates = ["good news"]
            append = [" bad"]
            raises = "positive"

            [[tests]]
            name = "within a tolerance of 1"
            capability = "c"
            head = "sentiment"
            templates = ["good news"]
            append = [" bad"]
            raises = "positive"
            tolerance = 1.0
        "#;
        let r = suite(toml).run(&model, 5).unwrap();
        let got: Vec<(&str, &str, usize, usize)> = r
            .iter()
            .map(|t| (t.name.as_str(), t.kind, t.cases, t.failed))
            .collect();
        assert_eq!(
            got,
            [
                ("good raises positive", "raises", 2, 0),
                ("good lowers positive", "lowers", 2, 2),
                ("bad raises positive", "raises", 1, 1),
                ("within a tolerance of 1", "raises", 1, 0),
            ]
        );
        let f = &r[1].examples[0];
        assert_eq!(f.edited.as_deref(), Some("good news"));
        let (p, q) = (f.probability.unwrap(), f.edited_probability.unwrap());
        assert!(q > p, "{p} {q}");
        // Invariance and label tests carry no probabilities.
        let r = suite(TINY_SUITE).run(&model, 5).unwrap();
        assert!(r[3].examples[0].probability.is_none());
        assert!(r[0].examples[0].edited_probability.is_none());
    }

    #[test]
    fn a_comparison_counts_cases_fixed_and_broken() {
        let model = tiny();
        let mut mine = suite(TINY_SUITE).run(&model, 0).unwrap();
        // The same model: nothing fixed or broken.
        let same = suite(TINY_SUITE).run(&model, 0).unwrap();
        compare(&mut mine, &same, "t");
        for r in &mine {
            let v = r.versus.as_ref().unwrap();
            assert_eq!((v.failed, v.fixed, v.broken), (r.failed, 0, 0));
            assert_eq!(r.outcomes.iter().filter(|&&f| f).count(), r.failed);
        }
        // Another whose outcomes differ: counted case by case.
        let mut other = same.clone();
        other[0].outcomes = vec![true, true];
        other[0].failed = 2;
        compare(&mut mine, &other, "u");
        let v = mine[0].versus.as_ref().unwrap();
        // "good news" passes here and fails there; "bad news" fails both.
        assert_eq!(mine[0].outcomes, [false, true]);
        assert_eq!(
            (v.model_id.as_str(), v.failed, v.fixed, v.broken),
            ("u", 2, 1, 0)
        );
    }

    #[test]
    fn a_test_the_model_cannot_run_is_named() {
        let model = tiny();
        let err = |extra: &str| {
            let toml = format!(
                "[fill]\nw = ['x']\n[[tests]]\nname = 'bad one'\ncapability = 'c'\n{extra}"
            );
            suite(&toml).run(&model, 1).unwrap_err().to_string()
        };
        let e = err("head = 'tone'\ntemplates = ['a']\nlabel = 'positive'");
        assert!(
            e.contains("\"bad one\"") && e.contains("no head \"tone\""),
            "{e}"
        );
        let e = err("head = 'sentiment'\ntemplates = ['a']\nlabel = 'upbeat'");
        assert!(e.contains("no label \"upbeat\""), "{e}");
        let e = err("head = 'sentiment'\ntemplates = ['a']\nlabel = 'positive'\ntypo = true");
        assert!(e.contains("without edits"), "{e}");
        let e = err("head = 'sentiment'\ntemplates = ['a']");
        assert!(e.contains("without edits"), "{e}");
        let e = err("head = 'sentiment'\ntemplates = ['a']\nraises = 'positive'");
        assert!(e.contains("without edits"), "{e}");
        let e = err(
            "head = 'sentiment'\ntemplates = ['a']\nedited = ['b']\nraises = 'positive'\nlowers = 'negative'",
        );
        assert!(e.contains("without edits"), "{e}");
        let e =
            err("head = 'sentiment'\ntemplates = ['a', 'b']\nedited = ['c']\nraises = 'positive'");
        assert!(e.contains("2 templates but 1 edited"), "{e}");
        let e = err("head = 'sentiment'\ntemplates = ['a']\nedited = ['b']\nraises = 'upbeat'");
        assert!(e.contains("no label \"upbeat\""), "{e}");
        let e = err("head = 'sentiment'\ntemplates = ['a']\ntypo = true\ntolerance = -0.1");
        assert!(e.contains("tolerance -0.1"), "{e}");
        let e = err("head = 'sentiment'\ntemplates = ['{v}']\nnot = 'positive'");
        assert!(e.contains("{v} is not in [fill]"), "{e}");
        let e = err("head = 'sentiment'\ntemplates = []\nnot = 'positive'");
        assert!(e.contains("no templates"), "{e}");
        let e = err("head = 'sentiment'\ntemplates = ['a']\nnot = 'positive'\nmax_cases = 0");
        assert!(e.contains("max_cases"), "{e}");
        let empty = suite("tests = []").run(&model, 1).unwrap_err();
        assert!(matches!(empty, SuiteError::NoTests));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = toml::from_str::<Suite>(
            "[[tests]]\nname='n'\ncapability='c'\nhead='h'\ntemplates=['t']\nlabel='x'\nlabl='y'",
        )
        .unwrap_err();
        assert!(e.to_string().contains("labl"), "{e}");
    }
}
