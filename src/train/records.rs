//! The training matrix: a CSR matrix of samples × features (f32 values,
//! u32 columns) that linfa accepts as records.

use linfa::dataset::Records;
use ndarray::ArrayView2;
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
    pub(super) fn compact_columns(&self) -> (SparseRecords, Vec<usize>) {
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

    /// Every entry of these columns set to 0 (the matrix's shape and
    /// entries kept): a model fitted on it leaves their weights at 0, and
    /// fits every other weight as if the columns were not there.
    pub(super) fn clear_columns(&mut self, columns: &[u32]) {
        if columns.is_empty() {
            return;
        }
        for mut row in self.matrix.outer_iterator_mut() {
            for (j, v) in row.iter_mut() {
                if columns.contains(&(j as u32)) {
                    *v = 0.0;
                }
            }
        }
    }

    /// The rows in `ranges`, in order, as a matrix of their own.
    pub(super) fn rows(&self, ranges: &[std::ops::Range<usize>]) -> SparseRecords {
        let parts: Vec<(&Self, std::ops::Range<usize>)> =
            ranges.iter().map(|r| (self, r.clone())).collect();
        Self::stack(self.nfeatures(), &parts)
    }

    /// Rows of several matrices `n_features` wide, in order: each part a
    /// matrix and a range of its rows.
    pub(super) fn stack(
        n_features: usize,
        parts: &[(&SparseRecords, std::ops::Range<usize>)],
    ) -> SparseRecords {
        let mut indptr = vec![0usize];
        let (mut indices, mut data) = (Vec::new(), Vec::new());
        for (m, range) in parts {
            for i in range.clone() {
                let (idx, val) = m.row(i);
                indices.extend_from_slice(idx);
                data.extend_from_slice(val);
                indptr.push(indices.len());
            }
        }
        let n_rows = indptr.len() - 1;
        Self {
            matrix: Csr::new((n_rows, n_features), indptr, indices, data),
        }
    }

    pub fn matrix(&self) -> &Csr {
        &self.matrix
    }

    pub(super) fn row(&self, i: usize) -> (&[u32], &[f32]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(m: &SparseRecords) -> Vec<(Vec<u32>, Vec<f32>)> {
        (0..m.nsamples())
            .map(|i| {
                let (j, v) = m.row(i);
                (j.to_vec(), v.to_vec())
            })
            .collect()
    }

    #[test]
    fn rows_of_several_matrices_stack_in_order() {
        let a = SparseRecords::from_rows(4, [&[(0, 1.0)][..], &[(1, 2.0), (3, 3.0)], &[]]);
        let b = SparseRecords::from_rows(4, [&[(2, 4.0)][..], &[(0, 5.0)]]);
        let s = SparseRecords::stack(4, &[(&a, 1..3), (&b, 0..2), (&a, 0..1)]);
        assert_eq!((s.nsamples(), s.nfeatures()), (5, 4));
        assert_eq!(
            rows(&s),
            [
                (vec![1, 3], vec![2.0, 3.0]),
                (vec![], vec![]),
                (vec![2], vec![4.0]),
                (vec![0], vec![5.0]),
                (vec![0], vec![1.0]),
            ]
        );
        // `rows` is the one-matrix case.
        assert_eq!(
            rows(&a.rows(&[2..3, 0..1])),
            rows(&SparseRecords::stack(4, &[(&a, 2..3), (&a, 0..1)]))
        );
        assert_eq!(SparseRecords::stack(4, &[]).nsamples(), 0);
    }
}
