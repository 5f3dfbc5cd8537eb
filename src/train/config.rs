//! Config: the TOML file that says what `slant train` builds.
//!
//! ```toml
//! data_root = "../../shared/datasets"   # relative to this file
//! lexicon = "lexicons/vader.tsv"         # optional, relative to this file
//!
//! [features]                             # see features::FeatureSettings
//! word_ngrams = [1, 2]
//! min_df = 2
//!
//! [[heads]]
//! name = "sentiment"
//! labels = ["negative", "neutral", "positive"]
//! c_grid = [1, 2, 4, 8]                  # C chosen on dev
//! class_weight = "balanced"              # or "none", "balanced_per_source"
//! balance_sources = true                 # every train file weighs the same
//! scope = "passage"                      # or "headline": titles only
//! [[heads.train]]
//! path = "sentiment_sst3/train.jsonl"    # relative to data_root
//! [[heads.dev]]
//! path = "sentiment_sst3/dev.jsonl"
//! ```
//! A head may also take the lexicon's strong words as one-word training
//! rows ([`LexiconWords`]). Each data entry is a [`DataSpec`]: `format` (else by extension), `text`
//! and `label` columns, `label_map`, `skip_labels` (rows left out by their
//! label as written) and a sample `weight`. For two-class
//! heads the second label is the positive one; its decision threshold is
//! tuned on dev.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::features::{FeatureParams, FeatureSettings};
use crate::model::{check_heads, HeadsError, Scope};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Base folder of every data path (relative to the config file).
    #[serde(default)]
    pub data_root: Option<PathBuf>,
    #[serde(default)]
    pub features: FeatureParams,
    /// A sentiment lexicon (`word<TAB>valence`), relative to the config
    /// file; its words emit `<lex±>` markers (see `features::Lexicon`).
    #[serde(default)]
    pub lexicon: Option<PathBuf>,
    pub heads: Vec<HeadConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Every sample counts once (times its file's weight).
    #[default]
    None,
    /// Classes weighted inversely to their frequency: n / (k · n_class).
    Balanced,
    /// `balanced` within each training file: every file's classes weigh
    /// the same in it, so no source's class mix leaks into the head's
    /// prior through words that only mark the source (a file of ordinary
    /// news, all one class, does not shift the others).
    #[serde(rename = "balanced_per_source")]
    BalancedPerSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    pub name: String,
    pub labels: Vec<String>,
    pub train: Vec<DataSpec>,
    pub dev: Vec<DataSpec>,
    #[serde(default = "default_c_grid")]
    pub c_grid: Vec<f64>,
    #[serde(default)]
    pub class_weight: ClassWeight,
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u64,
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Weight each training file so that every file carries the same total
    /// weight (times its own `weight`): several sources count equally
    /// however many rows each has.
    #[serde(default)]
    pub balance_sources: bool,
    /// Two-class heads: tune the decision threshold on dev (else 0.5).
    #[serde(default = "default_true")]
    pub tune_threshold: bool,
    /// What the head is meant to read: `"passage"` (the default) or
    /// `"headline"` (titles and social posts; an article's title only).
    #[serde(default)]
    pub scope: Scope,
    /// Makes the head a mixture of per-domain experts under a gate (see
    /// [`MixtureConfig`]); absent, one model over all its files.
    #[serde(default)]
    pub mixture: Option<MixtureConfig>,
    /// This head's scale of the character n-gram block (on top of the
    /// featurizer's `char_weight`, which every head shares): the block's
    /// values are multiplied by it while the head's models are fitted, and
    /// their character weights by it afterwards, so a passage scores as
    /// the fit saw it and scoring is unchanged. It is an L2 penalty on the
    /// head's character weights 1/s² as strong as on its word weights:
    /// below 1 the head leans on whole words, above 1 on word parts.
    #[serde(default = "default_char_scale")]
    pub char_scale: f64,
    /// This head's scale of the passage's first-word feature (the
    /// featurizer's `first_word`, which it must have on for a scale above
    /// 0), as `char_scale` scales the character block: the feature's value
    /// is multiplied by it while the head is fitted, and its weights
    /// afterwards. 0, the default, is a head that does not read first
    /// words: its weights on them stay zero.
    #[serde(default)]
    pub first_word: f64,
    /// This head's scale of the market markers (`<mkt+>`, `<mkt->`: the
    /// featurizer's `market_words`, which it must have on for a scale
    /// above 0), as `first_word` scales the first word's. 0, the default,
    /// is a head that does not read them.
    #[serde(default)]
    pub market_words: f64,
    /// Once C (each expert's, in a mixture) and the threshold are chosen
    /// on dev, fit the head's models once more at them on the training
    /// files together with the dev files of the same sources (see
    /// [`HeadConfig::dev_joins`]): more data for the models kept, the
    /// choices not revisited. The dev metrics the model keeps are those
    /// of the chosen models before the refit, the only ones that did not
    /// train on dev.
    #[serde(default)]
    pub refit: bool,
    /// The lexicon's strongest words as training passages of their own
    /// (see [`LexiconWords`]); absent, none.
    #[serde(default)]
    pub lexicon_words: Option<LexiconWords>,
}

