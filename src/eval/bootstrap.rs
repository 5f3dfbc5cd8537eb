//! How much a set's figures could move on another sample of the same
//! size: bootstrap intervals for accuracy and macro-F1, and the paired
//! difference between two models scored on the same examples.
//!
//! Each resample draws `n` of the set's `n` examples with replacement and
//! recomputes the metrics from its confusion matrix, as
//! [`super::metrics`] defines them. An interval is the middle 95% of the
//! resamples' values (percentile bootstrap). Two models are compared on
//! the same draws, so what their examples share (an easy or a hard draw)
//! cancels out of the difference. The draws come from a ChaCha stream
//! with a fixed seed: the same set and predictions print the same
//! interval on every run.

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::metrics::{accuracy_and_macro_f1, confusion_of};

/// The share of resamples an interval covers.
pub const LEVEL: f64 = 0.95;

/// The resampling stream's seed.
const SEED: u64 = 0x0073_6c61_6e74; // "slant" in ASCII

/// A two-sided interval, `[low, high]` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval(pub f64, pub f64);

impl Interval {
    /// The middle [`LEVEL`] of `values` (sorted here): their 2.5th and
    /// 97.5th percentiles, each the nearest of the sorted values.
    fn of(values: &mut [f64]) -> Self {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let last = values.len().saturating_sub(1);
            let i = (q * last as f64).round() as usize;
            values.get(i.min(last)).copied().unwrap_or(f64::NAN)
        };
        Self(at((1.0 - LEVEL) / 2.0), at((1.0 + LEVEL) / 2.0))
    }

    #[cfg(test)]
    fn contains(&self, x: f64) -> bool {
        self.0 <= x && x <= self.1
    }
}

/// `low..high`, three decimals each, as tables print intervals.
impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3}..{:.3}", self.0, self.1)
    }
}

/// A set's bootstrap intervals.
#[derive(Debug, Clone, Serialize)]
pub struct Uncertainty {
    pub resamples: usize,
    pub level: f64,
    pub accuracy: Interval,
    pub macro_f1: Interval,
}

/// One model against another on the same set and the same draws.
#[derive(Debug, Clone, Serialize)]
pub struct Paired {
    /// The other model's id and its figures on the whole set.
    pub model_id: String,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// This model's accuracy less the other's, on the whole set, and the
    /// difference's interval over the resamples.
    pub accuracy_difference: f64,
    pub accuracy_difference_interval: Interval,
    /// The same for macro-F1.
    pub macro_f1_difference: f64,
    pub macro_f1_difference_interval: Interval,
    /// The share of resamples in which this model's macro-F1 is higher
    /// (ties count half).
    pub share_better: f64,
    pub resamples: usize,
}

/// Decisions on one set: each example's true and predicted class, as
/// indices below `classes`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decided {
    pub classes: usize,
    pub truth: Vec<usize>,
    pub pred: Vec<usize>,
}

/// Accuracy and macro-F1 of every predictor in `preds` (each a prediction
/// for every example of `truth`) on `resamples` draws, the same draws for
/// all: `out[p][r]` is predictor `p`'s figures on draw `r`.
fn resampled(
    classes: usize,
    truth: &[usize],
    preds: &[&[usize]],
    resamples: usize,
) -> Vec<Vec<(f64, f64)>> {
    let n = truth.len();
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut out = vec![Vec::with_capacity(resamples); preds.len()];
    let mut draw = vec![0usize; n];
    for _ in 0..resamples {
        if n > 0 {
            draw.iter_mut().for_each(|i| *i = rng.gen_range(0..n));
        }
        for (pred, figures) in preds.iter().zip(out.iter_mut()) {
            let confusion = confusion_of(classes, draw.iter().map(|&i| (truth[i], pred[i])));
            figures.push(accuracy_and_macro_f1(&confusion));
        }
    }
    out
}

/// Bootstrap intervals of one set's accuracy and macro-F1.
pub fn uncertainty(d: &Decided, resamples: usize) -> Uncertainty {
    let figures = resampled(d.classes, &d.truth, &[&d.pred], resamples);
    let figures = figures.first().map(Vec::as_slice).unwrap_or_default();
    let mut accuracy: Vec<f64> = figures.iter().map(|f| f.0).collect();
    let mut macro_f1: Vec<f64> = figures.iter().map(|f| f.1).collect();
    Uncertainty {
        resamples,
        level: LEVEL,
        accuracy: Interval::of(&mut accuracy),
        macro_f1: Interval::of(&mut macro_f1),
    }
}

