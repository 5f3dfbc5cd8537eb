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
//! Armijo backtracking), deterministically.

use std::collections::VecDeque;

use linfa::dataset::Records;
use linfa::traits::{Fit, FitWith, PredictInplace};
use linfa::{DatasetBase, ParamGuard};
use ndarray::{Array1, Array2, ArrayView2};
use sprs::{CsMatI, TriMatI};

/// CSR with f32 values (TF-IDF values are f32 already) and u32 column
/// indices: half the memory traffic of `CsMat<f64>` per solver pass.
pub type Csr = CsMatI<f32, u32, usize>;

/// A CSR matrix of samples × features that linfa accepts as records.
#[derive(Debug, Clone)]
pub struct SparseRecords {
    matrix: Csr,
}

impl SparseRecords {
    /// Builds the matrix from rows of (feature, value) pairs.
    pub fn from_rows<'a>(
        n_features: usize,
        rows: impl IntoIterator<Item = &'a [(u32, f32)]>,
    ) -> Self {
        let mut indptr = vec![0usize];
        let mut indices = Vec::new();
        let mut data = Vec::new();
        for row in rows {
            let mut row: Vec<(u32, f32)> = row.to_vec();
            row.sort_unstable_by_key(|&(j, _)| j);
            row.dedup_by_key(|&mut (j, _)| j);
            for (j, v) in row {
                if (j as usize) < n_features {
                    indices.push(j);
                    data.push(v);
                }
            }
            indptr.push(indices.len());
        }
        let n_rows = indptr.len() - 1;
        Self {
            matrix: Csr::new((n_rows, n_features), indptr, indices, data),
        }
    }

    /// A sparse copy of a dense matrix (zeros dropped, values as f32).
    pub fn from_dense(x: ArrayView2<f64>) -> Self {
        let mut tri: TriMatI<f32, u32> = TriMatI::new(x.dim());
        for ((i, j), &v) in x.indexed_iter() {
            if v != 0.0 {
                tri.add_triplet(i, j, v as f32);
            }
        }
        Self {
            matrix: tri.to_csr(),
        }
    }

    /// The matrix restricted to the columns that hold an entry, and those
    /// columns' original indices (ascending).
    fn compact_columns(&self) -> (SparseRecords, Vec<usize>) {
        let mut remap = vec![u32::MAX; self.nfeatures()];
        for &j in self.matrix.indices() {
            remap[j as usize] = 0;
        }
        let mut used = Vec::new();
        for (j, r) in remap.iter_mut().enumerate() {
            if *r == 0 {
                *r = used.len() as u32;
                used.push(j);
            }
        }
        let indices = self
            .matrix
            .indices()
            .iter()
            .map(|&j| remap[j as usize])
            .collect();
        let matrix = Csr::new(
            (self.nsamples(), used.len()),
            self.matrix.indptr().raw_storage().to_vec(),
            indices,
            self.matrix.data().to_vec(),
        );
        (Self { matrix }, used)
    }

    pub fn matrix(&self) -> &Csr {
        &self.matrix
    }

    fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (start, end) = (
            self.matrix.indptr().index(i),
            self.matrix.indptr().index(i + 1),
        );
        (
            &self.matrix.indices()[start..end],
            &self.matrix.data()[start..end],
        )
    }
}

impl Records for SparseRecords {
    type Elem = f32;

    fn nsamples(&self) -> usize {
        self.matrix.rows()
    }

    fn nfeatures(&self) -> usize {
        self.matrix.cols()
    }
}

/// Checked hyperparameters of [`LogisticParams`].
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticValidParams {
    c: f64,
    n_classes: usize,
    max_iterations: u64,
    gradient_tolerance: f64,
    fit_intercept: bool,
    memory: usize,
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
    /// L-BFGS iterations run and whether the tolerance was met.
    pub iterations: u64,
    pub converged: bool,
}