/// The config's lexicon as training rows: every word whose valence is at
/// least `min_valence` in magnitude, alone as a passage, labelled
/// `labels[0]` when its valence is negative and `labels[1]` when positive,
/// each row weighed `weight` (as a training file's `weight`; with
/// `balance_sources` the rows together count as one more file). A word
/// read alone then reads as the lexicon says, which a head trained on
/// sources where strong words are rare or mixed ("fantastic" in 7
/// positive, 5 neutral and 1 negative movie reviews) does not learn. The
/// rows teach weights, not the vocabulary: they do not count toward any
/// term's document frequency, so every feature and idf is as without them.
/// Leave-one-out keeps them in every run: they are no source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LexiconWords {
    pub min_valence: f32,
    /// The head's labels for negative and positive words, in that order.
    pub labels: [String; 2],
    #[serde(default = "crate::data::default_weight")]
    pub weight: f32,
    /// In a mixture, the expert the rows train (one of its domains): the
    /// gate reads them as that expert's.
    #[serde(default)]
    pub expert: Option<String>,
}

/// The domain of [`LexiconWords`]' rows (see [`HeadConfig::lexicon_spec`]).
pub const LEXICON_DOMAIN: &str = "lexicon words";

impl LexiconWords {
    /// The rows: each word of `lexicon` (word, valence) strong enough, as
    /// (word, index among `head_labels` of its label), in lexicon order.
    /// Labels are checked when the config is loaded; `None` if they are
    /// not the head's.
    pub fn rows<'a>(
        &self,
        lexicon: &'a [(String, f32)],
        head_labels: &[String],
    ) -> Option<Vec<(&'a str, usize)>> {
        let index = |l: &String| head_labels.iter().position(|h| h == l);
        let (negative, positive) = (index(&self.labels[0])?, index(&self.labels[1])?);
        Some(
            lexicon
                .iter()
                .filter(|(_, v)| v.abs() >= self.min_valence)
                .map(|(w, v)| (w.as_str(), if *v < 0.0 { negative } else { positive }))
                .collect(),
        )
    }
}

/// A mixture head: its joint model (trained as a plain head is, on the
/// files of every domain that has an expert), one expert per domain (the training files of that domain,
/// `DataSpec::domain`; C chosen from `c_grid` on that domain's dev files,
/// or on all the head's when it has none) and a gate that tells the
/// domains apart (every training row labelled with its domain, each
/// domain weighing the same). A domain whose rows all have one label
/// (ordinary reporting as `real`) trains the gate only: its expert answers
/// that label's frequency, add-one smoothed. The decision threshold of a
/// two-class mixture is tuned on dev, on the blend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureConfig {
    /// λ, the joint model's share of the blend, in [0, 1]. At 0 no joint
    /// model is trained or kept: the experts alone, under the gate.
    pub joint_weight: f64,
    /// The gate's C (a single value: the gate is not chosen on dev).
    #[serde(default = "default_gate_c")]
    pub gate_c: f64,
    /// The expert (one of the head's domains, with a linear model) that
    /// reads only what follows a passage's last contrasting "but" when
    /// scoring (see `text::contrast`). Training reads passages whole.
    #[serde(default)]
    pub after_contrast: Option<String>,
    /// The one model of the mixture that reads the market markers (one of
    /// its domains; the head's `market_words` must be above 0): the gate,
    /// the joint model and the other experts leave them unread, their
    /// weights there zero. Without it, every model of the head reads them.
    #[serde(default)]
    pub market_expert: Option<String>,
}

