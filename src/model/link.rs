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
