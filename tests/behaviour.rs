//! Behaviour of the committed default model (models/default.slant) on
//! sentences written for these tests (no test set, no CheckList): negation,
//! intensifiers, misspelt words, invariance to swapping nationalities,
//! religions, cities, names and orientations, and ordinary reporting not
//! called misinformation.
//!
//! Each test asserts what the model does hold to. Cases it fails are kept
//! below as `KNOWN_FAILURES`, checked to still fail (so that a model that
//! fixes them shows up here and the model card's limits are updated), and
//! listed in models/MODEL_CARD.md.

use std::path::Path;

use slant::model::{Explain, Model, Workspace};

fn model() -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.slant");
    Model::load(&path).expect("models/default.slant loads")
}

/// Every head's (label name, probabilities) for `passage`.
fn scores(m: &Model, ws: &mut Workspace, passage: &str) -> Vec<(String, Vec<f64>)> {
    m.score(passage, &m.every_head(), Explain::None, ws)
        .into_iter()
        .map(|s| (m.heads()[s.head].labels[s.label].clone(), s.probabilities))
        .collect()
}

/// The sentiment head's label and P(label) for each label name.
fn sentiment(m: &Model, ws: &mut Workspace, passage: &str) -> (String, Vec<(String, f64)>) {
    head(m, ws, "sentiment", passage)
}

/// A head's label and P(label) for each label name.
fn head(m: &Model, ws: &mut Workspace, name: &str, passage: &str) -> (String, Vec<(String, f64)>) {
    let h = m.head_index(name).expect("the head");
    let s = &m.score(passage, &[h], Explain::None, ws)[0];
    let head = &m.heads()[h];
    (
        head.labels[s.label].clone(),
        head.labels
            .iter()
            .cloned()
            .zip(s.probabilities.iter().copied())
            .collect(),
    )
}

fn p(probs: &[(String, f64)], label: &str) -> f64 {
    probs
        .iter()
        .find(|(l, _)| l == label)
        .map_or(f64::NAN, |x| x.1)
}

/// (sentence, a label the sentiment head must NOT give).
const NEGATION: &[(&str, &str)] = &[
    ("The soup was not bad at all.", "negative"),
    ("The hotel was not good.", "positive"),
    ("I don't like this new policy.", "positive"),
    ("It was not a terrible evening.", "negative"),
    ("The new bridge is not safe.", "positive"),
    // "didn't" read as "did not" (`expand_contractions`): both were
    // positive while "didn't" was a word of its own.
    (
        "I thought I would enjoy that flight, but I didn't.",
        "positive",
    ),
    (
        "I expected to love the new phone, but I didn't.",
        "positive",
    ),
];

/// Negation cases the default model gets wrong (see the model card):
/// the negative words outweigh "not"; and "nobody" is not a negator of the
/// verb's sentiment to a bag of n-grams (the sentence reads neutral, where
/// it read positive before the sentiment head's character n-grams weighed
/// less).
const KNOWN_FAILURES: &[(&str, &str)] = &[
    ("Nobody enjoyed the long meeting.", "neutral"),
    ("Honestly, the concert was not bad at all.", "negative"),
];

/// Negations contracted, beside the same written out: a contraction is
/// read as its two words (`expand_contractions`), so each pair scores
/// the same. While "wasn't" was a word of its own, three read otherwise:
/// the first two negative (written out, neutral), and the last positive
/// (written out, negative).
const CONTRACTIONS: &[(&str, &str)] = &[
    ("The hotel wasn't good.", "The hotel was not good."),
    ("The meal wasn't excellent.", "The meal was not excellent."),
    (
        "It isn't a terrible evening.",
        "It is not a terrible evening.",
    ),
    ("We won't be coming back.", "We will not be coming back."),
    (
        "I can't recommend this place.",
        "I can not recommend this place.",
    ),
    (
        "They didn’t enjoy the show.",
        "They did not enjoy the show.",
    ),
    ("The staff weren't helpful.", "The staff were not helpful."),
    (
        "Prices haven't risen this year.",
        "Prices have not risen this year.",
    ),
];

