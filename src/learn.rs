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

use std::collections::VecDeque;

use linfa::dataset::Records;
use linfa::traits::{Fit, FitWith, PredictInplace};
use linfa::{DatasetBase, ParamGuard};
use ndarray::{Array1, Array2, ArrayView2};
use sprs::{CsMatI, TriMatI};

use crate::model::link::{link, outputs, sigmoid};

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
    /// The [`CHUNKS`] row ranges the objective is summed over.
    chunks: Vec<Chunk>,
    y: &'a [usize],
    sample_weight: Vec<f64>,
    outputs: usize,
    /// 1 / (C · Σ sample weights): the penalty on the mean-loss scale.
    penalty: f64,
    total_weight: f64,
    fit_intercept: bool,
    threads: usize,
}

/// A row range with its own numbering of the features its rows hold, so
/// that its weights and gradient sit in arrays no wider than its rows
/// need: far narrower than the model, so more of them stays in cache.
struct Chunk {
    rows: std::ops::Range<usize>,
    /// The range's features, ascending: local feature `l` is `features[l]`.
    features: Vec<u32>,
    /// The local feature of each of the range's entries, in `x`'s order.
    local: Vec<u32>,
    /// `x`'s index of the range's first entry.
    first_entry: usize,
}

/// A chunk's buffers for one evaluation.
struct ChunkWork {
    /// The weights of the chunk's features, in its numbering.
    weights: Vec<f64>,
    /// The chunk's part of the weights' gradient, in its numbering.
    grad: Vec<f64>,
    intercept: Vec<f64>,
    loss: f64,
}

/// Runs `f` on every task, over up to `threads` threads (the caller's
/// included). The tasks are cut before they run, so what each computes
/// does not depend on the number of threads.
fn parallel<T: Send>(threads: usize, tasks: Vec<T>, f: impl Fn(T) + Sync) {
    let workers = threads.clamp(1, tasks.len().max(1));
    let mut queues: Vec<Vec<T>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, task) in tasks.into_iter().enumerate() {
        queues[i % workers].push(task);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let mut queues = queues.into_iter();
        let own = queues.next();
        for queue in queues {
            scope.spawn(move || queue.into_iter().for_each(f));
        }
        own.into_iter().flatten().for_each(f);
    });
}

impl<'a> Problem<'a> {
    fn new(
        x: &'a SparseRecords,
        y: &'a [usize],
        sample_weight: Vec<f64>,
        total_weight: f64,
        outputs: usize,
        c: f64,
        fit_intercept: bool,
    ) -> Self {
        let n = y.len();
        let indptr = x.matrix().indptr();
        let indices = x.matrix().indices();
        let mut id = vec![u32::MAX; x.nfeatures()];
        let chunks = (0..CHUNKS)
            .map(|c| {
                let rows = n * c / CHUNKS..n * (c + 1) / CHUNKS;
                let first_entry = indptr.index(rows.start);
                let cols = &indices[first_entry..indptr.index(rows.end)];
                for &j in cols {
                    id[j as usize] = 0;
                }
                let features: Vec<u32> = (0..x.nfeatures() as u32)
                    .filter(|&j| id[j as usize] == 0)
                    .collect();
                for (l, &j) in features.iter().enumerate() {
                    id[j as usize] = l as u32;
                }
                let local = cols.iter().map(|&j| id[j as usize]).collect();
                for &j in &features {
                    id[j as usize] = u32::MAX;
                }
                Chunk {
                    rows,
                    features,
                    local,
                    first_entry,
                }
            })
            .collect();
        Self {
            x,
            chunks,
            y,
            sample_weight,
            outputs,
            penalty: 1.0 / (c * total_weight),
            total_weight,
            fit_intercept,
            threads: std::thread::available_parallelism().map_or(1, |t| t.get()),
        }
    }

    fn n_weights(&self) -> usize {
        self.x.nfeatures() * self.outputs
    }

