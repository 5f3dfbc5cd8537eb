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
        for (o, &zk) in out.iter_mut().zip(z) {
            *o = zk - m;
        }
        exp_all(out);
        let sum = total(out);
        out.iter_mut().for_each(|x| *x /= sum);
    }
}

/// Softmax's denominator: the exponentials' sum, added in order.
#[inline(always)]
fn total(e: &[f64]) -> f64 {
    e.iter().fold(0.0, |sum, &x| sum + x)
}

/// 1 / (1 + e^-z), as e^-|z| over 1 + e^-|z| with the numerator chosen
/// without a branch: the sign of a score is what the CPU cannot guess.
/// (For z ≥ 0 that is 1 / (1 + e^-z); for z < 0, e^z / (1 + e^z): the same
/// operations, so the same bits, as computing each case on its own.)
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    sigmoid_of(z, exp_nonpositive(-z.abs()))
}

/// [`sigmoid`] of `z` from `e` = e^-|z|.
#[inline(always)]
pub(crate) fn sigmoid_of(z: f64, e: f64) -> f64 {
    let numerator = if z >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
}

/// e^x for x ≤ 0 (all a link needs: softmax's scores minus their
/// largest, sigmoid's -|z|), within 2 ulp of libm's `exp`, 0 below -708
/// (where e^x is under 3.3e-308), NaN for NaN. Without branches or a
/// table, so that [`links`]' loop of them is vectorized, and the same bits
/// on every target (Rust never fuses a multiply and an add). One value at
/// a time it is no faster than libm's; a mixture's blend, one vectorized
/// loop instead of 36 calls to libm, scored `data/mixture.toml`'s model
/// 11% faster (`slant bench score`, 10 alternating runs, medians: 413k to
/// 458k passages/s), the default 1% (621k to 628k).
#[inline(always)]
pub fn exp_nonpositive(x: f64) -> f64 {
    // x = k ln2 + r, |r| <= ln2 / 2; e^x = 2^k e^r.
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // ln 2 in two parts (Cody and Waite, as in fdlibm): LN2_HI's low 32
    // bits are zero, so k · LN2_HI is exact for |k| < 2^11.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Adding 1.5 · 2^52 rounds to an integer, left in the low bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    // Below this, 2^k would not be a normal number; e^-708 is 3e-308.
    const LOWEST: f64 = -708.0;
    // NaN compares false, and stays NaN.
    let below = x < LOWEST;
    let x = if below { LOWEST } else { x };
    let t = x * LOG2E + SHIFT;
    let k = t - SHIFT;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // e^r by its Taylor series to r^13 / 13! (|r| <= 0.347: the next term
    // is below 2^-57), in Estrin's scheme for fewer dependent steps.
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let c = |a: f64, b: f64| a + b * r;
    let p01 = c(1.0, 1.0);
    let p23 = c(1.0 / 2.0, 1.0 / 6.0);
    let p45 = c(1.0 / 24.0, 1.0 / 120.0);
    let p67 = c(1.0 / 720.0, 1.0 / 5_040.0);
    let p89 = c(1.0 / 40_320.0, 1.0 / 362_880.0);
    let p1011 = c(1.0 / 3_628_800.0, 1.0 / 39_916_800.0);
    let p1213 = c(1.0 / 479_001_600.0, 1.0 / 6_227_020_800.0);
    let p0_3 = p01 + p23 * r2;
    let p4_7 = p45 + p67 * r2;
    let p8_11 = p89 + p1011 * r2;
    let p0_7 = p0_3 + p4_7 * r4;
    let p8_13 = p8_11 + p1213 * r4;
    let p = p0_7 + p8_13 * r8;
    // 2^k from k's bits in t: k + 1023 in the exponent field.
    let k_bits = t.to_bits().wrapping_sub(SHIFT.to_bits());
    let scale = f64::from_bits(k_bits.wrapping_add(1023) << 52);
    if below {
        0.0
    } else {
        p * scale
    }
}

/// The links of a list of linear models, planned once: each given as (the
/// first column of its kept scores, see [`kept`]; its number of classes),
/// its probabilities placed in the output in list order (each model's
/// classes in turn). [`Links::run`] gives each what [`link`] gives it, bit
/// for bit, with all their exponentials in one loop, which is vectorized,
/// rather than a model at a time; and with the models grouped by their
/// number of classes, two- and three-class models (every head's but a
/// gate over more than two domains) take straight-line code with no
/// loop over classes.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// Two classes: (score column, first output).
    sigmoids: Vec<(usize, usize)>,
    /// Three classes: (first kept column, first output).
    softmax3: Vec<(usize, usize)>,
    /// More: (first kept column, classes, first output).
    softmax: Vec<(usize, usize, usize)>,
    /// Probabilities and exponentials in all.
    outputs: usize,
    exps: usize,
}

impl Links {
    pub fn new(models: &[(usize, usize)]) -> Self {
        let mut links = Self::default();
        for &(c, classes) in models {
            let at = links.outputs;
            match classes {
                0..=2 => links.sigmoids.push((c, at)),
                3 => links.softmax3.push((c, at)),
                _ => links.softmax.push((c, classes, at)),
            }
            links.outputs += classes.max(2);
            links.exps += if classes <= 2 { 1 } else { classes };
        }
        links
    }