/// Sentences with @handles, beside the same without: a handle names an
/// account, and is left out when scoring (`skip_handles`), so each pair
/// scores the same. While handles were read as words, an appended handle
/// turned the first two neutral.
const HANDLES: &[(&str, &str)] = &[
    ("The meal was good. @traveller_42", "The meal was good."),
    (
        "The meal was fantastic. @traveller_42",
        "The meal was fantastic.",
    ),
    ("@united the flight was awful", "the flight was awful"),
    (
        "Thanks @JetBlue, the crew were wonderful!",
        "Thanks, the crew were wonderful!",
    ),
    (
        "@xK9_q2 @bank shares fell after the report",
        "shares fell after the report",
    ),
];

/// Each pair of sentences gets the same sentiment label and
/// probabilities.
fn assert_read_alike(pairs: &[(&str, &str)]) {
    let m = model();
    let mut ws = Workspace::default();
    for &(sentence, alike) in pairs {
        let (label, probs) = sentiment(&m, &mut ws, sentence);
        let (expected, expected_probs) = sentiment(&m, &mut ws, alike);
        assert_eq!(label, expected, "{sentence:?}: {probs:?}");
        for ((_, a), (_, b)) in probs.iter().zip(&expected_probs) {
            assert!(
                (a - b).abs() < 1e-9,
                "{sentence:?}: {probs:?} against {expected_probs:?}"
            );
        }
    }
}

#[test]
fn a_handle_changes_nothing() {
    assert_read_alike(HANDLES);
}

#[test]
fn a_contracted_negation_reads_as_written_out() {
    assert_read_alike(CONTRACTIONS);
}

#[test]
fn negation_does_not_leave_the_plain_reading() {
    let m = model();
    let mut ws = Workspace::default();
    for &(sentence, not) in NEGATION {
        let (label, probs) = sentiment(&m, &mut ws, sentence);
        assert_ne!(label, not, "{sentence:?}: {probs:?}");
    }
    // Plain readings, for contrast.
    assert_eq!(sentiment(&m, &mut ws, "The hotel was good.").0, "positive");
    assert_eq!(sentiment(&m, &mut ws, "The hotel was bad.").0, "negative");
}

/// (sentence, the label it must read as): a contrast's second part
/// decides. The general expert reads only what follows the last
/// contrasting "but" (`after_contrast`); before it did, such sentences read
/// neutral in most of the behaviour suite's cases.
const CONTRAST: &[(&str, &str)] = &[
    (
        "I thought the hotel would be lovely, but it was dirty and loud.",
        "negative",
    ),
    (
        "I expected a dull lecture, but it was fascinating.",
        "positive",
    ),
    ("I used to hate this cafe, but now I love it.", "positive"),
    (
        "We used to enjoy the show, but now it is boring.",
        "negative",
    ),
    (
        "The room was small, but the staff were wonderful.",
        "positive",
    ),
    (
        "The food looked delicious, but it tasted awful.",
        "negative",
    ),
    (
        "Everyone warned us the trip would be miserable, but we had a great time.",
        "positive",
    ),
];

/// Each sentence gets its expected sentiment label.
fn assert_labels(cases: &[(&str, &str)]) {
    let m = model();
    let mut ws = Workspace::default();
    for &(sentence, expected) in cases {
        let (label, probs) = sentiment(&m, &mut ws, sentence);
        assert_eq!(label, expected, "{sentence:?}: {probs:?}");
    }
}

#[test]
fn what_follows_a_contrast_decides() {
    assert_labels(CONTRAST);
}

/// Financial news, in sentences of our own with made-up names: which way
/// a price or a rating moved is the news ("sank", "soared",
/// "downgraded"), and a move denied reads the other way.
const MARKETS: &[(&str, &str)] = &[
    (
        "Shares of Tessaro sank 9% after the chief executive resigned.",
        "negative",
    ),
    (
        "Brightwell stock soared after the regulator approved its new drug.",
        "positive",
    ),
    (
        "Analysts downgraded Orlan Foods, citing weaker demand.",
        "negative",
    ),
    ("Copper prices tumbled to a two-year low.", "negative"),
    (
        "The bank upgraded its outlook for the retailer.",
        "positive",
    ),
    (
        "Shares of the carmaker did not fall despite the recall.",
        "positive",
    ),
    (
        "Quarview shares climbed 4% on strong holiday sales.",
        "positive",
    ),
    ("The index slumped as bond yields rose.", "negative"),
];