    /// Buffers for [`Problem::eval`], one per chunk.
    fn work(&self) -> Vec<ChunkWork> {
        let k = self.outputs;
        self.chunks
            .iter()
            .map(|c| ChunkWork {
                weights: vec![0.0; c.features.len() * k],
                grad: vec![0.0; c.features.len() * k],
                intercept: vec![0.0; k],
                loss: 0.0,
            })
            .collect()
    }

    /// Mean weighted loss plus penalty, and its gradient into `grad`.
    ///
    /// The rows are cut into [`CHUNKS`] fixed ranges, each summed on its own
    /// into its own buffers, and each gradient element is the ranges' sums
    /// added in range order: the result does not depend on how many cores
    /// the machine has, so the model file stays byte-identical. (A range
    /// without a feature adds nothing to it: its sum would be +0.0, which
    /// changes no other sum, none being -0.0.)
    fn eval(&self, theta: &[f64], grad: &mut [f64], work: &mut [ChunkWork]) -> f64 {
        let k = self.outputs;
        let nw = self.n_weights();
        let (w, b) = theta.split_at(nw);
        let tasks = self.chunks.iter().zip(work.iter_mut()).collect();
        parallel(self.threads, tasks, |(chunk, cw)| {
            self.eval_chunk(chunk, cw, w, b)
        });
        let work: &[ChunkWork] = work;
        let loss: f64 = work.iter().map(|cw| cw.loss).sum();
        let (gw, gb) = grad.split_at_mut(nw);
        gb.copy_from_slice(&work[0].intercept);
        for cw in &work[1..] {
            gb.iter_mut().zip(&cw.intercept).for_each(|(g, p)| *g += p);
        }
        // Each half of the features on its own thread, the penalty's sum
        // meanwhile on this one.
        let d = self.x.nfeatures();
        let half = d / 2;
        let (lo, hi) = gw.split_at_mut(half * k);
        let reg = std::thread::scope(|scope| {
            scope.spawn(move || self.gather_gradient(half..d, hi, w, work));
            let reg = w.iter().fold(0.0, |r, &wj| r + wj * wj);
            self.gather_gradient(0..half, lo, w, work);
            reg
        });
        loss + 0.5 * self.penalty * reg
    }

    /// The weights' gradient for `features` into `grad`: the chunks' sums in
    /// chunk order, then the penalty's part.
    fn gather_gradient(
        &self,
        features: std::ops::Range<usize>,
        grad: &mut [f64],
        w: &[f64],
        work: &[ChunkWork],
    ) {
        let k = self.outputs;
        let base = features.start * k;
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (chunk, cw) in self.chunks.iter().zip(work) {
            let from = chunk
                .features
                .partition_point(|&j| (j as usize) < features.start);
            let to = chunk
                .features
                .partition_point(|&j| (j as usize) < features.end);
            for (l, &j) in (from..to).zip(&chunk.features[from..to]) {
                let g = &mut grad[j as usize * k - base..][..k];
                for (g, p) in g.iter_mut().zip(&cw.grad[l * k..][..k]) {
                    *g += p;
                }
            }
        }
        for (g, wj) in grad.iter_mut().zip(&w[base..]) {
            *g += self.penalty * wj;
        }
    }

    /// One chunk's loss and gradient (see [`Problem::eval`]).
    fn eval_chunk(&self, chunk: &Chunk, cw: &mut ChunkWork, w: &[f64], b: &[f64]) {
        match self.outputs {
            1 => self.eval_chunk_for::<1>(chunk, cw, w, b),
            3 => self.eval_chunk_for::<3>(chunk, cw, w, b),
            4 => self.eval_chunk_for::<4>(chunk, cw, w, b),
            _ => self.eval_chunk_for::<0>(chunk, cw, w, b),
        }
    }

