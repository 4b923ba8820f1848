//! The pretext tasks: how a batch is corrupted and what the network must recover.
//!
//! Corruption follows VIME's `pretext_generator`: each cell is masked with probability `p`
//! and a masked cell takes the same column's value from a row drawn uniformly from the
//! whole training set (the column's empirical marginal, not the batch), fresh every epoch.
//! - **VIME**: from the corrupted row, a mask head predicts which cells changed
//!   (`m = x != x̃`, binary cross-entropy) and a feature head reconstructs the clean row;
//!   loss = mask loss + α · feature loss.
//! - **DAE**: swap noise, then the feature head reconstructs the clean row.
//! - **SCARF**: InfoNCE (NT-Xent, symmetric) between a row and its corrupted view, through
//!   a projection head, with temperature τ.
//!
//! The feature loss averages one term per column: mean squared error of the standardised
//! value for a numeric column (NULL cells left out), cross-entropy over the one-hot slots
//! for a categorical one.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::ops::log_softmax;

use super::network::Mlp;
use super::preprocess::{Encoded, FeatureEncoding, Preprocessor};
use crate::Error;
use crate::Method;
use crate::rng::TrainRng;

/// The heads trained next to the encoder.
#[derive(Debug, Clone)]
pub struct Heads {
    /// VIME's mask estimator (embedding → one logit per column).
    pub mask: Option<Mlp>,
    /// Feature estimator / decoder (embedding → reconstruction logits and values).
    pub features: Option<Mlp>,
    /// SCARF's projection head.
    pub projection: Option<Mlp>,
}

/// Method parameters the loss needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossParams {
    /// The method.
    pub method: Method,
    /// Corruption rate.
    pub p: f64,
    /// VIME's weight of the feature loss.
    pub alpha: f64,
    /// SCARF's temperature.
    pub temperature: f64,
}

/// A batch of rows with its corrupted copy.
pub struct Batch {
    /// `[rows, input_width]` clean inputs.
    pub clean: Tensor,
    /// `[rows, input_width]` corrupted inputs.
    pub corrupted: Tensor,
    /// `[rows, features]`: 1 where the corrupted cell differs from the clean one.
    pub changed: Tensor,
    /// `[rows, features]` reconstruction targets of the clean row.
    pub targets: Vec<f32>,
    /// `[rows, features]` 1 where the target is known.
    pub known: Vec<f32>,
    /// Number of rows.
    pub rows: usize,
}

/// Gathers `rows` of `data` and corrupts them with donors drawn from all of `data`.
///
/// # Errors
/// candle errors.
pub fn corrupt_batch(
    data: &Encoded,
    preprocessor: &Preprocessor,
    rows: &[usize],
    p: f64,
    rng: &mut TrainRng,
) -> crate::Result<Batch> {
    let width = preprocessor.input_width();
    let features = preprocessor.features.len();
    let spans = preprocessor.input_spans();
    let mut clean = Vec::with_capacity(rows.len() * width);
    let mut corrupted = Vec::with_capacity(rows.len() * width);
    let mut changed = Vec::with_capacity(rows.len() * features);
    let mut targets = Vec::with_capacity(rows.len() * features);
    let mut known = Vec::with_capacity(rows.len() * features);
    for &row in rows {
        let source = &data.inputs[row * width..(row + 1) * width];
        clean.extend_from_slice(source);
        let start = corrupted.len();
        corrupted.extend_from_slice(source);
        for &(offset, len) in &spans {
            let mut is_changed = 0.0_f32;
            if rng.uniform() < p {
                let donor = rng.index(data.rows);
                let value = &data.inputs[donor * width + offset..donor * width + offset + len];
                let cell = &mut corrupted[start + offset..start + offset + len];
                if cell != value {
                    cell.copy_from_slice(value);
                    is_changed = 1.0;
                }
            }
            changed.push(is_changed);
        }
        targets.extend_from_slice(&data.targets[row * features..(row + 1) * features]);
        known.extend_from_slice(&data.known[row * features..(row + 1) * features]);
    }
    let n = rows.len();
    Ok(Batch {
        clean: Tensor::from_vec(clean, (n, width), &Device::Cpu)?,
        corrupted: Tensor::from_vec(corrupted, (n, width), &Device::Cpu)?,
        changed: Tensor::from_vec(changed, (n, features), &Device::Cpu)?,
        targets,
        known,
        rows: n,
    })
}