#[test]
fn a_market_move_says_which_way() {
    assert_labels(MARKETS);
}

/// Sentences whose one sentiment word is misspelt (two letters swapped,
/// one left out, one held down), beside the sentence spelt right.
const TYPOS: &[(&str, &str)] = &[
    ("The flight was exclelent.", "The flight was excellent."),
    ("The service was terirble.", "The service was terrible."),
    ("What a wonderfl evening.", "What a wonderful evening."),
    (
        "The staff were so rdue to us.",
        "The staff were so rude to us.",
    ),
    (
        "I ahte waiting in this queue.",
        "I hate waiting in this queue.",
    ),
    ("The new phone is amazign.", "The new phone is amazing."),
    ("That meal was disgustng.", "That meal was disgusting."),
    ("Our guide was very hlepful.", "Our guide was very helpful."),
    ("The show was sooo goooood.", "The show was so good."),
    ("I loooove this song.", "I love this song."),
    ("What a terrrible day.", "What a terrible day."),
];

#[test]
fn a_misspelt_word_keeps_its_sentiment() {
    let m = model();
    let mut ws = Workspace::default();
    for &(written, meant) in TYPOS {
        let (label, probs) = sentiment(&m, &mut ws, written);
        let (expected, _) = sentiment(&m, &mut ws, meant);
        assert_ne!(expected, "neutral", "{meant:?}");
        assert_eq!(label, expected, "{written:?}: {probs:?}");
    }
}

#[test]
fn known_negation_failures_still_fail() {
    let m = model();
    let mut ws = Workspace::default();
    for &(sentence, wrong) in KNOWN_FAILURES {
        let (label, probs) = sentiment(&m, &mut ws, sentence);
        assert_eq!(
            label, wrong,
            "{sentence:?} is now {label} ({probs:?}): move it to NEGATION and update the model card"
        );
    }
}

/// (plain, intensified, the label whose probability must not drop).
const INTENSIFIERS: &[(&str, &str, &str)] = &[
    (
        "The hotel was good.",
        "The hotel was very good.",
        "positive",
    ),
    ("The hotel was bad.", "The hotel was very bad.", "negative"),
    (
        "The lecture was interesting.",
        "The lecture was extremely interesting.",
        "positive",
    ),
    (
        "The staff were helpful.",
        "The staff were incredibly helpful.",
        "positive",
    ),
    (
        "The match was boring.",
        "The match was terribly boring.",
        "negative",
    ),
];

#[test]
fn intensifiers_do_not_weaken() {
    let m = model();
    let mut ws = Workspace::default();
    for &(plain, strong, label) in INTENSIFIERS {
        let a = p(&sentiment(&m, &mut ws, plain).1, label);
        let b = p(&sentiment(&m, &mut ws, strong).1, label);
        assert!(
            b >= a,
            "P({label}) {a:.3} for {plain:?} > {b:.3} for {strong:?}"
        );
    }
    // Known exception (model card): "really nice" reads less positive
    // than "nice" (0.73 against 0.77), "really" being common in negative
    // reviews.
    let a = p(
        &sentiment(&m, &mut ws, "The weather today is nice.").1,
        "positive",
    );
    let b = p(
        &sentiment(&m, &mut ws, "The weather today is really nice.").1,
        "positive",
    );
    assert!(a > 0.7 && b > 0.7, "{a} {b}");
    assert!(
        b < a,
        "\"really nice\" no longer weakens: move it to INTENSIFIERS and update the model card"
    );
}

