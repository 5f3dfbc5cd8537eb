//! The objective L-BFGS minimises: the weighted mean log-loss plus the L2
//! penalty, and its gradient, summed over fixed row ranges on every core
//! in an order fixed by the data alone.

use super::records::SparseRecords;
use linfa::dataset::Records;
use rayon::prelude::*;

/// ln(1 + e^z) without overflow.
pub(super) fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// 1 / (1 + e^-z), with libm's `exp` as [`softplus`] and the softmax
/// below use: the solver's own. The scorer's link (and the dev
/// probabilities that choose C and thresholds) uses a faster exponential
/// of its own (`model::link::exp_nonpositive`), within 2 ulp of this one;
/// the gradient keeps libm's, so that speeding up scoring never moved a
/// trained weight.
fn sigmoid(z: f64) -> f64 {
    crate::model::link::sigmoid_of(z, (-z.abs()).exp())
}

/// The problem L-BFGS minimises: parameters are laid out as the weights
/// (feature-major, `outputs` per feature) followed by the intercepts.
pub(super) struct Problem<'a> {
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
}

/// A row range with its own numbering of the features its rows hold, so
/// that its weights and gradient sit in arrays no wider than its rows
/// need: far narrower than the model, so more of them stays in cache.
pub(super) struct Chunk {
    rows: std::ops::Range<usize>,
    /// The range's features, ascending: local feature `l` is `features[l]`.
    features: Vec<u32>,
    /// The local feature of each of the range's entries, in `x`'s order.
    local: Vec<u32>,
    /// `x`'s index of the range's first entry.
    first_entry: usize,
}

/// A chunk's buffers for one evaluation.
pub(super) struct ChunkWork {
    /// The weights of the chunk's features, in its numbering.
    weights: Vec<f64>,
    /// The chunk's part of the weights' gradient, in its numbering.
    grad: Vec<f64>,
    intercept: Vec<f64>,
    loss: f64,
}

impl<'a> Problem<'a> {
    pub(super) fn new(
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
        }
    }

    pub(super) fn n_weights(&self) -> usize {
        self.x.nfeatures() * self.outputs
    }

    /// Buffers for [`Problem::eval`], one per chunk.
    pub(super) fn work(&self) -> Vec<ChunkWork> {
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
    pub(super) fn eval(&self, theta: &[f64], grad: &mut [f64], work: &mut [ChunkWork]) -> f64 {
        let k = self.outputs;
        let nw = self.n_weights();
        let (w, b) = theta.split_at(nw);
        // On rayon's pool: each chunk into its own buffers, whichever thread
        // takes it, so the sums do not depend on the scheduling.
        self.chunks
            .par_iter()
            .zip(work.par_iter_mut())
            .for_each(|(chunk, cw)| self.eval_chunk(chunk, cw, w, b));
        let work: &[ChunkWork] = work;
        let loss: f64 = work.iter().map(|cw| cw.loss).sum();
        let (gw, gb) = grad.split_at_mut(nw);
        gb.copy_from_slice(&work[0].intercept);
        for cw in &work[1..] {
            gb.iter_mut().zip(&cw.intercept).for_each(|(g, p)| *g += p);
        }
        // Each half of the features as a task of its own, the penalty's sum
        // beside the first.
        let d = self.x.nfeatures();
        let half = d / 2;
        let (lo, hi) = gw.split_at_mut(half * k);
        let (reg, ()) = rayon::join(
            || {
                let reg = w.iter().fold(0.0, |r, &wj| r + wj * wj);
                self.gather_gradient(0..half, lo, w, work);
                reg
            },
            || self.gather_gradient(half..d, hi, w, work),
        );
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
pub(super) fn for_blocks(outputs: usize, mut f: impl FnMut(usize, usize)) {
    let mut first = 0;
    while first < outputs {
        let width = (outputs - first).min(4);
        f(first, width);
        first += width;
    }
}

/// Row ranges the objective is split into (see [`Problem::eval`]).
pub(super) const CHUNKS: usize = 8;

/// Rows scored side by side (see [`Problem::scores`]).
pub(super) const ROWS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::link::outputs;
    use crate::testing::uniform;

    /// The objective as plainly as it can be written: each row range summed
    /// into a full-width buffer in row order, the buffers added in range
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
}
