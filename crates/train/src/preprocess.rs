//! Preprocessing learned from the training data: how raw column values become the
//! network's input vector, and the reconstruction targets of the pretext tasks.
//!
//! - Numeric: `log1p` first when the column is non-negative and strongly right-skewed
//!   (skewness > 2, e.g. capital gains), then standardised with the training mean and std
//!   (a constant column gets std 1, so it encodes as 0). NULL (or NaN, or a value the
//!   transform cannot take, such as log1p(-2)) encodes as 0, the mean, plus a 0/1 "missing" input when the training column had NULLs.
//! - Categorical: one-hot over the vocabulary: the most frequent values (at most
//!   `max_vocab`, each seen at least `min_count` times), then an "other" slot when some
//!   values were cut, then a "missing" slot when the training column had NULLs. At
//!   inference an unseen value takes the "other" slot, or encodes as all zeros when there is
//!   none; a NULL where training had none also encodes as all zeros.
//!
//! The exported ONNX graph performs exactly these steps (see [`super::export`]).

use serde::{Deserialize, Serialize};

use super::table::{Column, FeatureTable};
use crate::Error;

/// Skewness above which a non-negative column is log-transformed.
const SKEW_FOR_LOG: f64 = 2.0;

/// How one numeric column is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericEncoding {
    /// Column name.
    pub name: String,
    /// Whether `log1p` is applied before standardising.
    pub log1p: bool,
    /// Training mean (after `log1p`).
    pub mean: f64,
    /// Training standard deviation (after `log1p`; 1 for a constant column).
    pub std: f64,
    /// Whether a missing-indicator input follows the value.
    pub missing_indicator: bool,
}

/// How one categorical column is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalEncoding {
    /// Column name.
    pub name: String,
    /// One-hot slots for these values, most frequent first.
    pub vocabulary: Vec<String>,
    /// Whether an "other" slot (rare and unseen values) follows the vocabulary.
    pub other_slot: bool,
    /// Whether a "missing" slot (NULL) follows.
    pub missing_slot: bool,
}

/// The encoding of one feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FeatureEncoding {
    /// A numeric column.
    Numeric(NumericEncoding),
    /// A categorical column.
    Categorical(CategoricalEncoding),
}

impl CategoricalEncoding {
    /// Number of one-hot slots.
    #[must_use]
    pub fn slots(&self) -> usize {
        self.vocabulary.len() + usize::from(self.other_slot) + usize::from(self.missing_slot)
    }

    /// The "other" slot's index, when there is one.
    #[must_use]
    pub fn other_index(&self) -> Option<usize> {
        self.other_slot.then_some(self.vocabulary.len())
    }

    /// The "missing" slot's index, when there is one.
    #[must_use]
    pub fn missing_index(&self) -> Option<usize> {
        self.missing_slot
            .then_some(self.vocabulary.len() + usize::from(self.other_slot))
    }
}

impl FeatureEncoding {
    /// Column name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Numeric(n) => &n.name,
            Self::Categorical(c) => &c.name,
        }
    }

    /// Width of this column's block in the input vector.
    #[must_use]
    pub fn input_width(&self) -> usize {
        match self {
            Self::Numeric(n) => 1 + usize::from(n.missing_indicator),
            Self::Categorical(c) => c.slots(),
        }
    }

    /// Width of this column's block in the reconstruction head: 1 for a number, one logit
    /// per slot for a category.
    #[must_use]
    pub fn target_width(&self) -> usize {
        match self {
            Self::Numeric(_) => 1,
            Self::Categorical(c) => c.slots(),
        }
    }
}

/// Options of [`Preprocessor::fit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VocabularyLimits {
    /// At most this many one-hot values per categorical column.
    pub max_vocab: usize,
    /// A value needs this many training rows to get its own slot.
    pub min_count: usize,
}

impl Default for VocabularyLimits {
    fn default() -> Self {
        Self {
            max_vocab: 64,
            min_count: 5,
        }
    }
}

/// The fitted preprocessing of every feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    /// One encoding per feature column, in input order.
    pub features: Vec<FeatureEncoding>,
}

/// A table encoded for training.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Row-major `[rows, input_width]` network inputs.
    pub inputs: Vec<f32>,
    /// Row-major `[rows, features]` reconstruction targets: the standardised value of a
    /// numeric column, the slot index of a categorical one.
    pub targets: Vec<f32>,
    /// Row-major `[rows, features]`: 1 where the target is known (numeric NULLs are 0).
    pub known: Vec<f32>,
    /// Number of rows.
    pub rows: usize,
}

