//! Dense row-major feature matrices for the downstream models.

/// A row-major `[rows, cols]` matrix of `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Values, row by row.
    pub data: Vec<f32>,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
}

impl Matrix {
    /// Wraps row-major values; `data.len()` must be `rows * cols`.
    ///
    /// # Panics
    /// When the length does not match (a programming error, not an input error).
    #[must_use]
    pub fn new(data: Vec<f32>, rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "matrix data does not match its shape");
        Self { data, rows, cols }
    }

    /// The rows at `indices`, in that order.
    #[must_use]
    pub fn select(&self, indices: &[usize]) -> Self {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(&self.data[i * self.cols..(i + 1) * self.cols]);
        }
        Self {
            data,
            rows: indices.len(),
            cols: self.cols,
        }
    }

    /// `self`'s rows, then `other`'s (same number of columns).
    #[must_use]
    pub fn vconcat(&self, other: &Self) -> Self {
        assert_eq!(self.cols, other.cols, "vconcat needs equal column counts");
        let mut data = Vec::with_capacity(self.data.len() + other.data.len());
        data.extend_from_slice(&self.data);
        data.extend_from_slice(&other.data);
        Self {
            data,
            rows: self.rows + other.rows,
            cols: self.cols,
        }
    }

    /// `[self | other]`, side by side (same number of rows).
    #[must_use]
    pub fn hconcat(&self, other: &Self) -> Self {
        assert_eq!(self.rows, other.rows, "hconcat needs equal row counts");
        let cols = self.cols + other.cols;
        let mut data = Vec::with_capacity(self.rows * cols);
        for r in 0..self.rows {
            data.extend_from_slice(&self.data[r * self.cols..(r + 1) * self.cols]);
            data.extend_from_slice(&other.data[r * other.cols..(r + 1) * other.cols]);
        }
        Self {
            data,
            rows: self.rows,
            cols,
        }
    }

    /// Per-column mean and standard deviation (std 1 for a constant column).
    #[must_use]
    pub fn column_moments(&self) -> Vec<(f32, f32)> {
        let mut sums = vec![(0.0_f64, 0.0_f64); self.cols];
        for row in self.data.chunks_exact(self.cols.max(1)) {
            for (s, &v) in sums.iter_mut().zip(row) {
                s.0 += f64::from(v);
                s.1 += f64::from(v) * f64::from(v);
            }
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        sums.into_iter()
            .map(|(s, ss)| {
                let n = self.rows.max(1) as f64;
                let mean = s / n;
                let std = (ss / n - mean * mean).max(0.0).sqrt();
                (mean as f32, if std > 1e-12 { std as f32 } else { 1.0 })
            })
            .collect()
    }

    /// Standardises every column with the given moments.
    pub fn standardize(&mut self, moments: &[(f32, f32)]) {
        for row in self.data.chunks_exact_mut(self.cols.max(1)) {
            for (v, &(mean, std)) in row.iter_mut().zip(moments) {
                *v = (*v - mean) / std;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_concat_and_standardize() {
        let a = Matrix::new(vec![1.0, 2.0, 3.0, 4.0], 2, 2);
        let b = Matrix::new(vec![5.0, 6.0], 2, 1);
        assert_eq!(a.hconcat(&b).data, vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
        assert_eq!(a.select(&[1, 1]).data, vec![3.0, 4.0, 3.0, 4.0]);
        let mut c = a.clone();
        c.standardize(&a.column_moments());
        assert_eq!(c.data, vec![-1.0, -1.0, 1.0, 1.0]);
    }
}