/// The loss of one batch, as a scalar tensor to differentiate.
///
/// # Errors
/// candle errors.
pub fn batch_loss(
    encoder: &Mlp,
    heads: &Heads,
    preprocessor: &Preprocessor,
    params: LossParams,
    batch: &Batch,
) -> crate::Result<Tensor> {
    let missing = |what: &str| Error::Invalid(format!("{} has no {what} head", params.method.as_str()));
    match params.method {
        Method::Vime => {
            let h = encoder.forward(&batch.corrupted)?;
            let mask_logits = heads.mask.as_ref().ok_or_else(|| missing("mask"))?.forward(&h)?;
            let mask_loss = bce_with_logits(&mask_logits, &batch.changed)?;
            let recon = heads.features.as_ref().ok_or_else(|| missing("feature"))?.forward(&h)?;
            let feature_loss = feature_loss(&recon, preprocessor, batch)?;
            Ok((mask_loss + (feature_loss * params.alpha)?)?)
        }
        Method::Dae => {
            let h = encoder.forward(&batch.corrupted)?;
            let recon = heads.features.as_ref().ok_or_else(|| missing("decoder"))?.forward(&h)?;
            feature_loss(&recon, preprocessor, batch)
        }
        Method::Scarf => {
            let projection = heads.projection.as_ref().ok_or_else(|| missing("projection"))?;
            let anchor = normalize_rows(&projection.forward(&encoder.forward(&batch.clean)?)?)?;
            let positive = normalize_rows(&projection.forward(&encoder.forward(&batch.corrupted)?)?)?;
            let logits = (anchor.matmul(&positive.t()?)? / params.temperature)?;
            #[allow(clippy::cast_possible_truncation)]
            let labels = Tensor::arange(0_u32, batch.rows as u32, &Device::Cpu)?;
            let forward = candle_nn::loss::cross_entropy(&logits, &labels)?;
            let backward = candle_nn::loss::cross_entropy(&logits.t()?.contiguous()?, &labels)?;
            Ok(((forward + backward)? * 0.5)?)
        }
        Method::Noise | Method::Blank => Err(super::trainer::untrainable(params.method)),
    }
}

/// Mean binary cross-entropy of logits `z` against 0/1 targets `y`, in the stable form
/// `max(z, 0) - z y + ln(1 + e^-|z|)` (candle's version takes `ln(sigmoid(z))`, which is
/// -inf once a logit saturates).
///
/// # Errors
/// candle errors (shape mismatch).
pub fn bce_with_logits(z: &Tensor, y: &Tensor) -> crate::Result<Tensor> {
    let softplus = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok(((z.relu()? - (z * y)?)? + softplus)?.mean_all()?)
}

fn normalize_rows(x: &Tensor) -> crate::Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(1)? + 1e-12)?.sqrt()?;
    Ok(x.broadcast_div(&norm)?)
}

/// Mean over columns of each column's reconstruction loss.
fn feature_loss(recon: &Tensor, preprocessor: &Preprocessor, batch: &Batch) -> crate::Result<Tensor> {
    let features = preprocessor.features.len();
    let rows = batch.rows;
    let mut terms = Vec::with_capacity(features);
    for (j, (encoding, (start, width))) in preprocessor
        .features
        .iter()
        .zip(preprocessor.target_spans())
        .enumerate()
    {
        let target: Vec<f32> = (0..rows).map(|r| batch.targets[r * features + j]).collect();
        let known: Vec<f32> = (0..rows).map(|r| batch.known[r * features + j]).collect();
        let count = known.iter().sum::<f32>().max(1.0);
        let known = Tensor::from_vec(known, (rows, 1), &Device::Cpu)?;
        let block = recon.narrow(1, start, width)?;
        let per_row = match encoding {
            FeatureEncoding::Numeric(_) => {
                let target = Tensor::from_vec(target, (rows, 1), &Device::Cpu)?;
                (block - target)?.sqr()?
            }
            FeatureEncoding::Categorical(_) => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let classes: Vec<u32> = target.iter().map(|&t| t as u32).collect();
                let classes = Tensor::from_vec(classes, (rows, 1), &Device::Cpu)?;
                log_softmax(&block, D::Minus1)?.gather(&classes, 1)?.neg()?
            }
        };
        terms.push(((per_row * known)?.sum_all()? / f64::from(count))?);
    }
    #[allow(clippy::cast_precision_loss)]
    let mean = (Tensor::stack(&terms, 0)?.sum_all()? / features as f64)?;
    Ok(mean.to_dtype(DType::F32)?)
}
