//! L-BFGS: the two-loop recursion over the last few correction pairs and
//! an Armijo backtracking line search.

use std::collections::VecDeque;

use super::logistic::{LogisticValidParams, SolverError};
use super::objective::Problem;

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A sum's start: `Iterator::sum` of f64 folds from -0.0 (since Rust 1.82;
/// the crate needs 1.85), and the fused loops below keep its arithmetic.
pub(super) const SUM_START: f64 = -0.0;

/// One L-BFGS correction pair: a step `s`, the gradient's change `y` over
/// it, and their products.
pub(super) struct Pair {
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
pub(super) fn direction(
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

/// Armijo's sufficient-decrease constant: a step is taken when it lowers
/// the objective by at least this fraction of what the slope promises
/// (c1 = 1e-4, the usual choice: Nocedal & Wright, Numerical Optimization,
/// 2nd ed., section 3.1).
const ARMIJO: f64 = 1e-4;
/// Each backtracking step halves the step length...
const BACKTRACK: f64 = 0.5;
/// ...at most this many times (down to 2^-49 of the first step, about
/// machine precision relative to it) before the line search gives up.
const MAX_BACKTRACKS: u32 = 50;
/// A correction pair is kept only when s · y exceeds this: with s · y near
/// zero the pair carries no curvature, and 1 / (s · y) would blow up the
/// two-loop recursion (the curvature condition of Nocedal & Wright, 7.2).
const MIN_CURVATURE: f64 = 1e-12;
/// The solver stops when an accepted step lowers the objective by less
/// than this, relative to its size (at least 1): a hundred f64 ulps, so
/// further steps change nothing that matters.
const MIN_RELATIVE_DECREASE: f64 = 1e-14;

/// How a run of [`lbfgs`] ended. Only [`Termination::Converged`] means the
/// gradient reached the tolerance; the others leave the last accepted
/// point, which is the best found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Termination {
    /// The largest gradient element reached the tolerance.
    Converged,
    /// The iteration limit came first.
    MaxIterations {
        /// The largest gradient element at the end.
        gradient: f64,
    },
    /// The objective stopped decreasing (by less than 1e-14 relative)
    /// before the gradient reached the tolerance.
    Stalled { gradient: f64 },
    /// No step along the search direction, halved 50 times, decreased the
    /// objective enough.
    LineSearchFailed { gradient: f64 },
}

impl Termination {
    pub fn converged(&self) -> bool {
        *self == Self::Converged
    }
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Converged => write!(f, "converged"),
            Self::MaxIterations { gradient } => write!(
                f,
                "the iteration limit came first (largest gradient {gradient:.3e})"
            ),
            Self::Stalled { gradient } => write!(
                f,
                "the objective stopped decreasing (largest gradient {gradient:.3e})"
            ),
            Self::LineSearchFailed { gradient } => write!(
                f,
                "the line search found no step that decreases the objective (largest gradient {gradient:.3e})"
            ),
        }
    }
}

/// The largest |element| of `grad`.
fn largest(grad: &[f64]) -> f64 {
    grad.iter().fold(0.0f64, |m, g| m.max(g.abs()))
}

/// Minimises `problem` from `theta` with L-BFGS. Returns the iterations run
/// and how the run ended.
pub(super) fn lbfgs(
    problem: &Problem,
    theta: &mut [f64],
    params: &LogisticValidParams,
) -> Result<(u64, Termination), SolverError> {
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
            return Ok((iter, Termination::Converged));
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
        for _ in 0..MAX_BACKTRACKS {
            trial
                .iter_mut()
                .zip(theta.iter().zip(&dir))
                .for_each(|(t, (x, d))| *t = x + step * d);
            let ft = problem.eval(&trial, &mut trial_grad, &mut work);
            if ft.is_finite() && ft <= f + ARMIJO * step * slope {
                accepted = Some(ft);
                break;
            }
            step *= BACKTRACK;
        }
        let Some(f_new) = accepted else {
            // No decrease at machine precision: theta is the last accepted
            // point, but the gradient has not reached the tolerance.
            return Ok((iter, Termination::LineSearchFailed { gradient: gmax }));
        };
        // Reuse the oldest pair's buffers once the memory is full.
        let (mut s, mut y) = match hist.len() == params.memory {
            true => hist.pop_front().map(|p| (p.s, p.y)).unwrap_or_default(),
            false => (Vec::new(), Vec::new()),
        };
        let (sy, yy) = Pair::step(&mut s, &mut y, theta, &mut grad, &trial, &trial_grad);
        let decrease = f - f_new;
        f = f_new;
        if sy > MIN_CURVATURE {
            hist.push_back(Pair { s, y, sy, yy });
        }
        if decrease <= MIN_RELATIVE_DECREASE * f.abs().max(1.0) {
            let gradient = largest(&grad);
            let end = if gradient <= tol {
                Termination::Converged
            } else {
                Termination::Stalled { gradient }
            };
            return Ok((iter + 1, end));
        }
    }
    let gradient = largest(&grad);
    let end = if gradient <= tol {
        Termination::Converged
    } else {
        Termination::MaxIterations { gradient }
    };
    Ok((params.max_iterations, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::uniform;

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