/// Score columns a linear model over `n_classes` needs: one log-odds for
/// two classes (sigmoid), one score per class otherwise (softmax).
pub fn outputs(n_classes: usize) -> usize {
    if n_classes == 2 {
        1
    } else {
        n_classes
    }
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

/// Turns scores into probabilities: sigmoid for one output, softmax else.
pub fn link(z: &[f64], out: &mut [f64]) {
    if z.len() == 1 {
        let p = sigmoid(z[0]);
        out[0] = 1.0 - p;
        out[1] = p;
    } else {
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for (o, &zk) in out.iter_mut().zip(z) {
            *o = (zk - m).exp();
            sum += *o;
        }
        for o in out.iter_mut() {
            *o /= sum;
        }
    }
}

/// 1 / (1 + e^-z), as e^-|z| over 1 + e^-|z| with the numerator chosen
/// without a branch: the sign of a score is what the CPU cannot guess.
/// (For z ≥ 0 that is 1 / (1 + e^-z); for z < 0, e^z / (1 + e^z): the same
/// operations, so the same bits, as computing each case on its own.)
fn sigmoid(z: f64) -> f64 {
    let e = (-z.abs()).exp();
    let numerator = if z >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
}

/// ln(1 + e^z) without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// The problem L-BFGS minimises: parameters are laid out as the weights
/// (feature-major, `outputs` per feature) followed by the intercepts.
struct Problem<'a> {
    x: &'a SparseRecords,
    y: &'a [usize],
    sample_weight: Vec<f64>,
    outputs: usize,
    /// 1 / (C · Σ sample weights): the penalty on the mean-loss scale.
    penalty: f64,
    total_weight: f64,
    fit_intercept: bool,
}

impl Problem<'_> {
    fn n_weights(&self) -> usize {
        self.x.nfeatures() * self.outputs
    }

    /// Mean weighted loss plus penalty, and its gradient into `grad`.
    ///
    /// The rows are cut into [`CHUNKS`] fixed ranges, each summed on its
    /// own thread into its own buffer in `scratch`, and the partial sums are
    /// added in chunk order: the result does not depend on how many cores
    /// the machine has, so the model file stays byte-identical.
    fn eval(&self, theta: &[f64], grad: &mut [f64], scratch: &mut [Vec<f64>]) -> f64 {
        let nw = self.n_weights();
        let n = self.y.len();
        let mut losses = [0.0f64; CHUNKS];
        std::thread::scope(|scope| {
            for ((c, buf), loss) in scratch.iter_mut().enumerate().zip(losses.iter_mut()) {
                let rows = n * c / CHUNKS..n * (c + 1) / CHUNKS;
                scope.spawn(move || *loss = self.eval_rows(rows, theta, buf));
            }
        });
        grad.copy_from_slice(&scratch[0]);
        for buf in &scratch[1..] {
            grad.iter_mut().zip(buf).for_each(|(g, b)| *g += b);
        }
        let loss: f64 = losses.iter().sum();
        let w = &theta[..nw];
        let mut reg = 0.0;
        for (g, &wj) in grad[..nw].iter_mut().zip(w) {
            reg += wj * wj;
            *g += self.penalty * wj;
        }
        loss + 0.5 * self.penalty * reg
    }

    /// The data part of [`Problem::eval`] over `rows`, gradient into `grad`.
    fn eval_rows(&self, rows: std::ops::Range<usize>, theta: &[f64], grad: &mut [f64]) -> f64 {
        let k = self.outputs;
        let nw = self.n_weights();
        let (w, b) = theta.split_at(nw);
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = 0.0;
        let mut z = vec![0.0; k];
        let mut r = vec![0.0; k];
        if k == 1 {
            return self.eval_rows_binary(rows, w, b[0], grad);
        }
        for i in rows {
            let yi = self.y[i];
            let s = self.sample_weight[i] / self.total_weight;
            if s == 0.0 {
                continue;
            }
            let (idx, val) = self.x.row(i);
            z.copy_from_slice(b);
            for (&j, &v) in idx.iter().zip(val) {
                let (j, v) = (j as usize, f64::from(v));
                let row = &w[j * k..j * k + k];
                for (zk, wk) in z.iter_mut().zip(row) {
                    *zk += v * wk;
                }
            }
            if k == 1 {
                let t = if yi == 1 { 1.0 } else { 0.0 };
                loss += s * (softplus(z[0]) - t * z[0]);
                r[0] = s * (sigmoid(z[0]) - t);
            } else {
                let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = z.iter().map(|zk| (zk - m).exp()).sum();
                let lse = m + sum.ln();
                loss += s * (lse - z[yi]);
                for (c, rk) in r.iter_mut().enumerate() {
                    let p = (z[c] - lse).exp();
                    *rk = s * (p - if c == yi { 1.0 } else { 0.0 });
                }
            }
            for (&j, &v) in idx.iter().zip(val) {
                let (j, v) = (j as usize, f64::from(v));
                let g = &mut grad[j * k..j * k + k];
                for (gk, rk) in g.iter_mut().zip(&r) {
                    *gk += v * rk;
                }
            }
            if self.fit_intercept {
                for (gk, rk) in grad[nw..].iter_mut().zip(&r) {
                    *gk += rk;
                }
            }
        }
        loss
    }
}

