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

/// A mixture's probabilities, in place of its joint model's `p`:
/// `λ·p + (1 − λ)·Σ_s gate_s·expert_s`, with `experts` yielding each
/// source's probabilities in the gate's order.
pub fn blend<'a>(
    joint_weight: f64,
    p: &mut [f64],
    gate: &[f64],
    experts: impl Iterator<Item = &'a [f64]>,
) {
    for x in p.iter_mut() {
        *x *= joint_weight;
    }
    let rest = 1.0 - joint_weight;
    for (&g, e) in gate.iter().zip(experts) {
        for (x, &q) in p.iter_mut().zip(e) {
            *x += rest * g * q;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blend_weighs_the_joint_model_and_the_gated_experts() {
        let mut p = [0.2, 0.8];
        let experts: [&[f64]; 2] = [&[1.0, 0.0], &[0.5, 0.5]];
        blend(0.25, &mut p, &[0.6, 0.4], experts.into_iter());
        // 0.25·0.2 + 0.75·(0.6·1 + 0.4·0.5), and the same for the other.
        assert!((p[0] - (0.05 + 0.75 * 0.8)).abs() < 1e-12, "{p:?}");
        assert!((p[1] - (0.2 + 0.75 * 0.2)).abs() < 1e-12, "{p:?}");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
