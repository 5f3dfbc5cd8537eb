//! Explanations: each head's score for a passage with the features that
//! pushed its decision most, and their byte spans in the passage.

use super::scorer::Workspace;
use super::scorer::{Head, Model};

/// One head's score for one passage.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadScore {
    /// Index into [`Model::heads`].
    pub head: usize,
    pub label: usize,
    pub probabilities: Vec<f64>,
    pub contributions: Vec<Contribution>,
}

/// A feature's push towards the decided label.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub feature: u32,
    pub weight: f64,
    /// UTF-8 byte spans in the passage.
    pub spans: Vec<(u32, u32)>,
}

impl Model {
    /// Weights of feature `j` for `head`.
    fn weights(&self, j: u32, head: &Head) -> &[f32] {
        self.row(j)
            .and_then(|row| row.get(head.column..head.column + head.outputs))
            .unwrap_or(&[])
    }

    /// Scores one passage with the heads in `heads` (indices; all when
    /// empty), adding the top `explain` contributions per head.
    pub fn score(
        &self,
        passage: &str,
        heads: &[usize],
        explain: usize,
        ws: &mut Workspace,
    ) -> Vec<HeadScore> {
        self.classify(passage, ws);
        if explain > 0 {
            self.featurizer.transform(passage, &mut ws.scan);
        }
        let n = if heads.is_empty() {
            self.heads.len()
        } else {
            heads.len()
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let h = if heads.is_empty() { i } else { heads[i] };
            let Some(head) = self.heads.get(h) else {
                continue;
            };
            let label = ws.labels[h];
            let probabilities =
                ws.probabilities[head.offset..head.offset + head.labels.len()].to_vec();
            let contributions = if explain > 0 {
                self.explain(passage, head, label, explain, ws)
            } else {
                Vec::new()
            };
            out.push(HeadScore {
                head: h,
                label,
                probabilities,
                contributions,
            });
        }
        out
    }

    /// The `k` features of the last transformed passage with the largest
    /// contribution (in absolute value) to `label`'s score relative to the
    /// other labels: x_j·w_j (signed towards `label`) for two classes,
    /// x_j·(w_jl − mean_c w_jc) otherwise.
    /// Needs the vector of `featurizer.transform(passage)` in `ws`.
    fn explain(
        &self,
        passage: &str,
        head: &Head,
        label: usize,
        k: usize,
        ws: &mut Workspace,
    ) -> Vec<Contribution> {
        let mut contrib: Vec<(u32, f64)> = ws
            .scan
            .vector()
            .iter()
            .map(|&(j, v)| {
                let row = self.weights(j, head);
                let w = if head.outputs == 1 {
                    if label == 1 {
                        f64::from(row[0])
                    } else {
                        -f64::from(row[0])
                    }
                } else {
                    let mean = row.iter().map(|&w| f64::from(w)).sum::<f64>() / row.len() as f64;
                    f64::from(row[label]) - mean
                };
                (j, f64::from(v) * w)
            })
            .filter(|&(_, w)| w != 0.0)
            .collect();
        contrib.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        contrib.truncate(k);
        let wanted: Vec<u32> = contrib.iter().map(|&(j, _)| j).collect();
        let spans = self.featurizer.spans(passage, &mut ws.scan, &wanted);
        contrib
            .into_iter()
            .zip(spans)
            .map(|((feature, weight), spans)| Contribution {
                feature,
                weight,
                spans,
            })
            .collect()
    }
}