const TEMPLATES: &[&str] = &[
    "The {} delegation landed in the capital this morning.",
    "Our new colleague is {} and teaches chemistry.",
    "A {} couple opened a bookshop near the station.",
    "Police say a {} man was detained after the break-in.",
    "The {} group is protesting outside parliament.",
    "I had lunch with a {} neighbour yesterday.",
    "The {} team lost the final on penalties.",
    "Shocking: {} workers win the lottery!!",
];
const NATIONALITIES: &[&str] = &[
    "French",
    "Chinese",
    "Mexican",
    "Nigerian",
    "Iranian",
    "Russian",
    "Indian",
    "American",
    "Israeli",
    "Syrian",
    "Pakistani",
    "German",
];
const RELIGIONS: &[&str] = &[
    "Christian",
    "Muslim",
    "Jewish",
    "Hindu",
    "Buddhist",
    "Sikh",
    "Catholic",
    "Mormon",
];
const ORIENTATIONS: &[&str] = &["gay", "lesbian", "bisexual", "transgender", "queer"];
const NAME_TEMPLATES: &[&str] = &[
    "{} said the new rules were fair.",
    "{} was arrested on Friday.",
    "{} won the prize for best novel.",
    "I met {} at the trade fair.",
    "{} slammed the decision as a disgrace.",
    "You won't believe what {} did next!",
];
const NAMES: &[&str] = &[
    "John", "Mary", "Mohammed", "Priya", "Carlos", "Jamal", "Emily", "Wei", "Olga", "Latoya",
];
const CITY_TEMPLATES: &[&str] = &[
    "The restaurant in {} was packed.",
    "Rents in {} rose last year.",
    "I flew to {} for a conference.",
    "Protesters marched through {} on Sunday.",
];
const CITIES: &[&str] = &[
    "London", "Paris", "Tehran", "Lagos", "Chicago", "Moscow", "Mumbai", "Baghdad", "Beijing",
];

/// Every head gives the same label and the same probabilities to every
/// filling of every template.
fn invariant(templates: &[&str], fillers: &[&str]) {
    let m = model();
    let mut ws = Workspace::default();
    for t in templates {
        let first = scores(&m, &mut ws, &t.replace("{}", fillers[0]));
        for f in &fillers[1..] {
            let s = t.replace("{}", f);
            let got = scores(&m, &mut ws, &s);
            for (a, b) in first.iter().zip(&got) {
                assert_eq!(a.0, b.0, "{s:?} vs {:?}", fillers[0]);
                for (x, y) in a.1.iter().zip(&b.1) {
                    assert!((x - y).abs() < 1e-9, "{s:?}: {:?} vs {:?}", a.1, b.1);
                }
            }
        }
    }
}

#[test]
fn swapping_nationalities_changes_nothing() {
    invariant(TEMPLATES, NATIONALITIES);
}

#[test]
fn swapping_religions_changes_nothing() {
    invariant(TEMPLATES, RELIGIONS);
}

#[test]
fn swapping_orientations_changes_nothing() {
    invariant(TEMPLATES, ORIENTATIONS);
}

#[test]
fn swapping_names_changes_nothing() {
    invariant(NAME_TEMPLATES, NAMES);
}

#[test]
fn swapping_cities_changes_nothing() {
    invariant(CITY_TEMPLATES, CITIES);
}

#[test]
fn clickbait_is_a_headline_head() {
    let m = model();
    let h = m.head_index("clickbait").expect("a clickbait head");
    assert_eq!(m.heads()[h].scope, slant::model::Scope::Headline);
    for name in ["sentiment", "sensational", "misinformation"] {
        let h = m.head_index(name).expect("the head");
        assert_eq!(m.heads()[h].scope, slant::model::Scope::Passage, "{name}");
    }
}

/// Ordinary reporting of several kinds, written for this test: the
/// misinformation head must call it real.
const REPORTING: &[&str] = &[
    "Shares of the carmaker rose 4% after it reported higher quarterly profit.",
    "The central bank left its key interest rate unchanged on Thursday.",
    "Oil prices fell for a third day as inventories grew more than expected.",
    "The retailer cut its full-year sales forecast, citing weaker demand.",
    "Storm knocks out power to thousands across the region",
    "The senator said the bill would be debated in committee next week.",
    "Police said two people were injured in the crash on the highway.",
    "Published",
];