impl Problem<'_> {
    /// [`Problem::eval_rows`] for one output (two classes), with scalars
    /// instead of length-one slices: the same arithmetic in the same order.
    fn eval_rows_binary(
        &self,
        rows: std::ops::Range<usize>,
        w: &[f64],
        b: f64,
        grad: &mut [f64],
    ) -> f64 {
        let nw = w.len();
        let mut loss = 0.0;
        for i in rows {
            let s = self.sample_weight[i] / self.total_weight;
            if s == 0.0 {
                continue;
            }
            let (idx, val) = self.x.row(i);
            let mut z = b;
            for (&j, &v) in idx.iter().zip(val) {
                z += f64::from(v) * w[j as usize];
            }
            let t = if self.y[i] == 1 { 1.0 } else { 0.0 };
            loss += s * (softplus(z) - t * z);
            let r = s * (sigmoid(z) - t);
            for (&j, &v) in idx.iter().zip(val) {
                grad[j as usize] += f64::from(v) * r;
            }
            if self.fit_intercept {
                grad[nw] += r;
            }
        }
        loss
    }
}

/// Row ranges the objective is split into (see [`Problem::eval`]).
const CHUNKS: usize = 8;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A sum's start: `Iterator::sum` of f64 folds from -0.0, and the fused
/// loops below keep its exact arithmetic.
const SUM_START: f64 = -0.0;

/// One L-BFGS correction pair: a step `s`, the gradient's change `y` over
/// it, and their products.
struct Pair {
    s: Vec<f64>,
    y: Vec<f64>,
    /// 1 / (s · y)
    rho: f64,
    /// s · y and y · y: the newest pair scales the next direction by their
    /// ratio.
    sy: f64,
    yy: f64,
}

