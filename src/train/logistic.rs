//! Learning: L2-regularised logistic regression on sparse matrices, behind
//! linfa's traits.
//!
//! linfa's own solvers take dense arrays, which cannot hold a text corpus
//! (30k documents × 200k features). This module supplies the missing piece:
//! [`SparseRecords`] (a CSR matrix that implements linfa's `Records`),
//! [`LogisticParams`] checked by `ParamGuard`, and [`LinearModel`] produced
//! by `Fit` (and warm-started by `FitWith`) and used through `Predict`.
//!
//! The objective matches linfa-logistic's with `alpha = 1 / C` (and
//! scikit-learn's with the same `C`): the weighted sum of per-sample
//! log-losses plus `‖W‖² / (2C)`, intercepts unpenalised. Two classes use
//! one weight vector and the sigmoid; three or more use one vector per
//! class and the softmax. It is minimised with L-BFGS (two-loop recursion,
//! Armijo backtracking) on every core, with each sum made in an order fixed
//! by the data alone: the same data give the same model to the bit.

use linfa::dataset::Records;
use linfa::traits::{Fit, FitWith, PredictInplace};
use linfa::{DatasetBase, ParamGuard};
use ndarray::{Array1, Array2};

use super::lbfgs::{lbfgs, Termination};
use super::objective::Problem;
use super::records::SparseRecords;
use crate::model::link::{link, outputs};

/// Checked hyperparameters of [`LogisticParams`].
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticValidParams {
    pub(super) c: f64,
    pub(super) n_classes: usize,
    pub(super) max_iterations: u64,
    pub(super) gradient_tolerance: f64,
    pub(super) fit_intercept: bool,
    pub(super) memory: usize,
}

impl LogisticValidParams {
    pub fn c(&self) -> f64 {
        self.c
    }
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }
}

/// Hyperparameters of sparse logistic regression (unchecked).
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticParams(LogisticValidParams);