/// Reporting the default model still calls fake (see the model card).
const REPORTING_KNOWN_FAILURES: &[&str] = &["City council approves budget for new public library"];

/// The style of unreliable claims and posts: the head must call it fake.
const UNRELIABLE: &[&str] = &[
    "BREAKING: Doctors don't want you to know this one trick that cures cancer!",
    "Gargling salt water every hour kills the virus, scientists confirm.",
    "The government is secretly putting microchips in vaccines.",
    "Says the governor raised taxes 47 times in two years.",
    "SHARE BEFORE IT'S DELETED: the election was rigged by millions of fake ballots!!",
    "Eating garlic protects you completely from COVID-19.",
];

/// The misinformation head's label and P(fake).
fn misinformation(m: &Model, ws: &mut Workspace, passage: &str) -> (String, f64) {
    let (label, probs) = head(m, ws, "misinformation", passage);
    (label, p(&probs, "fake"))
}

#[test]
fn ordinary_reporting_is_not_misinformation() {
    let m = model();
    let mut ws = Workspace::default();
    for &sentence in REPORTING {
        let (label, fake) = misinformation(&m, &mut ws, sentence);
        assert_eq!(label, "real", "{sentence:?}: P(fake) {fake:.3}");
    }
    for &sentence in REPORTING_KNOWN_FAILURES {
        let (label, fake) = misinformation(&m, &mut ws, sentence);
        assert_eq!(
            label, "fake",
            "{sentence:?} now reads real (P(fake) {fake:.3}): move it to REPORTING and update the model card"
        );
    }
    for &sentence in UNRELIABLE {
        let (label, fake) = misinformation(&m, &mut ws, sentence);
        assert_eq!(label, "fake", "{sentence:?}: P(fake) {fake:.3}");
    }
}

/// The explanation bar: on BABE's test sentences annotated biased that
/// mark their biased words, the top 3 words pushing toward "sensational"
/// include a marked word in at least 60% of sentences. Needs
/// ../shared/datasets (run with `-- --ignored accuracy`).
#[test]
#[ignore = "needs ../shared/datasets; run with --ignored"]
fn accuracy_explanations_touch_the_marked_biased_words() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/babe/test.jsonl");
    let text = std::fs::read_to_string(&data).expect("babe/test.jsonl");
    let m = model();
    let h = m.head_index("sensational").expect("a sensational head");
    let mut ws = Workspace::default();
    let (mut n, mut words, mut raw) = (0usize, 0usize, 0usize);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if row["label"] != "biased" {
            continue;
        }
        let marked: Vec<String> = row["biased_words"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str())
                    .map(|w| w.trim().to_lowercase())
                    .filter(|w| !w.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if marked.is_empty() {
            continue;
        }
        let passage = row["text"].as_str().unwrap_or("");
        n += 1;
        let s = &m.score(passage, &[h], Explain::Words(3), &mut ws)[0];
        assert_eq!(
            s.explained, 1,
            "two-class heads explain their positive label"
        );
        let touched = |spans: &[(u32, u32)]| {
            spans.iter().any(|&(a, b)| {
                let t = passage.get(a as usize..b as usize).unwrap_or("");
                t.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’' && c != '-')
                    .any(|w| marked.contains(&w.to_lowercase()))
            })
        };
        words += usize::from(s.contributions.iter().any(|c| touched(&c.spans)));
        let s = &m.score(passage, &[h], Explain::Features(3), &mut ws)[0];
        raw += usize::from(s.contributions.iter().any(|c| touched(&c.spans)));
    }
    let rate = words as f64 / n as f64;
    println!(
        "babe/test biased with biased_words: n {n}, top-3 words touch {rate:.3}, top-3 raw features touch {:.3}",
        raw as f64 / n as f64
    );
    assert!(n > 200, "{n} sentences");
    assert!(rate >= 0.60, "touch rate {rate:.3} < 0.60");
}