/// Minimises `problem` from `theta` with L-BFGS. Returns (iterations,
/// converged).
///
/// The vectors are as long as the model has weights, far beyond the cache,
/// so each pass over them does all it can: the two-loop recursion's dot
/// products are made in the same pass as the update before them. Every
/// value is computed as the plain loops would (same operations, same
/// order), so the solution is the same to the bit.
fn lbfgs(
    problem: &Problem,
    theta: &mut [f64],
    params: &LogisticValidParams,
) -> Result<(u64, bool), SolverError> {
    let n = theta.len();
    let mut grad = vec![0.0; n];
    let mut scratch = vec![vec![0.0; n]; CHUNKS];
    let mut f = problem.eval(theta, &mut grad, &mut scratch);
    if !f.is_finite() {
        return Err(SolverError::NonFinite);
    }
    let mut hist: VecDeque<Pair> = VecDeque::with_capacity(params.memory);
    let mut dir = vec![0.0; n];
    let mut alpha = vec![0.0; params.memory];
    let mut trial = vec![0.0; n];
    let mut trial_grad = vec![0.0; n];
    let tol = params.gradient_tolerance;
    for iter in 0..params.max_iterations {
        // dir = grad; on the way, the largest |gradient| and the first dot
        // product of the recursion, s · dir for the newest pair.
        let mut gmax = 0.0f64;
        let mut acc = SUM_START;
        match hist.back() {
            Some(p) => {
                for ((d, &g), &sk) in dir.iter_mut().zip(&grad).zip(&p.s) {
                    *d = g;
                    gmax = gmax.max(g.abs());
                    acc += sk * g;
                }
            }
            None => {
                for (d, &g) in dir.iter_mut().zip(&grad) {
                    *d = g;
                    gmax = gmax.max(g.abs());
                }
            }
        }
        if gmax <= tol {
            return Ok((iter, true));
        }
        // Two-loop recursion: dir = -H·grad. alpha[i] belongs to hist[i]
        // (oldest first); `acc` always holds the dot product the next step
        // needs.
        let m = hist.len();
        let gamma = match hist.back() {
            Some(p) => p.sy / p.yy,
            None => 1.0 / grad.iter().map(|g| g * g).sum::<f64>().sqrt().max(1.0),
        };
        for i in (0..m).rev() {
            let p = &hist[i];
            alpha[i] = p.rho * acc;
            let a = alpha[i];
            acc = SUM_START;
            if i > 0 {
                // dir -= a·y, then s · dir for the next older pair.
                for ((d, &yk), &sk) in dir.iter_mut().zip(&p.y).zip(&hist[i - 1].s) {
                    *d -= a * yk;
                    acc += sk * *d;
                }
            } else {
                // dir -= a·y, dir *= gamma, then y · dir for the second loop.
                for (d, &yk) in dir.iter_mut().zip(&p.y) {
                    *d -= a * yk;
                    *d *= gamma;
                    acc += yk * *d;
                }
            }
        }
        let mut slope = if m == 0 {
            // dir *= gamma, dir = -dir, then the slope grad · dir.
            let mut slope = SUM_START;
            for (d, &g) in dir.iter_mut().zip(&grad) {
                *d *= gamma;
                *d = -*d;
                slope += g * *d;
            }
            slope
        } else {
            for i in 0..m {
                let p = &hist[i];
                let coef = alpha[i] - p.rho * acc;
                acc = SUM_START;
                if i + 1 < m {
                    // dir += coef·s, then y · dir for the next newer pair.
                    for ((d, &sk), &yk) in dir.iter_mut().zip(&p.s).zip(&hist[i + 1].y) {
                        *d += coef * sk;
                        acc += yk * *d;
                    }
                } else {
                    // dir += coef·s, dir = -dir, then the slope grad · dir.
                    for ((d, &sk), &g) in dir.iter_mut().zip(&p.s).zip(&grad) {
                        *d += coef * sk;
                        *d = -*d;
                        acc += g * *d;
                    }
                }
            }
            acc
        };
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            hist.clear();
            dir.iter_mut().zip(&grad).for_each(|(d, g)| *d = -g);
            slope = dot(&grad, &dir);
        }
        // Armijo backtracking.
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..50 {
            trial
                .iter_mut()
                .zip(theta.iter().zip(&dir))
                .for_each(|(t, (x, d))| *t = x + step * d);
            let ft = problem.eval(&trial, &mut trial_grad, &mut scratch);
            if ft.is_finite() && ft <= f + 1e-4 * step * slope {
                accepted = Some(ft);
                break;
            }
            step *= 0.5;
        }
        let Some(f_new) = accepted else {
            // No decrease possible at machine precision: as good as it gets.
            return Ok((iter, gmax <= tol * 100.0));
        };
        // Reuse the oldest pair's buffers once the memory is full.
        let (mut s, mut y) = match hist.len() == params.memory {
            true => hist.pop_front().map(|p| (p.s, p.y)).unwrap_or_default(),
            false => (Vec::new(), Vec::new()),
        };
        s.resize(n, 0.0);
        y.resize(n, 0.0);
        // s = trial - theta, y = trial_grad - grad, their products, and
        // the step taken: theta = trial, grad = trial_grad.
        let (mut sy, mut yy) = (SUM_START, SUM_START);
        for (((sk, yk), (x, g)), (&t, &tg)) in s
            .iter_mut()
            .zip(y.iter_mut())
            .zip(theta.iter_mut().zip(grad.iter_mut()))
            .zip(trial.iter().zip(&trial_grad))
        {
            *sk = t - *x;
            *yk = tg - *g;
            sy += *sk * *yk;
            yy += *yk * *yk;
            *x = t;
            *g = tg;
        }
        let decrease = f - f_new;
        f = f_new;
        if sy > 1e-12 {
            hist.push_back(Pair {
                s,
                y,
                rho: 1.0 / sy,
                sy,
                yy,
            });
        }
        if decrease <= 1e-14 * f.abs().max(1.0) {
            let gmax = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            return Ok((iter + 1, gmax <= tol));
        }
    }
    let gmax = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    Ok((params.max_iterations, gmax <= tol))
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
        let problem = Problem {
            x: &compact,
            y,
            sample_weight,
            outputs,
            penalty: 1.0 / (self.c * total),
            total_weight: total,
            fit_intercept: self.fit_intercept,
        };
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
        let (iterations, converged) = lbfgs(&problem, &mut theta, self)?;
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
            converged,
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
    use linfa::prelude::*;
    use linfa_logistic::{LogisticRegression, MultiLogisticRegression};

    /// A small deterministic dense problem: `n` samples, 4 features, labels
    /// from a noisy linear rule over `k` classes.
    fn problem(n: usize, k: usize) -> (Array2<f64>, Array1<usize>) {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
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
        assert!(ours.converged);
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
