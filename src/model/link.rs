//! Link functions: how a linear model's scores become class
//! probabilities. Two classes use one score (the log-odds of the second
//! label) and the sigmoid; more use one score per class and the softmax.
//! The scorer owns them; the solver imports them, so that training and
//! scoring turn the same scores into the same probabilities, bit for bit.

/// Score columns a linear model over `n_classes` needs: one log-odds for
/// two classes (sigmoid), one score per class otherwise (softmax).
pub fn outputs(n_classes: usize) -> usize {
    if n_classes == 2 {
        1
    } else {
        n_classes
    }
}

/// Score columns the scorer keeps for a linear model over `classes` (at
/// least two) classes: one less. A two-class model has one, the log-odds of
/// the second. A model of more classes has one score per class, and softmax
/// gives the same probabilities for scores shifted by one amount: the
/// scorer keeps each class's weights minus the first class's, whose score
/// is then always 0 and is not stored. Fewer columns make narrower rows (a
/// mixture's three-class experts take two each).
pub fn kept(classes: usize) -> usize {
    classes.saturating_sub(1).max(1)
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
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    let e = (-z.abs()).exp();
    let numerator = if z >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
}

/// One term of a mixture's blend, `λ·p_joint + Σ_s (1 − λ)·g_s·p_s`:
/// adds `share · q` to `p` (the joint model's probabilities, already
/// times λ). Scoring and training both blend with it, a term at a time.
pub fn add_share(p: &mut [f64], share: f64, q: &[f64]) {
    for (x, &y) in p.iter_mut().zip(q) {
        *x += share * y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blend_weighs_the_joint_model_and_the_gated_experts() {
        let mut p = [0.2 * 0.25, 0.8 * 0.25];
        add_share(&mut p, 0.75 * 0.6, &[1.0, 0.0]);
        add_share(&mut p, 0.75 * 0.4, &[0.5, 0.5]);
        // 0.25·0.2 + 0.75·(0.6·1 + 0.4·0.5), and the same for the other.
        assert!((p[0] - (0.05 + 0.75 * 0.8)).abs() < 1e-12, "{p:?}");
        assert!((p[1] - (0.2 + 0.75 * 0.2)).abs() < 1e-12, "{p:?}");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