    /// [`Problem::eval_chunk`] for `K` outputs, or any number when `K` is 0:
    /// the common widths (one output for two classes, three or four for as
    /// many classes) get their own code, with constant strides.
    ///
    /// Rows go [`ROWS`] at a time: their scores first, side by side, then
    /// each row's loss and its gradient, row after row. Scores and gradient
    /// are made for up to four outputs per pass over a row, so that sums
    /// and residuals stay in registers.
    fn eval_chunk_for<const K: usize>(
        &self,
        chunk: &Chunk,
        cw: &mut ChunkWork,
        w: &[f64],
        b: &[f64],
    ) {
        let k = if K == 0 { self.outputs } else { K };
        for (l, &j) in chunk.features.iter().enumerate() {
            cw.weights[l * k..][..k].copy_from_slice(&w[j as usize * k..][..k]);
        }
        cw.grad.iter_mut().for_each(|g| *g = 0.0);
        cw.intercept.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = 0.0;
        let mut z = vec![0.0; ROWS * k];
        let mut r = vec![0.0; k];
        let mut start = chunk.rows.start;
        while start < chunk.rows.end {
            let group = start..chunk.rows.end.min(start + ROWS);
            start = group.end;
            for_blocks(k, |first, width| match width {
                1 => self.scores::<1, K>(chunk, group.clone(), first, &cw.weights, b, &mut z),
                2 => self.scores::<2, K>(chunk, group.clone(), first, &cw.weights, b, &mut z),
                3 => self.scores::<3, K>(chunk, group.clone(), first, &cw.weights, b, &mut z),
                _ => self.scores::<4, K>(chunk, group.clone(), first, &cw.weights, b, &mut z),
            });
            for (i, z) in group.zip(z.chunks(k)) {
                let s = self.sample_weight[i] / self.total_weight;
                if s == 0.0 {
                    continue;
                }
                let yi = self.y[i];
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
                for_blocks(k, |first, width| match width {
                    1 => self.add_gradient::<1, K>(chunk, i, first, &r, &mut cw.grad),
                    2 => self.add_gradient::<2, K>(chunk, i, first, &r, &mut cw.grad),
                    3 => self.add_gradient::<3, K>(chunk, i, first, &r, &mut cw.grad),
                    _ => self.add_gradient::<4, K>(chunk, i, first, &r, &mut cw.grad),
                });
                if self.fit_intercept {
                    for (gk, rk) in cw.intercept.iter_mut().zip(&r) {
                        *gk += rk;
                    }
                }
            }
        }
        cw.loss = loss;
    }