impl LogisticParams {
    /// Defaults: C = 1, 500 iterations, gradient tolerance 1e-4 (on the
    /// per-sample-mean objective), intercept on, L-BFGS memory 10.
    pub fn new(n_classes: usize) -> Self {
        Self(LogisticValidParams {
            c: 1.0,
            n_classes,
            max_iterations: 500,
            gradient_tolerance: 1e-4,
            fit_intercept: true,
            memory: 10,
        })
    }
    /// Inverse regularisation strength (larger = weaker penalty).
    pub fn c(mut self, c: f64) -> Self {
        self.0.c = c;
        self
    }
    pub fn max_iterations(mut self, n: u64) -> Self {
        self.0.max_iterations = n;
        self
    }
    pub fn gradient_tolerance(mut self, tol: f64) -> Self {
        self.0.gradient_tolerance = tol;
        self
    }
    pub fn with_intercept(mut self, on: bool) -> Self {
        self.0.fit_intercept = on;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SolverError {
    #[error("C must be positive and finite, got {0}")]
    InvalidC(f64),
    #[error("a classifier needs at least 2 classes, got {0}")]
    TooFewClasses(usize),
    #[error("gradient tolerance must be positive and finite, got {0}")]
    InvalidTolerance(f64),
    #[error("max_iterations must be at least 1")]
    NoIterations,
    #[error("{records} samples but {targets} targets")]
    LengthMismatch { records: usize, targets: usize },
    #[error("the dataset has no samples")]
    Empty,
    #[error("target {value} of sample {index} is not a class (0..{n_classes})")]
    TargetOutOfRange {
        index: usize,
        value: usize,
        n_classes: usize,
    },
    #[error("a warm start has shape {found:?}, the problem needs {expected:?}")]
    WarmStartShape {
        found: (usize, usize),
        expected: (usize, usize),
    },
    #[error("the objective became non-finite (bad feature values or weights?)")]
    NonFinite,
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

impl ParamGuard for LogisticParams {
    type Checked = LogisticValidParams;
    type Error = SolverError;

    fn check_ref(&self) -> Result<&Self::Checked, Self::Error> {
        let p = &self.0;
        if !(p.c.is_finite() && p.c > 0.0) {
            return Err(SolverError::InvalidC(p.c));
        }
        if p.n_classes < 2 {
            return Err(SolverError::TooFewClasses(p.n_classes));
        }
        if !(p.gradient_tolerance.is_finite() && p.gradient_tolerance > 0.0) {
            return Err(SolverError::InvalidTolerance(p.gradient_tolerance));
        }
        if p.max_iterations == 0 {
            return Err(SolverError::NoIterations);
        }
        Ok(p)
    }

    fn check(self) -> Result<Self::Checked, Self::Error> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// A fitted linear classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    /// n_features × outputs: one column for two classes (the log-odds of
    /// class 1), one per class otherwise.
    pub weights: Array2<f64>,
    pub intercept: Array1<f64>,
    pub n_classes: usize,
    /// L-BFGS iterations run.
    pub iterations: u64,
    /// How the solver stopped: only [`Termination::Converged`] means the
    /// gradient tolerance was met.
    pub termination: Termination,
}

impl LinearModel {
    /// Class probabilities for one sparse row, written into `out`
    /// (length n_classes).
    pub fn probabilities(&self, indices: &[u32], values: &[f32], out: &mut [f64]) {
        let mut z = self.intercept.to_vec();
        for (&j, &v) in indices.iter().zip(values) {
            let (j, v) = (j as usize, f64::from(v));
            // Features beyond the model's width cannot carry weight.
            if j < self.weights.nrows() {
                for (zk, w) in z.iter_mut().zip(self.weights.row(j)) {
                    *zk += v * w;
                }
            }
        }
        link(&z, out);
    }
}

impl LogisticValidParams {
    fn solve(
        &self,
        dataset: &DatasetBase<SparseRecords, Array1<usize>>,
        init: Option<&LinearModel>,
    ) -> Result<LinearModel, SolverError> {
        let x = &dataset.records;
        let y = dataset.targets.as_slice().ok_or(SolverError::Empty)?;
        if x.nsamples() != y.len() {
            return Err(SolverError::LengthMismatch {
                records: x.nsamples(),
                targets: y.len(),
            });
        }
        if y.is_empty() {
            return Err(SolverError::Empty);
        }
        if let Some((index, &value)) = y.iter().enumerate().find(|(_, &v)| v >= self.n_classes) {
            return Err(SolverError::TargetOutOfRange {
                index,
                value,
                n_classes: self.n_classes,
            });
        }
        let outputs = outputs(self.n_classes);
        let sample_weight: Vec<f64> = (0..y.len())
            .map(|i| f64::from(dataset.weight_for(i)))
            .collect();
        let total: f64 = sample_weight.iter().sum();
        if !(total.is_finite() && total > 0.0)
            || sample_weight.iter().any(|w| !w.is_finite() || *w < 0.0)
        {
            return Err(SolverError::NonFinite);
        }
        // Features absent from every sample have a zero gradient from zero
        // and stay at zero, so solve over the present columns only: with a
        // vocabulary shared by several heads that is often a fraction.
        let (compact, used) = x.compact_columns();
        let problem = Problem::new(
            &compact,
            y,
            sample_weight,
            total,
            outputs,
            self.c,
            self.fit_intercept,
        );
        let nw = problem.n_weights();
        let mut theta = vec![0.0; nw + outputs];
        if let Some(m) = init {
            let expected = (x.nfeatures(), outputs);
            if m.weights.dim() != expected || m.intercept.len() != outputs {
                return Err(SolverError::WarmStartShape {
                    found: m.weights.dim(),
                    expected,
                });
            }
            for (c, &j) in used.iter().enumerate() {
                for (t, w) in theta[c * outputs..(c + 1) * outputs]
                    .iter_mut()
                    .zip(m.weights.row(j))
                {
                    *t = *w;
                }
            }
            theta[nw..]
                .iter_mut()
                .zip(m.intercept.iter())
                .for_each(|(t, w)| *t = *w);
        }
        let (iterations, termination) = lbfgs(&problem, &mut theta, self)?;
        let intercept = Array1::from(theta[nw..].to_vec());
        let mut weights = Array2::zeros((x.nfeatures(), outputs));
        for (c, &j) in used.iter().enumerate() {
            for (w, t) in weights
                .row_mut(j)
                .iter_mut()
                .zip(&theta[c * outputs..(c + 1) * outputs])
            {
                *w = *t;
            }
        }
        Ok(LinearModel {
            weights,
            intercept,
            n_classes: self.n_classes,
            iterations,
            termination,
        })
    }
}

impl Fit<SparseRecords, Array1<usize>, SolverError> for LogisticValidParams {
    type Object = LinearModel;

    fn fit(
        &self,
        dataset: &DatasetBase<SparseRecords, Array1<usize>>,
    ) -> Result<LinearModel, SolverError> {
        self.solve(dataset, None)
    }
}

/// Warm start: fits from the given model's coefficients (used along a path
/// of C values, which converges in far fewer iterations).
impl<'a> FitWith<'a, SparseRecords, Array1<usize>, SolverError> for LogisticValidParams {
    type ObjectIn = Option<&'a LinearModel>;
    type ObjectOut = LinearModel;

    fn fit_with(
        &self,
        model: Self::ObjectIn,
        dataset: &'a DatasetBase<SparseRecords, Array1<usize>>,
    ) -> Result<LinearModel, SolverError> {
        self.solve(dataset, model)
    }
}

/// Probabilities, samples × classes.
impl PredictInplace<SparseRecords, Array2<f64>> for LinearModel {
    fn predict_inplace(&self, x: &SparseRecords, y: &mut Array2<f64>) {
        let k = self.n_classes;
        let mut p = vec![0.0; k];
        for i in 0..x.nsamples().min(y.nrows()) {
            let (idx, val) = x.row(i);
            self.probabilities(idx, val, &mut p);
            for (dst, src) in y.row_mut(i).iter_mut().zip(&p) {
                *dst = *src;
            }
        }
    }

    fn default_target(&self, x: &SparseRecords) -> Array2<f64> {
        Array2::zeros((x.nsamples(), self.n_classes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::uniform;
    use linfa::prelude::*;
    use linfa_logistic::{LogisticRegression, MultiLogisticRegression};
    use ndarray::{Array1, Array2};

    /// A small deterministic dense problem: `n` samples, 4 features, labels
    /// from a noisy linear rule over `k` classes.
    fn problem(n: usize, k: usize) -> (Array2<f64>, Array1<usize>) {
        let mut next = uniform(0x2545_f491_4f6c_dd1d);
        let x = Array2::from_shape_fn((n, 4), |_| {
            if next() < 0.3 {
                0.0
            } else {
                next() * 2.0 - 1.0
            }
        });
        let y = x
            .rows()
            .into_iter()
            .map(|r| {
                let s = r[0] - 0.5 * r[1] + 0.3 * r[2] + 0.4 * (next() - 0.5);
                ((s + 1.5) / 3.0 * k as f64).clamp(0.0, k as f64 - 1.0) as usize
            })
            .collect();
        (x, y)
    }

    #[test]
    fn binary_matches_linfa_logistic() {
        let (x, y) = problem(80, 2);
        let c = 2.0;
        let ours = LogisticParams::new(2)
            .c(c)
            .gradient_tolerance(1e-7)
            .max_iterations(1000)
            .fit(&DatasetBase::new(
                SparseRecords::from_dense(x.view()),
                y.clone(),
            ))
            .unwrap();
        let theirs = LogisticRegression::default()
            .alpha(1.0 / c)
            .gradient_tolerance(1e-10)
            .max_iterations(1000)
            .fit(&DatasetBase::new(x.clone(), y.clone()))
            .unwrap();
        // linfa-logistic models its "positive" label's log-odds; ours are
        // the log-odds of class 1.
        let sign = if theirs.labels().pos.class == 1 {
            1.0
        } else {
            -1.0
        };
        for (a, b) in ours.weights.column(0).iter().zip(theirs.params()) {
            assert!((a - sign * b).abs() < 1e-4, "{a} vs {}", sign * b);
        }
        assert!((ours.intercept[0] - sign * theirs.intercept()).abs() < 1e-4);
        assert!(ours.termination.converged(), "{}", ours.termination);
    }

    #[test]
    fn multinomial_matches_linfa_logistic() {
        let (x, y) = problem(90, 3);
        let c = 1.0;
        let ours = LogisticParams::new(3)
            .c(c)
            .gradient_tolerance(1e-12)
            .max_iterations(2000)
            .fit(&DatasetBase::new(
                SparseRecords::from_dense(x.view()),
                y.clone(),
            ))
            .unwrap();
        let theirs = MultiLogisticRegression::default()
            .alpha(1.0 / c)
            .gradient_tolerance(1e-10)
            .max_iterations(2000)
            .fit(&DatasetBase::new(x.clone(), y.clone()))
            .unwrap();
        // Both penalise every class's weights, so the solution is unique.
        for (a, b) in ours.weights.iter().zip(theirs.params().iter()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        // Intercepts are unpenalised: equal up to a common shift.
        let shift = ours.intercept[0] - theirs.intercept()[0];
        for (a, b) in ours.intercept.iter().zip(theirs.intercept()) {
            assert!((a - b - shift).abs() < 1e-4);
        }
        let probs: Array2<f64> =
            ours.predict(&DatasetBase::new(SparseRecords::from_dense(x.view()), y));
        let theirs_p = theirs.predict_probabilities(&x);
        for (a, b) in probs.iter().zip(theirs_p.iter()) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn guard_and_inputs_are_checked() {
        assert!(matches!(
            LogisticParams::new(2).c(0.0).check(),
            Err(SolverError::InvalidC(_))
        ));
        assert!(matches!(
            LogisticParams::new(1).check(),
            Err(SolverError::TooFewClasses(1))
        ));
        let x = SparseRecords::from_rows(3, [&[(0u32, 1.0f32)][..], &[(2, 1.0)][..]]);
        let bad = DatasetBase::new(x, Array1::from(vec![0usize, 5]));
        assert!(matches!(
            LogisticParams::new(2).fit(&bad),
            Err(SolverError::TargetOutOfRange {
                index: 1,
                value: 5,
                ..
            })
        ));
    }

    #[test]
    fn a_fit_cut_short_says_so() {
        let (x, y) = problem(90, 3);
        let ds = DatasetBase::new(SparseRecords::from_dense(x.view()), y);
        let short = LogisticParams::new(3)
            .gradient_tolerance(1e-12)
            .max_iterations(2)
            .fit(&ds)
            .unwrap();
        assert_eq!(short.iterations, 2);
        assert!(
            matches!(short.termination, Termination::MaxIterations { gradient } if gradient > 1e-12),
            "{:?}",
            short.termination
        );
        assert!(!short.termination.converged());
    }

    #[test]
    fn warm_start_reaches_the_same_optimum_in_fewer_iterations() {
        let (x, y) = problem(200, 3);
        let ds = DatasetBase::new(SparseRecords::from_dense(x.view()), y);
        let cold1 = LogisticParams::new(3)
            .c(1.0)
            .gradient_tolerance(1e-9)
            .fit(&ds)
            .unwrap();
        let cold2 = LogisticParams::new(3)
            .c(2.0)
            .gradient_tolerance(1e-9)
            .fit(&ds)
            .unwrap();
        let warm2 = LogisticParams::new(3)
            .c(2.0)
            .gradient_tolerance(1e-9)
            .fit_with(Some(&cold1), &ds)
            .unwrap();
        assert!(
            warm2.iterations < cold2.iterations,
            "{} vs {}",
            warm2.iterations,
            cold2.iterations
        );
        for (a, b) in warm2.weights.iter().zip(cold2.weights.iter()) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn sample_weights_act_like_repetition() {
        let x =
            SparseRecords::from_rows(2, [&[(0u32, 1.0f32)][..], &[(1, 1.0)][..], &[(1, 1.0)][..]]);
        let y = Array1::from(vec![1usize, 0, 0]);
        let repeated = LogisticParams::new(2)
            .gradient_tolerance(1e-10)
            .fit(&DatasetBase::new(x, y))
            .unwrap();
        let x = SparseRecords::from_rows(2, [&[(0u32, 1.0f32)][..], &[(1, 1.0)][..]]);
        let y = Array1::from(vec![1usize, 0]);
        let weighted = LogisticParams::new(2)
            .gradient_tolerance(1e-10)
            .fit(&DatasetBase::new(x, y).with_weights(Array1::from(vec![1.0f32, 2.0])))
            .unwrap();
        for (a, b) in repeated.weights.iter().zip(weighted.weights.iter()) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