    /// Probabilities in all: the length of `run`'s output.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Every model's probabilities from `scores`, into `out` (sized once;
    /// later calls overwrite). `exps` is scratch.
    pub fn run(&self, scores: &[f32], exps: &mut Vec<f64>, out: &mut Vec<f64>) {
        let z = |c: usize| f64::from(scores.get(c).copied().unwrap_or(0.0));
        exps.resize(self.exps, 0.0);
        out.resize(self.outputs, 0.0);
        let (sig, rest) = exps.split_at_mut(self.sigmoids.len().min(self.exps));
        let (soft3, soft) = rest.split_at_mut((3 * self.softmax3.len()).min(rest.len()));
        // As `sigmoid`.
        for (e, &(c, _)) in sig.iter_mut().zip(&self.sigmoids) {
            *e = -z(c).abs();
        }
        // As `link`'s softmax, over the first class's 0 and the kept
        // scores.
        for (e, &(c, _)) in soft3.chunks_exact_mut(3).zip(&self.softmax3) {
            let (a, b) = (z(c), z(c + 1));
            let m = f64::max(f64::max(0.0, a), b);
            e.copy_from_slice(&[0.0 - m, a - m, b - m]);
        }
        let mut rest = &mut soft[..];
        for &(c, classes, _) in &self.softmax {
            let Some((e, tail)) = std::mem::take(&mut rest).split_at_mut_checked(classes) else {
                break;
            };
            let m = (0..classes - 1).map(|k| z(c + k)).fold(0.0, f64::max);
            e[0] = 0.0 - m;
            for (k, x) in e.iter_mut().skip(1).enumerate() {
                *x = z(c + k) - m;
            }
            rest = tail;
        }
        exp_all(exps);
        let (sig, rest) = exps.split_at(self.sigmoids.len().min(self.exps));
        let (soft3, soft) = rest.split_at((3 * self.softmax3.len()).min(rest.len()));
        for (&e, &(c, at)) in sig.iter().zip(&self.sigmoids) {
            if let Some([q, p]) = out.get_mut(at..at + 2) {
                *p = sigmoid_of(z(c), e);
                *q = 1.0 - *p;
            }
        }
        for (e, &(_, at)) in soft3.chunks_exact(3).zip(&self.softmax3) {
            if let (Some([p0, p1, p2]), [e0, e1, e2]) = (out.get_mut(at..at + 3), e) {
                // As `total`: from 0, in order.
                let sum = ((0.0 + e0) + e1) + e2;
                (*p0, *p1, *p2) = (e0 / sum, e1 / sum, e2 / sum);
            }
        }
        let mut rest = soft;
        for &(_, classes, at) in &self.softmax {
            let (Some((e, tail)), Some(p)) = (
                rest.split_at_checked(classes),
                out.get_mut(at..at + classes),
            ) else {
                break;
            };
            let sum = total(e);
            p.iter_mut().zip(e).for_each(|(p, &x)| *p = x / sum);
            rest = tail;
        }
    }
}

/// [`exp_nonpositive`] of every value, in place: in an AVX2 build (four
/// lanes a step) where the CPU has AVX2. The same operations on every
/// lane, so the same bits as one value at a time.
#[inline(always)]
fn exp_all(xs: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2() {
        // SAFETY: this CPU has AVX2.
        unsafe { exp_all_avx2(xs) };
        return;
    }
    exp_all_body(xs);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn exp_all_avx2(xs: &mut [f64]) {
    exp_all_body(xs);
}

#[inline(always)]
fn exp_all_body(xs: &mut [f64]) {
    for x in xs {
        *x = exp_nonpositive(*x);
    }
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
    fn exp_nonpositive_is_within_two_ulp_of_libm() {
        let ulp = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
        let mut worst = 0;
        for i in 0..=2_000_000u32 {
            let x = -745.0 * f64::from(i) / 2_000_000.0;
            let (ours, libm) = (exp_nonpositive(x), x.exp());
            if x >= -708.0 {
                worst = worst.max(ulp(ours, libm));
            } else {
                assert_eq!(ours, 0.0, "{x}");
            }
        }
        assert!(worst <= 2, "{worst} ulp");
        for x in [0.0, -0.0] {
            assert_eq!(exp_nonpositive(x), 1.0);
        }
        assert_eq!(exp_nonpositive(f64::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f64::NAN).is_nan());
    }

    #[test]
    fn links_give_each_model_what_link_gives_it() {
        let scores: Vec<f32> = (0..60)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.9)
            .collect();
        let models: Vec<(usize, usize)> =
            (0..11).map(|i| (i * 5, [2, 3, 5, 2, 16][i % 5])).collect();
        let (mut exps, mut out) = (Vec::new(), Vec::new());
        let links = Links::new(&models);
        // Twice: the second run overwrites the first's buffers.
        links.run(&scores, &mut exps, &mut out);
        links.run(&scores, &mut exps, &mut out);
        assert_eq!(out.len(), models.iter().map(|m| m.1).sum::<usize>());
        assert_eq!(links.outputs(), out.len());
        let mut got = out.as_slice();
        for &(c, classes) in &models {
            let stored = scores[c..c + kept(classes)].iter().map(|&s| f64::from(s));
            let z: Vec<f64> = if classes == 2 {
                stored.collect()
            } else {
                std::iter::once(0.0).chain(stored).collect()
            };
            let mut want = vec![0.0; classes];
            link(&z, &mut want);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&got[..classes]),
                bits(&want),
                "{classes} classes at {c}"
            );
            got = &got[classes..];
        }
    }

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