    /// Row `i`'s entries: its features in `chunk`'s numbering, and values.
    fn entries<'c>(&'c self, chunk: &'c Chunk, i: usize) -> (&'c [u32], &'c [f32]) {
        let indptr = self.x.matrix().indptr();
        let range = indptr.index(i) - chunk.first_entry..indptr.index(i + 1) - chunk.first_entry;
        (&chunk.local[range], self.x.row(i).1)
    }

    /// Scores `first..first + B` of the rows `group` (at most [`ROWS`]) into
    /// `z`, `outputs` per row (`K`, if not 0): each the intercept plus
    /// value × weight over the row's entries in order. The rows' sums are
    /// independent, so they advance side by side, one entry of each per
    /// step, and no add waits on the one before.
    fn scores<const B: usize, const K: usize>(
        &self,
        chunk: &Chunk,
        group: std::ops::Range<usize>,
        first: usize,
        w: &[f64],
        b: &[f64],
        z: &mut [f64],
    ) {
        let k = if K == 0 { self.outputs } else { K };
        let mut entries: [(&[u32], &[f32]); ROWS] = [(&[], &[]); ROWS];
        for (e, i) in entries.iter_mut().zip(group) {
            *e = self.entries(chunk, i);
        }
        let longest = entries.iter().map(|e| e.0.len()).max().unwrap_or(0);
        let mut sums = [[0.0f64; B]; ROWS];
        for sum in sums.iter_mut() {
            sum.copy_from_slice(&b[first..first + B]);
        }
        for step in 0..longest {
            for (sum, (idx, val)) in sums.iter_mut().zip(&entries) {
                if let (Some(&j), Some(&v)) = (idx.get(step), val.get(step)) {
                    let (j, v) = (j as usize, f64::from(v));
                    let row = &w[j * k + first..][..B];
                    for (zk, wk) in sum.iter_mut().zip(row) {
                        *zk += v * wk;
                    }
                }
            }
        }
        for (zr, sum) in z.chunks_mut(k).zip(&sums) {
            zr[first..first + B].copy_from_slice(sum);
        }
    }

    /// Adds row `i`'s part of the gradient for outputs `first..first + B`
    /// (of `K`, if not 0): value × residual for each of its features.
    fn add_gradient<const B: usize, const K: usize>(
        &self,
        chunk: &Chunk,
        i: usize,
        first: usize,
        r: &[f64],
        grad: &mut [f64],
    ) {
        let k = if K == 0 { self.outputs } else { K };
        let mut rb = [0.0; B];
        rb.copy_from_slice(&r[first..first + B]);
        let (idx, val) = self.entries(chunk, i);
        for (&j, &v) in idx.iter().zip(val) {
            let (j, v) = (j as usize, f64::from(v));
            let g = &mut grad[j * k + first..][..B];
            for (gk, rk) in g.iter_mut().zip(&rb) {
                *gk += v * rk;
            }
        }
    }
}

/// Calls `f(first, width)` over `0..outputs` in blocks of at most four.
fn for_blocks(outputs: usize, mut f: impl FnMut(usize, usize)) {
    let mut first = 0;
    while first < outputs {
        let width = (outputs - first).min(4);
        f(first, width);
        first += width;
    }
}

/// Row ranges the objective is split into (see [`Problem::eval`]).
const CHUNKS: usize = 8;

/// Rows scored side by side (see [`Problem::scores`]).
const ROWS: usize = 4;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A sum's start: `Iterator::sum` of f64 folds from -0.0 (since Rust 1.82;
/// the crate needs 1.85), and the fused loops below keep its arithmetic.
const SUM_START: f64 = -0.0;

/// One L-BFGS correction pair: a step `s`, the gradient's change `y` over
/// it, and their products.
struct Pair {
    s: Vec<f64>,
    y: Vec<f64>,
    /// s · y and y · y: the newest pair scales the next direction by their
    /// ratio.
    sy: f64,
    yy: f64,
}

impl Pair {
    /// 1 / (s · y)
    fn rho(&self) -> f64 {
        1.0 / self.sy
    }

    /// Moves `theta` and `grad` to `trial` and `trial_grad`, and fills `s`
    /// and `y` (resized to fit) with the step and the gradient's change.
    /// Returns (s · y, y · y). One pass does it all.
    fn step(
        s: &mut Vec<f64>,
        y: &mut Vec<f64>,
        theta: &mut [f64],
        grad: &mut [f64],
        trial: &[f64],
        trial_grad: &[f64],
    ) -> (f64, f64) {
        s.resize(theta.len(), 0.0);
        y.resize(theta.len(), 0.0);
        let (mut sy, mut yy) = (SUM_START, SUM_START);
        for (((sk, yk), (x, g)), (&t, &tg)) in s
            .iter_mut()
            .zip(y.iter_mut())
            .zip(theta.iter_mut().zip(grad.iter_mut()))
            .zip(trial.iter().zip(trial_grad))
        {
            *sk = t - *x;
            *yk = tg - *g;
            sy += *sk * *yk;
            yy += *yk * *yk;
            *x = t;
            *g = tg;
        }
        (sy, yy)
    }
}