impl Preprocessor {
    /// Learns the encoding of every column of `table`.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] when a column is NULL in every row or holds an infinite value.
    pub fn fit(table: &FeatureTable, limits: VocabularyLimits) -> crate::Result<Self> {
        let features = table
            .names
            .iter()
            .zip(&table.columns)
            .map(|(name, column)| match column {
                Column::Numeric(values) => fit_numeric(name, values).map(FeatureEncoding::Numeric),
                Column::Categorical { values, codes } => {
                    fit_categorical(name, values, codes, limits).map(FeatureEncoding::Categorical)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { features })
    }

    /// Width of the network's input vector.
    #[must_use]
    pub fn input_width(&self) -> usize {
        self.features.iter().map(FeatureEncoding::input_width).sum()
    }

    /// Width of the reconstruction head's output.
    #[must_use]
    pub fn target_width(&self) -> usize {
        self.features.iter().map(FeatureEncoding::target_width).sum()
    }

    /// `(start, width)` of each column's block in the input vector.
    #[must_use]
    pub fn input_spans(&self) -> Vec<(usize, usize)> {
        spans(self.features.iter().map(FeatureEncoding::input_width))
    }

    /// `(start, width)` of each column's block in the reconstruction head.
    #[must_use]
    pub fn target_spans(&self) -> Vec<(usize, usize)> {
        spans(self.features.iter().map(FeatureEncoding::target_width))
    }

    /// Encodes `table`, whose columns must be those the preprocessor was fitted on.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] when the columns differ.
    pub fn encode(&self, table: &FeatureTable) -> crate::Result<Encoded> {
        let names: Vec<&str> = self.features.iter().map(FeatureEncoding::name).collect();
        if table.names.iter().map(String::as_str).ne(names.iter().copied()) {
            return Err(Error::Invalid(format!(
                "the table's columns {:?} are not the preprocessor's {names:?}",
                table.names
            )));
        }
        let (rows, width, features) = (table.rows, self.input_width(), self.features.len());
        let mut inputs = vec![0.0_f32; rows * width];
        let mut targets = vec![0.0_f32; rows * features];
        let mut known = vec![0.0_f32; rows * features];
        for (j, ((encoding, column), (start, _))) in self
            .features
            .iter()
            .zip(&table.columns)
            .zip(self.input_spans())
            .enumerate()
        {
            for row in 0..rows {
                let input = &mut inputs[row * width + start..];
                let (target, is_known) = match (encoding, column) {
                    (FeatureEncoding::Numeric(n), Column::Numeric(values)) => encode_number(n, values[row], input),
                    (FeatureEncoding::Categorical(c), Column::Categorical { values, codes }) => {
                        let value = codes[row].map(|code| values[code as usize].as_str());
                        let slot = c.slot_of(value);
                        if let Some(slot) = slot {
                            input[slot] = 1.0;
                        }
                        #[allow(clippy::cast_precision_loss)]
                        (slot.map_or(0.0, |s| s as f32), slot.is_some())
                    }
                    _ => {
                        return Err(Error::Invalid(format!(
                            "column '{}' changed kind between fitting and encoding",
                            encoding.name()
                        )));
                    }
                };
                targets[row * features + j] = target;
                known[row * features + j] = if is_known { 1.0 } else { 0.0 };
            }
        }
        Ok(Encoded {
            inputs,
            targets,
            known,
            rows,
        })
    }
}

impl CategoricalEncoding {
    /// The slot a value takes, `None` for all zeros (unseen without an "other" slot, or
    /// NULL without a "missing" slot).
    #[must_use]
    pub fn slot_of(&self, value: Option<&str>) -> Option<usize> {
        match value {
            None => self.missing_index(),
            Some(v) => self
                .vocabulary
                .iter()
                .position(|known| known == v)
                .or_else(|| self.other_index()),
        }
    }
}

/// Writes a numeric value's inputs; returns its target and whether it is known.
#[allow(clippy::cast_possible_truncation)]
fn encode_number(encoding: &NumericEncoding, value: Option<f64>, input: &mut [f32]) -> (f32, bool) {
    let z = value
        .map(|v| {
            let v = if encoding.log1p { v.ln_1p() } else { v };
            ((v - encoding.mean) / encoding.std) as f32
        })
        .filter(|z| z.is_finite());
    input[0] = z.unwrap_or(0.0);
    if encoding.missing_indicator {
        input[1] = if z.is_none() { 1.0 } else { 0.0 };
    }
    (z.unwrap_or(0.0), z.is_some())
}

fn spans(widths: impl Iterator<Item = usize>) -> Vec<(usize, usize)> {
    let mut start = 0;
    widths
        .map(|w| {
            let span = (start, w);
            start += w;
            span
        })
        .collect()
}

#[allow(clippy::cast_precision_loss)]
fn fit_numeric(name: &str, values: &[Option<f64>]) -> crate::Result<NumericEncoding> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.is_empty() {
        return Err(Error::Invalid(format!(
            "column '{name}' is NULL in every row; nothing can be learned from it (exclude it from the feature columns)"
        )));
    }
    if let Some(bad) = present.iter().find(|v| v.is_infinite()) {
        return Err(Error::Invalid(format!(
            "column '{name}' holds {bad}; features must be finite numbers or NULL"
        )));
    }
    let n = present.len() as f64;
    let moments = |xs: &[f64]| {
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    };
    let (mean, std) = moments(&present);
    let skew = if std > 0.0 {
        present.iter().map(|x| ((x - mean) / std).powi(3)).sum::<f64>() / n
    } else {
        0.0
    };
    let log1p = present.iter().all(|&x| x >= 0.0) && skew > SKEW_FOR_LOG;
    let (mean, std) = if log1p {
        moments(&present.iter().map(|x| x.ln_1p()).collect::<Vec<_>>())
    } else {
        (mean, std)
    };
    Ok(NumericEncoding {
        name: name.to_string(),
        log1p,
        mean,
        std: if std > 0.0 { std } else { 1.0 },
        missing_indicator: present.len() < values.len(),
    })
}

fn fit_categorical(
    name: &str,
    values: &[String],
    codes: &[Option<u32>],
    limits: VocabularyLimits,
) -> crate::Result<CategoricalEncoding> {
    let mut counts = vec![0_usize; values.len()];
    for code in codes.iter().flatten() {
        counts[*code as usize] += 1;
    }
    if counts.iter().all(|&c| c == 0) {
        return Err(Error::Invalid(format!(
            "column '{name}' is NULL in every row; nothing can be learned from it (exclude it from the feature columns)"
        )));
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then_with(|| values[a].cmp(&values[b])));
    let min_count = limits.min_count.max(1);
    let vocabulary: Vec<String> = order
        .iter()
        .filter(|&&i| counts[i] >= min_count)
        .take(limits.max_vocab.max(1))
        .map(|&i| values[i].clone())
        .collect();
    Ok(CategoricalEncoding {
        name: name.to_string(),
        other_slot: vocabulary.len() < values.len(),
        missing_slot: codes.iter().any(Option::is_none),
        vocabulary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> FeatureTable {
        FeatureTable {
            names: vec!["gain".into(), "x".into(), "c".into()],
            columns: vec![
                Column::Numeric(vec![
                    Some(0.0),
                    Some(0.0),
                    Some(0.0),
                    Some(0.0),
                    Some(0.0),
                    Some(0.0),
                    Some(0.0),
                    Some(10_000.0),
                ]),
                Column::Numeric(vec![
                    Some(1.0),
                    Some(2.0),
                    None,
                    Some(3.0),
                    Some(1.0),
                    Some(2.0),
                    Some(3.0),
                    Some(4.0),
                ]),
                Column::Categorical {
                    values: vec!["a".into(), "b".into(), "rare".into()],
                    codes: vec![Some(0), Some(0), Some(1), Some(1), Some(0), None, Some(2), Some(1)],
                },
            ],
            rows: 8,
        }
    }

    #[test]
    fn learns_log_scaling_vocabulary_and_null_slots() {
        let limits = VocabularyLimits {
            max_vocab: 10,
            min_count: 2,
        };
        let p = Preprocessor::fit(&table(), limits).expect("fits");
        let FeatureEncoding::Numeric(gain) = &p.features[0] else {
            panic!("numeric")
        };
        assert!(gain.log1p && !gain.missing_indicator, "{gain:?}");
        let FeatureEncoding::Numeric(x) = &p.features[1] else {
            panic!("numeric")
        };
        assert!(!x.log1p && x.missing_indicator);
        assert!((x.mean - 16.0 / 7.0).abs() < 1e-12);
        let FeatureEncoding::Categorical(c) = &p.features[2] else {
            panic!("categorical")
        };
        assert_eq!(c.vocabulary, vec!["a", "b"], "ties broken by value, rare value cut");
        assert_eq!((c.other_index(), c.missing_index()), (Some(2), Some(3)));
        assert_eq!(c.slot_of(Some("unseen")), Some(2));
        assert_eq!(p.input_width(), 1 + 2 + 4);
        let encoded = p.encode(&table()).expect("encodes");
        // Row 2: x is NULL -> value 0, indicator 1, target unknown; c = "b" -> slot 1.
        assert_eq!(
            &encoded.inputs[2 * 7..3 * 7],
            &[gain_z(gain, 0.0), 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
        );
        assert_eq!(&encoded.known[2 * 3..3 * 3], &[1.0, 0.0, 1.0]);
        assert_eq!(encoded.targets[2 * 3 + 2], 1.0);
    }

    #[allow(clippy::cast_possible_truncation)]
    fn gain_z(gain: &NumericEncoding, v: f64) -> f32 {
        ((v.ln_1p() - gain.mean) / gain.std) as f32
    }

    #[test]
    fn all_null_columns_are_refused_and_constant_ones_encode_as_zero() {
        let mut t = table();
        t.columns[1] = Column::Numeric(vec![None; 8]);
        let err = Preprocessor::fit(&t, VocabularyLimits::default()).expect_err("all NULL");
        assert!(err.to_string().contains("'x' is NULL in every row"), "{err}");
        t.columns[1] = Column::Numeric(vec![Some(5.0); 8]);
        let p = Preprocessor::fit(&t, VocabularyLimits::default()).expect("constant fits");
        let encoded = p.encode(&t).expect("encodes");
        assert!((0..8).all(|r| encoded.inputs[r * p.input_width() + 1] == 0.0));
    }
}