/// Why two models' decisions on a set cannot be compared.
#[derive(Debug, thiserror::Error)]
#[error(
    "the two models read the set differently ({0}): compare models whose head has the same labels"
)]
pub struct NotPaired(&'static str);

/// `this` against `other` (decisions on the same set, `other` by model
/// `other_id`), on the same `resamples` draws.
pub fn paired(
    this: &Decided,
    other: &Decided,
    other_id: &str,
    resamples: usize,
) -> Result<Paired, NotPaired> {
    if this.classes != other.classes {
        return Err(NotPaired("different numbers of labels"));
    }
    if this.truth != other.truth || this.pred.len() != other.pred.len() {
        return Err(NotPaired("different examples or labels"));
    }
    let whole = |d: &Decided| {
        accuracy_and_macro_f1(&confusion_of(
            d.classes,
            d.truth.iter().copied().zip(d.pred.iter().copied()),
        ))
    };
    let ((our_accuracy, our_f1), (accuracy, macro_f1)) = (whole(this), whole(other));
    let figures = resampled(
        this.classes,
        &this.truth,
        &[&this.pred, &other.pred],
        resamples,
    );
    let (ours, theirs) = (&figures[0], &figures[1]);
    let mut accuracy_differences: Vec<f64> =
        ours.iter().zip(theirs).map(|(a, b)| a.0 - b.0).collect();
    let mut f1_differences: Vec<f64> = ours.iter().zip(theirs).map(|(a, b)| a.1 - b.1).collect();
    let better = f1_differences
        .iter()
        .map(|&d| {
            if d > 0.0 {
                1.0
            } else if d == 0.0 {
                0.5
            } else {
                0.0
            }
        })
        .sum::<f64>();
    Ok(Paired {
        model_id: other_id.to_string(),
        accuracy,
        macro_f1,
        accuracy_difference: our_accuracy - accuracy,
        accuracy_difference_interval: Interval::of(&mut accuracy_differences),
        macro_f1_difference: our_f1 - macro_f1,
        macro_f1_difference_interval: Interval::of(&mut f1_differences),
        share_better: better / resamples.max(1) as f64,
        resamples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` examples of two classes, alternating, predicted right except
    /// every `wrong`-th.
    fn decided(n: usize, wrong: usize) -> Decided {
        let truth: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let pred = truth
            .iter()
            .enumerate()
            .map(|(i, &t)| if i % wrong == 0 { 1 - t } else { t })
            .collect();
        Decided {
            classes: 2,
            truth,
            pred,
        }
    }

    #[test]
    fn intervals_hold_the_figure_and_narrow_with_more_examples() {
        // Accuracy 0.8 (every fifth wrong).
        let small = uncertainty(&decided(100, 5), 1000);
        let large = uncertainty(&decided(2500, 5), 1000);
        for u in [&small, &large] {
            assert!(u.accuracy.contains(0.8), "{u:?}");
            assert!(u.macro_f1.contains(0.8), "{u:?}");
        }
        let width = |i: Interval| i.1 - i.0;
        // A binomial's 95% interval is about ±1.96·√(p(1 − p)/n): 0.157
        // wide for n = 100, 0.031 for n = 2,500.
        assert!((0.12..0.20).contains(&width(small.accuracy)), "{small:?}");
        assert!((0.024..0.040).contains(&width(large.accuracy)), "{large:?}");
        assert_eq!(small.resamples, 1000);
        assert_eq!(small.level, LEVEL);
    }

    #[test]
    fn the_same_set_gives_the_same_interval() {
        let d = decided(300, 3);
        let (a, b) = (uncertainty(&d, 200), uncertainty(&d, 200));
        assert_eq!((a.accuracy, a.macro_f1), (b.accuracy, b.macro_f1));
    }

    #[test]
    fn a_perfect_classifier_has_no_spread() {
        let mut d = decided(50, 2);
        d.pred = d.truth.clone();
        let u = uncertainty(&d, 100);
        assert_eq!(u.accuracy, Interval(1.0, 1.0));
        assert_eq!(u.macro_f1, Interval(1.0, 1.0));
    }

    #[test]
    fn a_model_against_itself_ties_and_a_better_one_wins() {
        let worse = decided(400, 4);
        let p = paired(&worse, &worse, "same", 300).unwrap();
        assert_eq!(p.macro_f1_difference, 0.0);
        assert_eq!(p.macro_f1_difference_interval, Interval(0.0, 0.0));
        assert_eq!(p.accuracy_difference, 0.0);
        assert_eq!(p.accuracy_difference_interval, Interval(0.0, 0.0));
        assert_eq!(p.share_better, 0.5);
        assert_eq!(p.model_id, "same");
        // Right wherever `worse` is right, and on half its errors more.
        let mut better = worse.clone();
        for (i, p) in better.pred.iter_mut().enumerate() {
            if i % 8 == 0 {
                *p = worse.truth[i];
            }
        }
        let p = paired(&better, &worse, "worse", 300).unwrap();
        assert!(p.macro_f1_difference > 0.1, "{p:?}");
        assert!(p.macro_f1_difference_interval.0 > 0.0, "{p:?}");
        assert!(
            p.macro_f1_difference_interval
                .contains(p.macro_f1_difference),
            "{p:?}"
        );
        // `worse` is wrong on every fourth example, `better` on every eighth.
        assert!((p.accuracy_difference - 0.125).abs() < 1e-12, "{p:?}");
        assert!(p.accuracy_difference_interval.0 > 0.0, "{p:?}");
        assert!(p.accuracy_difference_interval.contains(0.125), "{p:?}");
        assert_eq!(p.share_better, 1.0);
        assert!((p.accuracy - 0.75).abs() < 1e-12, "{p:?}");
        let back = paired(&worse, &better, "better", 300).unwrap();
        assert_eq!(back.share_better, 0.0);
        assert_eq!(back.macro_f1_difference, -p.macro_f1_difference);
    }

    #[test]
    fn sets_read_differently_are_not_paired() {
        let a = decided(10, 3);
        let mut b = decided(10, 3);
        b.truth[0] = 1 - b.truth[0];
        assert!(paired(&a, &b, "b", 10).is_err());
        let c = Decided {
            classes: 3,
            ..decided(10, 3)
        };
        assert!(paired(&a, &c, "c", 10).is_err());
        assert!(paired(&a, &decided(11, 3), "d", 10).is_err());
    }
}