/// The L-BFGS direction -H·grad into `dir` by the two-loop recursion over
/// `hist` (oldest first; `alpha[i]` belongs to `hist[i]`). Returns the
/// largest |gradient| and the slope grad · dir.
///
/// The vectors are as long as the model has weights, so each pass over them
/// does all it can: each dot product is made in the pass of the update
/// before it, and `acc` always holds the one the next step needs. Every
/// value is computed as the plain loops would (same operations, same
/// order), so the solution is the same to the bit.
fn direction(
    hist: &VecDeque<Pair>,
    grad: &[f64],
    dir: &mut [f64],
    alpha: &mut [f64],
) -> (f64, f64) {
    // dir = grad; on the way, the largest |gradient| and the first dot
    // product, s · dir for the newest pair.
    let mut gmax = 0.0f64;
    let mut acc = SUM_START;
    match hist.back() {
        Some(p) => {
            for ((d, &g), &sk) in dir.iter_mut().zip(grad).zip(&p.s) {
                *d = g;
                gmax = gmax.max(g.abs());
                acc += sk * g;
            }
        }
        None => {
            for (d, &g) in dir.iter_mut().zip(grad) {
                *d = g;
                gmax = gmax.max(g.abs());
            }
        }
    }
    let m = hist.len();
    let gamma = match hist.back() {
        Some(p) => p.sy / p.yy,
        None => 1.0 / grad.iter().map(|g| g * g).sum::<f64>().sqrt().max(1.0),
    };
    for i in (0..m).rev() {
        let p = &hist[i];
        alpha[i] = p.rho() * acc;
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
    if m == 0 {
        // dir *= gamma, dir = -dir, then the slope grad · dir.
        for (d, &g) in dir.iter_mut().zip(grad) {
            *d *= gamma;
            *d = -*d;
            acc += g * *d;
        }
    }
    for i in 0..m {
        let p = &hist[i];
        let coef = alpha[i] - p.rho() * acc;
        acc = SUM_START;
        if i + 1 < m {
            // dir += coef·s, then y · dir for the next newer pair.
            for ((d, &sk), &yk) in dir.iter_mut().zip(&p.s).zip(&hist[i + 1].y) {
                *d += coef * sk;
                acc += yk * *d;
            }
        } else {
            // dir += coef·s, dir = -dir, then the slope grad · dir.
            for ((d, &sk), &g) in dir.iter_mut().zip(&p.s).zip(grad) {
                *d += coef * sk;
                *d = -*d;
                acc += g * *d;
            }
        }
    }
    (gmax, acc)
}

/// Minimises `problem` from `theta` with L-BFGS. Returns (iterations,
/// converged).
fn lbfgs(
    problem: &Problem,
    theta: &mut [f64],
    params: &LogisticValidParams,
) -> Result<(u64, bool), SolverError> {
    let n = theta.len();
    let mut grad = vec![0.0; n];
    let mut work = problem.work();
    let mut f = problem.eval(theta, &mut grad, &mut work);
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
        let (gmax, mut slope) = direction(&hist, &grad, &mut dir, &mut alpha);
        if gmax <= tol {
            return Ok((iter, true));
        }
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
            let ft = problem.eval(&trial, &mut trial_grad, &mut work);
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
        let (sy, yy) = Pair::step(&mut s, &mut y, theta, &mut grad, &trial, &trial_grad);
        let decrease = f - f_new;
        f = f_new;
        if sy > 1e-12 {
            hist.push_back(Pair { s, y, sy, yy });
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

    /// Deterministic numbers in [0, 1) from `seed` (xorshift64).
    fn uniform(mut state: u64) -> impl FnMut() -> f64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

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

    /// The objective as plainly as it can be written: each row range summed
    /// into a full-width buffer in row order, the buffers added in range
    /// order, then the penalty.
    fn plain_eval(p: &Problem, theta: &[f64]) -> (f64, Vec<f64>) {
        let (k, nw, n) = (p.outputs, p.n_weights(), p.y.len());
        let (w, b) = theta.split_at(nw);
        let mut bufs = vec![vec![0.0; nw + k]; CHUNKS];
        let mut losses = [0.0f64; CHUNKS];
        for c in 0..CHUNKS {
            for i in n * c / CHUNKS..n * (c + 1) / CHUNKS {
                let s = p.sample_weight[i] / p.total_weight;
                if s == 0.0 {
                    continue;
                }
                let (idx, val) = p.x.row(i);
                let mut z = b.to_vec();
                for (&j, &v) in idx.iter().zip(val) {
                    for o in 0..k {
                        z[o] += f64::from(v) * w[j as usize * k + o];
                    }
                }
                let r: Vec<f64> = if k == 1 {
                    let t = if p.y[i] == 1 { 1.0 } else { 0.0 };
                    losses[c] += s * (softplus(z[0]) - t * z[0]);
                    vec![s * (sigmoid(z[0]) - t)]
                } else {
                    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + z.iter().map(|zk| (zk - m).exp()).sum::<f64>().ln();
                    losses[c] += s * (lse - z[p.y[i]]);
                    (0..k)
                        .map(|o| s * ((z[o] - lse).exp() - if o == p.y[i] { 1.0 } else { 0.0 }))
                        .collect()
                };
                for (&j, &v) in idx.iter().zip(val) {
                    for o in 0..k {
                        bufs[c][j as usize * k + o] += f64::from(v) * r[o];
                    }
                }
                if p.fit_intercept {
                    for o in 0..k {
                        bufs[c][nw + o] += r[o];
                    }
                }
            }
        }
        let mut grad = bufs[0].clone();
        for buf in &bufs[1..] {
            grad.iter_mut().zip(buf).for_each(|(g, b)| *g += b);
        }
        let loss: f64 = losses.iter().sum();
        let mut reg = 0.0;
        for (g, &wj) in grad[..nw].iter_mut().zip(w) {
            reg += wj * wj;
            *g += p.penalty * wj;
        }
        (loss + 0.5 * p.penalty * reg, grad)
    }

    /// The solver's objective (chunk-local numbering, rows side by side,
    /// outputs in blocks, threads) gives the plain sums to the bit: the
    /// model file depends on it. 2, 3 and 4 classes take code of their own
    /// width; 6 and 7 take the general code, in blocks of 4 and 2 or 3.
    #[test]
    fn objective_is_the_plain_sum_to_the_bit() {
        let mut next = uniform(0x9e37_79b9_7f4a_7c15);
        // 45 rows split unevenly into chunks and groups of rows; 5 rows
        // leave some chunks empty.
        for (k, n, d, intercept) in [
            (2, 45, 60, true),
            (3, 45, 60, true),
            (4, 45, 60, true),
            (6, 45, 60, true),
            (7, 45, 60, false),
            (3, 5, 9, true),
        ] {
            let rows: Vec<Vec<(u32, f32)>> = (0..n)
                .map(|_| {
                    let len = (next() * 14.0) as usize;
                    // Low features are common, high ones rare.
                    (0..len)
                        .map(|_| ((next() * next() * d as f64) as u32, next() as f32 + 0.01))
                        .collect()
                })
                .collect();
            let x = SparseRecords::from_rows(d, rows.iter().map(Vec::as_slice));
            let y: Vec<usize> = (0..n).map(|_| (next() * k as f64) as usize % k).collect();
            let sample_weight: Vec<f64> = (0..n)
                .map(|i| if i % 7 == 3 { 0.0 } else { next() + 0.5 })
                .collect();
            let total = sample_weight.iter().sum();
            let problem = Problem::new(&x, &y, sample_weight, total, outputs(k), 0.7, intercept);
            let theta: Vec<f64> = (0..problem.n_weights() + outputs(k))
                .map(|_| next() * 4.0 - 2.0)
                .collect();
            let mut grad = vec![0.0; theta.len()];
            let mut work = problem.work();
            let loss = problem.eval(&theta, &mut grad, &mut work);
            let (plain_loss, plain_grad) = plain_eval(&problem, &theta);
            assert_eq!(loss.to_bits(), plain_loss.to_bits(), "loss, {k} classes");
            for (e, (a, b)) in grad.iter().zip(&plain_grad).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "gradient {e}, {k} classes: {a} vs {b}"
                );
            }
        }
    }

    /// The fused L-BFGS passes give what the plain loops give, to the bit:
    /// the two-loop recursion over histories of 0 to 4 pairs, and the step.
    #[test]
    fn fused_lbfgs_passes_are_the_plain_loops_to_the_bit() {
        let mut unit = uniform(0x1234_5678_9abc_def1);
        let mut next = move || unit() * 2.0 - 1.0;
        let n = 37;
        for m in 0..5 {
            let mut vector = || (0..n).map(|_| next()).collect::<Vec<f64>>();
            // Each pair made by a step, as in the solver.
            let mut hist = VecDeque::new();
            for _ in 0..m {
                let (mut theta, mut grad) = (vector(), vector());
                let (theta0, grad0) = (theta.clone(), grad.clone());
                let (trial, trial_grad) = (vector(), vector());
                let (mut s, mut y) = (Vec::new(), Vec::new());
                let (sy, yy) =
                    Pair::step(&mut s, &mut y, &mut theta, &mut grad, &trial, &trial_grad);
                for e in 0..n {
                    assert_eq!(s[e].to_bits(), (trial[e] - theta0[e]).to_bits());
                    assert_eq!(y[e].to_bits(), (trial_grad[e] - grad0[e]).to_bits());
                }
                assert_eq!(theta, trial, "theta moves to the trial point");
                assert_eq!(grad, trial_grad, "grad moves to the trial gradient");
                assert_eq!(sy.to_bits(), dot(&s, &y).to_bits());
                assert_eq!(yy.to_bits(), dot(&y, &y).to_bits());
                hist.push_back(Pair { s, y, sy, yy });
            }
            let grad = vector();
            let mut dir = vec![0.0; n];
            let mut alpha = vec![0.0; 10];
            let (gmax, slope) = direction(&hist, &grad, &mut dir, &mut alpha);

            let mut plain = grad.clone();
            let mut plain_alpha = vec![0.0; m];
            for (i, p) in hist.iter().enumerate().rev() {
                plain_alpha[i] = p.rho() * dot(&p.s, &plain);
                plain
                    .iter_mut()
                    .zip(&p.y)
                    .for_each(|(d, yk)| *d -= plain_alpha[i] * yk);
            }
            let gamma = match hist.back() {
                Some(p) => dot(&p.s, &p.y) / dot(&p.y, &p.y),
                None => 1.0 / grad.iter().map(|g| g * g).sum::<f64>().sqrt().max(1.0),
            };
            plain.iter_mut().for_each(|d| *d *= gamma);
            for (i, p) in hist.iter().enumerate() {
                let b = p.rho() * dot(&p.y, &plain);
                plain
                    .iter_mut()
                    .zip(&p.s)
                    .for_each(|(d, sk)| *d += (plain_alpha[i] - b) * sk);
            }
            plain.iter_mut().for_each(|d| *d = -*d);
            let plain_slope = dot(&grad, &plain);
            let plain_gmax = grad.iter().fold(0.0f64, |a, g| a.max(g.abs()));

            assert_eq!(gmax.to_bits(), plain_gmax.to_bits(), "{m} pairs");
            assert_eq!(slope.to_bits(), plain_slope.to_bits(), "{m} pairs");
            for (a, b) in dir.iter().zip(&plain) {
                assert_eq!(a.to_bits(), b.to_bits(), "{m} pairs: {a} vs {b}");
            }
        }
    }
}