fn default_gate_c() -> f64 {
    2.0
}

/// A feature outside the word block's norm that a head reads only if it
/// asks to, at a scale of its own (0, the default: not read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// `<first>word` (`first_word`).
    FirstWord,
    /// The market markers (`market_words`).
    MarketWords,
}

impl Read {
    pub const ALL: [Self; 2] = [Self::FirstWord, Self::MarketWords];

    /// Its key, as `[features]` and a head name it.
    pub fn key(self) -> &'static str {
        match self {
            Self::FirstWord => "first_word",
            Self::MarketWords => "market_words",
        }
    }

    /// Whether the featurizer makes the feature.
    pub fn on(self, features: &FeatureSettings) -> bool {
        match self {
            Self::FirstWord => features.first_word,
            Self::MarketWords => features.market_words,
        }
    }
}

impl HeadConfig {
    /// This head's scale of a feature it may choose to read.
    pub fn read_scale(&self, read: Read) -> f64 {
        match read {
            Read::FirstWord => self.first_word,
            Read::MarketWords => self.market_words,
        }
    }

    /// The data entry that stands for [`HeadConfig::lexicon_words`]' rows
    /// among the head's training files (read from `lexicon`, the config's
    /// lexicon file): their weight and expert, and a domain of their own
    /// ([`LEXICON_DOMAIN`]), which no dev file shares.
    pub fn lexicon_spec(&self, lexicon: &Path) -> Option<DataSpec> {
        let w = self.lexicon_words.as_ref()?;
        Some(DataSpec {
            weight: w.weight,
            domain: Some(LEXICON_DOMAIN.into()),
            expert: w.expert.clone(),
            ..DataSpec::new(lexicon)
        })
    }

    /// A mixture's experts (see [`DataSpec::expert`]), in order of first
    /// appearance among the training files (empty for a plain head).
    pub fn domains(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if self.mixture.is_some() {
            for d in self.train.iter().map(DataSpec::expert) {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// For each dev file, the training file it joins when the head is
    /// refitted (see [`HeadConfig::refit`]): the first of the same source
    /// ([`same_source`]), whose weight its rows take; none for a dev
    /// file of a source nothing is trained on (SST-2's reviews beside
    /// SST-3's).
    pub fn dev_joins(&self) -> Vec<Option<usize>> {
        self.dev
            .iter()
            .map(|d| self.train.iter().position(|t| same_source(d, t)))
            .collect()
    }

    /// Score columns the head needs at most (see
    /// [`crate::model::link::kept`]; every domain with an expert, and no
    /// joint model in a mixture of joint weight 0).
    pub fn columns(&self) -> usize {
        let kept = crate::model::link::kept;
        let k = kept(self.labels.len());
        let own = match &self.mixture {
            Some(m) if !crate::model::has_joint(m.joint_weight) => 0,
            _ => k,
        };
        match self.domains().len() {
            0 => own,
            d => own + kept(d) + d * k,
        }
    }
}

/// Whether two data files are splits of one source: they sit in the same
/// folder and are of the same domain and expert (by default the folder's
/// name; files that share a folder with others name their `domain`). A
/// dev file measures, in leave-one-out, and joins, in a refit, the
/// training file of its source.
pub fn same_source(a: &DataSpec, b: &DataSpec) -> bool {
    a.folder() == b.folder() && a.domain() == b.domain() && a.expert() == b.expert()
}

fn default_c_grid() -> Vec<f64> {
    vec![0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
}
fn default_max_iterations() -> u64 {
    300
}
fn default_tolerance() -> f64 {
    1e-4
}
fn default_true() -> bool {
    true
}
fn default_char_scale() -> f64 {
    1.0
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{path}: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: InvalidConfig,
    },
}

/// Why a config that parses is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidConfig {
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Heads(#[from] HeadsError),
    #[error("head {head:?}: needs at least one train and one dev file")]
    NoData { head: String },
    #[error("head {head:?}: c_grid must be positive numbers")]
    CGrid { head: String },
    #[error("head {head:?}: char_scale must be a positive number, got {value}")]
    CharScale { head: String, value: f64 },
    #[error("head {head:?}: {key} must be 0 (not read) or a positive number, and above 0 needs {key} = true in [features]; got {value}")]
    ReadScale {
        head: String,
        key: &'static str,
        value: f64,
    },
    #[error("head {head:?}: refit = true, but no dev file is of a training file's source (the same folder, domain and expert) to join it")]
    Refit { head: String },
    #[error("head {head:?}: weight of {} must be positive", file.display())]
    Weight { head: String, file: PathBuf },
    #[error("head {head:?}: a mixture needs joint_weight in [0, 1] (got {joint_weight}), a positive gate_c (got {gate_c}) and 2 to {} named domains among its training files (got {domains:?})", crate::model::MAX_OUTPUTS)]
    Mixture {
        head: String,
        joint_weight: f64,
        gate_c: f64,
        domains: Vec<String>,
    },
    #[error("head {head:?}: {key} = {expert:?} is not one of the mixture's domains {domains:?}")]
    ExpertName {
        head: String,
        key: &'static str,
        expert: String,
        domains: Vec<String>,
    },
    #[error("head {head:?}: market_expert = {expert:?}, but the head's market_words is 0, so no model of it reads the market markers")]
    MarketExpertUnread { head: String, expert: String },
    #[error("head {head:?}: lexicon_words {problem}")]
    LexiconWords {
        head: String,
        problem: LexiconWordsProblem,
    },
}

/// What is wrong with a head's `lexicon_words`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LexiconWordsProblem {
    #[error("needs the config's `lexicon`, whose words they are")]
    NoLexicon,
    #[error("labels must be two of the head's labels")]
    Labels,
    #[error("min_valence and weight must be positive numbers")]
    Numbers,
    #[error("in a mixture, must name the expert the rows train (`expert`)")]
    NoExpert,
}

impl TrainConfig {
    /// Reads the config and resolves data paths against `data_root`
    /// (`override_root`, else the file's `data_root` relative to the file).
    /// Returns the config and its raw bytes (for the model's fingerprint).
    pub fn load(path: &Path, override_root: Option<&Path>) -> Result<(Self, Vec<u8>), ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.into(),
            source,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| ConfigError::Invalid {
            path: path.into(),
            source: InvalidConfig::NotUtf8,
        })?;
        let config: TrainConfig = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })?;
        config.validate().map_err(|source| ConfigError::Invalid {
            path: path.into(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let root = match (override_root, &config.data_root) {
            (Some(r), _) => r.to_path_buf(),
            (None, Some(r)) => base.join(r),
            (None, None) => base.to_path_buf(),
        };
        let mut config = config;
        config.data_root = Some(root);
        config.lexicon = config.lexicon.map(|l| base.join(l));
        Ok((config, bytes))
    }

    /// The path of a data entry on disk.
    pub fn resolve(&self, spec: &DataSpec) -> DataSpec {
        let mut s = spec.clone();
        if let Some(root) = &self.data_root {
            s.path = root.join(&spec.path);
        }
        s
    }

    fn validate(&self) -> Result<(), InvalidConfig> {
        check_heads(
            self.heads
                .iter()
                .map(|h| (h.name.as_str(), h.labels.as_slice(), h.columns())),
        )?;
        for h in &self.heads {
            let head = || h.name.clone();
            if h.train.is_empty() || h.dev.is_empty() {
                return Err(InvalidConfig::NoData { head: head() });
            }
            if h.c_grid.is_empty() || h.c_grid.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
                return Err(InvalidConfig::CGrid { head: head() });
            }
            // Scales multiply `f32` values: finite as `f32` too.
            if !((h.char_scale as f32).is_finite() && h.char_scale > 0.0) {
                return Err(InvalidConfig::CharScale {
                    head: head(),
                    value: h.char_scale,
                });
            }
            // A head's scale of a feature it may choose to read.
            for read in Read::ALL {
                let value = h.read_scale(read);
                let on = read.on(&self.features.0);
                if !((value as f32).is_finite() && value >= 0.0 && (value == 0.0 || on)) {
                    return Err(InvalidConfig::ReadScale {
                        head: head(),
                        key: read.key(),
                        value,
                    });
                }
            }
            if h.refit && h.dev_joins().iter().all(Option::is_none) {
                return Err(InvalidConfig::Refit { head: head() });
            }
            if let Some(m) = &h.mixture {
                let domains = h.domains();
                let numbers_ok =
                    (0.0..=1.0).contains(&m.joint_weight) && m.gate_c.is_finite() && m.gate_c > 0.0;
                if !numbers_ok
                    || domains.len() < 2
                    || domains.len() > crate::model::MAX_OUTPUTS
                    || domains.iter().any(String::is_empty)
                {
                    return Err(InvalidConfig::Mixture {
                        head: head(),
                        joint_weight: m.joint_weight,
                        gate_c: m.gate_c,
                        domains,
                    });
                }
                let lexicon_expert = h.lexicon_words.as_ref().and_then(|w| w.expert.as_ref());
                for (key, named) in [
                    ("after_contrast", m.after_contrast.as_ref()),
                    ("market_expert", m.market_expert.as_ref()),
                    ("lexicon_words.expert", lexicon_expert),
                ] {
                    if let Some(e) = named.filter(|&e| !domains.contains(e)) {
                        return Err(InvalidConfig::ExpertName {
                            head: head(),
                            key,
                            expert: e.clone(),
                            domains,
                        });
                    }
                }
                if let Some(e) = m.market_expert.as_ref().filter(|_| h.market_words == 0.0) {
                    return Err(InvalidConfig::MarketExpertUnread {
                        head: head(),
                        expert: e.clone(),
                    });
                }
            }
            if let Some(w) = &h.lexicon_words {
                let problem = |problem| InvalidConfig::LexiconWords {
                    head: head(),
                    problem,
                };
                if self.lexicon.is_none() {
                    return Err(problem(LexiconWordsProblem::NoLexicon));
                }
                if !w.labels.iter().all(|l| h.labels.contains(l)) || w.labels[0] == w.labels[1] {
                    return Err(problem(LexiconWordsProblem::Labels));
                }
                let positive = |x: f32| x.is_finite() && x > 0.0;
                if !(positive(w.min_valence) && positive(w.weight)) {
                    return Err(problem(LexiconWordsProblem::Numbers));
                }
                // Which expert, when named, the mixture's check above saw.
                if h.mixture.is_some() && w.expert.is_none() {
                    return Err(problem(LexiconWordsProblem::NoExpert));
                }
            }
            if let Some(s) = h
                .train
                .iter()
                .chain(&h.dev)
                .find(|s| !(s.weight.is_finite() && s.weight > 0.0))
            {
                return Err(InvalidConfig::Weight {
                    head: head(),
                    file: s.path.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_and_resolves_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(
                br#"
data_root = "data"
[features]
word_ngrams = [1, 3]
[[heads]]
name = "s"
labels = ["a", "b"]
scope = "headline"
train = [{ path = "t.jsonl", weight = 2.0 }]
dev = [{ path = "d.csv", text = "body" }]
"#,
            )
            .unwrap();
        let (c, _) = TrainConfig::load(&p, None).unwrap();
        assert_eq!(c.features.0.word_ngrams, [1, 3]);
        assert_eq!(
            c.resolve(&c.heads[0].train[0]).path,
            dir.path().join("data/t.jsonl")
        );
        assert_eq!(c.heads[0].dev[0].text, "body");
        assert_eq!(c.heads[0].c_grid, default_c_grid());
        assert_eq!(c.heads[0].scope, Scope::Headline);
        let (c, _) = TrainConfig::load(&p, Some(Path::new("/x"))).unwrap();
        assert_eq!(c.resolve(&c.heads[0].dev[0]).path, Path::new("/x/d.csv"));
    }

    #[test]
    fn a_dev_file_joins_the_first_training_file_of_its_source() {
        let c: TrainConfig = toml::from_str(
            "[[heads]]\nname = \"s\"\nlabels = [\"a\", \"b\"]\n\
             train = [{ path = \"x/train.jsonl\" }, { path = \"y/train.jsonl\" }, \
             { path = \"y/more.jsonl\" }]\n\
             dev = [{ path = \"y/dev.jsonl\" }, { path = \"z/dev.jsonl\" }, \
             { path = \"x/dev.jsonl\" }]\n",
        )
        .unwrap();
        assert_eq!(c.heads[0].dev_joins(), [Some(1), None, Some(0)]);
        assert!(!c.heads[0].refit, "off unless asked for");
        // In one folder, a dev file joins the training file of its expert
        // (of its domain, in a plain head).
        let c: TrainConfig = toml::from_str(
            "[[heads]]\nname = \"s\"\nlabels = [\"a\", \"b\"]\nrefit = true\n\
             mixture = { joint_weight = 0.0 }\n\
             train = [{ path = \"news.jsonl\", domain = \"news\" }, \
             { path = \"reviews.jsonl\", domain = \"reviews\" }]\n\
             dev = [{ path = \"dev_reviews.jsonl\", domain = \"reviews\" }, \
             { path = \"dev.jsonl\" }]\n",
        )
        .unwrap();
        assert_eq!(c.heads[0].dev_joins(), [Some(1), None]);
        assert_eq!(c.validate(), Ok(()));
        // A refit that nothing would join is refused.
        let mut alone = c.clone();
        alone.heads[0].dev.remove(0);
        assert_eq!(
            alone.validate(),
            Err(InvalidConfig::Refit { head: "s".into() })
        );
    }

    #[test]
    fn lexicon_words_are_checked_and_made_from_the_lexicon() {
        let with = |lexicon: &str, mixture: &str, words: &str| {
            let c: TrainConfig = toml::from_str(&format!(
                "{lexicon}[[heads]]\nname = \"s\"\nlabels = [\"neg\", \"mid\", \"pos\"]\n{mixture}\n\
                 lexicon_words = {{ {words} }}\n\
                 train = [{{ path = \"x/train.jsonl\" }}, {{ path = \"y/train.jsonl\" }}]\n\
                 dev = [{{ path = \"x/dev.jsonl\" }}]\n"
            ))
            .unwrap();
            c.validate().map(|()| c)
        };
        let lexicon = "lexicon = \"lex.tsv\"\n";
        let mixture = "mixture = { joint_weight = 0.0 }";
        let ok = r#"min_valence = 2.0, labels = ["neg", "pos"], weight = 0.5, expert = "x""#;
        let c = with(lexicon, mixture, ok).unwrap();
        let h = &c.heads[0];
        // Their data entry: the lexicon's path, their weight and expert, a
        // domain of their own (so no dev file is of their source).
        let spec = h.lexicon_spec(Path::new("d/lex.tsv")).unwrap();
        assert_eq!(
            (
                spec.path.as_path(),
                spec.weight,
                spec.expert(),
                spec.domain()
            ),
            (
                Path::new("d/lex.tsv"),
                0.5,
                "x".to_string(),
                LEXICON_DOMAIN.to_string()
            )
        );
        assert!(h.dev.iter().all(|d| !same_source(d, &spec)));
        // Words at least as strong as min_valence, labelled by their sign.
        let w = h.lexicon_words.as_ref().unwrap();
        let lex: Vec<(String, f32)> = [
            ("great", 3.1),
            ("okay", 0.9),
            ("awful", -2.0),
            ("meh", -1.9),
        ]
        .iter()
        .map(|&(w, v)| (w.to_string(), v))
        .collect();
        assert_eq!(
            w.rows(&lex, &h.labels).unwrap(),
            [("great", 2), ("awful", 0)]
        );
        assert_eq!(w.rows(&lex, &["neg".to_string()]), None);
        // A plain head needs no expert.
        with(lexicon, "", r#"min_valence = 1.0, labels = ["pos", "neg"]"#).unwrap();
        let problem = |lexicon: &str, mixture: &str, words: &str| {
            let e = with(lexicon, mixture, words).unwrap_err();
            assert!(
                e.to_string().starts_with("head \"s\": lexicon_words "),
                "{e}"
            );
            match e {
                InvalidConfig::LexiconWords { problem, .. } => problem,
                e => panic!("{e}"),
            }
        };
        use LexiconWordsProblem as P;
        assert_eq!(problem("", mixture, ok), P::NoLexicon);
        for labels in [r#"["neg", "good"]"#, r#"["pos", "pos"]"#] {
            let words = format!("min_valence = 2.0, labels = {labels}, expert = \"x\"");
            assert_eq!(problem(lexicon, mixture, &words), P::Labels, "{labels}");
        }
        for numbers in [
            "min_valence = 0.0",
            "min_valence = 2.0, weight = -1.0",
            "min_valence = inf",
        ] {
            let words = format!("{numbers}, labels = [\"neg\", \"pos\"], expert = \"x\"");
            assert_eq!(problem(lexicon, mixture, &words), P::Numbers, "{numbers}");
        }
        let no_expert = r#"min_valence = 2.0, labels = ["neg", "pos"]"#;
        assert_eq!(problem(lexicon, mixture, no_expert), P::NoExpert);
        let e = with(lexicon, mixture, &ok.replace("\"x\"", "\"z\"")).unwrap_err();
        assert!(
            matches!(
                e,
                InvalidConfig::ExpertName {
                    key: "lexicon_words.expert",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn mixtures_name_their_domains_and_are_checked() {
        // A head with these [features], head keys, mixture and training files.
        let head_with = |features: &str,
                         keys: &str,
                         mixture: &str,
                         train: &str|
         -> Result<TrainConfig, InvalidConfig> {
            let c: TrainConfig = toml::from_str(&format!(
                "{features}[[heads]]\nname = \"s\"\nlabels = [\"a\", \"b\", \"c\"]\n{keys}\n{mixture}\n\
                 train = [{train}]\ndev = [{{ path = \"x/dev.jsonl\" }}]\n"
            ))
            .unwrap();
            c.validate().map(|()| c)
        };
        let head = |mixture: &str, train: &str| head_with("", "", mixture, train);
        let two = r#"{ path = "x/train.jsonl" }, { path = "y/train.jsonl" }, { path = "z.jsonl", domain = "x" }"#;
        let c = head("mixture = { joint_weight = 0.3 }", two).unwrap();
        // Folders name domains unless a file says otherwise; each once.
        assert_eq!(c.heads[0].domains(), ["x", "y"]);
        assert_eq!(c.heads[0].mixture.as_ref().unwrap().gate_c, 2.0);
        // 2 (joint) + 1 (a two-domain gate) + 2 × 2 (experts).
        assert_eq!(c.heads[0].columns(), 7);
        // `expert` joins domains into one expert: one gate label, one
        // expert's columns, whatever the files' domains.
        let joined = r#"{ path = "x/train.jsonl", expert = "g" }, { path = "y/train.jsonl", expert = "g" }, { path = "f/train.jsonl" }"#;
        let c = head("mixture = { joint_weight = 0.0 }", joined).unwrap();
        assert_eq!(c.heads[0].domains(), ["g", "f"]);
        assert_eq!(c.heads[0].train[1].domain(), "y");
        // 1 (a two-expert gate) + 2 × 2 (experts), no joint model.
        assert_eq!(c.heads[0].columns(), 5);
        // The experts a mixture names (the one that reads what follows a
        // contrast, the one that reads the market markers) are among its
        // domains.
        let market = "[features]\nmarket_words = true\n";
        for (key, features, keys) in [
            ("after_contrast", "", ""),
            ("market_expert", market, "market_words = 1.0"),
        ] {
            let named = |expert: &str| {
                let mixture = format!("mixture = {{ joint_weight = 0.0, {key} = \"{expert}\" }}");
                head_with(features, keys, &mixture, joined)
            };
            let m = named("g").unwrap().heads[0].mixture.clone().unwrap();
            let chosen = match key {
                "after_contrast" => m.after_contrast,
                _ => m.market_expert,
            };
            assert_eq!(chosen.as_deref(), Some("g"), "{key}");
            let e = named("x").unwrap_err();
            assert!(matches!(e, InvalidConfig::ExpertName { .. }), "{e}");
            let said = format!(r#"{key} = "x" is not one of the mixture's domains ["g", "f"]"#);
            assert!(e.to_string().contains(&said), "{e}");
        }
        // And the market expert's head must read the markers.
        let e = head_with(
            market,
            "",
            r#"mixture = { joint_weight = 0.0, market_expert = "f" }"#,
            joined,
        )
        .unwrap_err();
        assert!(matches!(e, InvalidConfig::MarketExpertUnread { .. }), "{e}");
        assert!(e.to_string().contains("market_words is 0"), "{e}");
        // A plain head has no domains, and its own columns.
        let plain = head("", two).unwrap();
        assert!(plain.heads[0].domains().is_empty());
        assert_eq!(plain.heads[0].columns(), 2);
        let refused = |mixture: &str, train: &str| {
            let e = head(mixture, train).unwrap_err();
            assert!(matches!(e, InvalidConfig::Mixture { .. }), "{e}");
            e.to_string()
        };
        let e = refused(
            "mixture = { joint_weight = 0.3 }",
            r#"{ path = "x/a.jsonl" }, { path = "x/b.jsonl" }"#,
        );
        assert!(
            e.contains("2 to 16 named domains") && e.contains(r#"["x"]"#),
            "{e}"
        );
        refused("mixture = { joint_weight = 1.2 }", two);
        // Fifteen domains: 2 + 14 + 15 × 2 = 46 score columns, two too many.
        let fifteen: Vec<String> = (0..15)
            .map(|i| format!("{{ path = \"d{i}/train.jsonl\" }}"))
            .collect();
        let e = head("mixture = { joint_weight = 0.3 }", &fifteen.join(", ")).unwrap_err();
        assert!(
            matches!(
                e,
                InvalidConfig::Heads(HeadsError::TooManyColumns { columns: 46 })
            ),
            "{e}"
        );
        assert!(e.to_string().contains("at most 44"), "{e}");
        refused("mixture = { joint_weight = 0.3, gate_c = 0 }", two);
    }

    #[test]
    fn rejects_bad_configs_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "[[heads]]\nname = \"s\"\nlabels = [\"a\"]\ntrain = []\ndev = []\n",
        )
        .unwrap();
        let e = TrainConfig::load(&p, None).unwrap_err();
        assert!(
            matches!(
                &e,
                ConfigError::Invalid {
                    source: InvalidConfig::Heads(HeadsError::Labels { .. }),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("c.toml") && e.contains("labels"), "{e}");
        std::fs::write(&p, "[[heads]]\nnme = 1\n").unwrap();
        assert!(TrainConfig::load(&p, None)
            .unwrap_err()
            .to_string()
            .contains("c.toml"));
    }

    #[test]
    fn read_scales_must_be_zero_or_positive_and_need_their_feature() {
        for key in ["first_word", "market_words"] {
            let config = |features: &str, value: &str| -> TrainConfig {
                toml::from_str(&format!(
                    "{features}[[heads]]\nname = \"s\"\nlabels = [\"a\", \"b\"]\n{key} = {value}\n\
                     train = [{{ path = \"t\" }}]\ndev = [{{ path = \"d\" }}]\n"
                ))
                .unwrap()
            };
            let on = format!("[features]\n{key} = true\n");
            let on = on.as_str();
            for (features, value) in [
                (on, "-1.0"),
                (on, "nan"),
                (on, "inf"),
                (on, "1e39"),
                ("", "1.0"),
            ] {
                let e = config(features, value).validate().unwrap_err();
                assert!(
                    matches!(e, InvalidConfig::ReadScale { key: k, .. } if k == key),
                    "{key} = {value}: {e:?}"
                );
                assert!(e.to_string().contains(key), "{e}");
            }
            for (features, value) in [(on, "0.0"), (on, "0.5"), ("", "0.0")] {
                assert!(
                    config(features, value).validate().is_ok(),
                    "{features}{key} = {value}"
                );
            }
        }
    }

    #[test]
    fn char_scale_must_be_a_positive_number() {
        for bad in ["0.0", "-1.0", "nan", "inf", "1e39"] {
            let c: TrainConfig = toml::from_str(&format!(
                "[[heads]]\nname = \"s\"\nlabels = [\"a\", \"b\"]\nchar_scale = {bad}\n\
                 train = [{{ path = \"t\" }}]\ndev = [{{ path = \"d\" }}]\n"
            ))
            .unwrap();
            let e = c.validate().unwrap_err();
            assert!(matches!(e, InvalidConfig::CharScale { .. }), "{bad}: {e:?}");
            assert!(e.to_string().contains("char_scale"), "{e}");
        }
    }
}
