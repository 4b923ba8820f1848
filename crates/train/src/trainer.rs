//! The training loop: split, fit the preprocessing, initialise, run Adam over shuffled
//! mini-batches, keep the encoder of the epoch with the lowest validation loss.

use std::time::Instant;

use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use super::network::Mlp;
use super::objective::{Heads, LossParams, batch_loss, corrupt_batch};
use super::preprocess::{Encoded, Preprocessor, VocabularyLimits};
use super::table::FeatureTable;
use crate::Error;
use crate::Method;
use crate::rng::TrainRng;
use crate::setting::Setting;

/// Everything that defines a pretraining run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainConfig {
    /// The pretext task.
    pub method: Method,
    /// Corruption rate; `None` takes the method's published default.
    pub p: Option<f64>,
    /// VIME's feature-loss weight α.
    pub alpha: f64,
    /// SCARF's InfoNCE temperature τ.
    pub temperature: f64,
    /// Width of the encoder's hidden layer.
    pub hidden: usize,
    /// Width of the embedding.
    pub dim: usize,
    /// Number of passes over the training rows.
    pub epochs: usize,
    /// Rows per optimiser step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Seed of every random choice (split, initialisation, shuffling, corruption).
    pub seed: u64,
    /// Share of rows held out to pick the best epoch (none below 20 rows).
    pub validation_fraction: f64,
    /// Categorical vocabulary limits.
    pub vocabulary: VocabularyLimits,
    /// Encoder layers whose outputs make the exported embedding, side by side in network
    /// order (`[Embedding]` unless chosen otherwise).
    #[serde(default = "default_feature_layers")]
    pub feature_layers: Vec<FeatureLayer>,
    /// Most values one tensor may hold: a layer's weights, a batch's activations, the
    /// encoded training rows. A limit, not a hyper-parameter: not recorded in manifests.
    #[serde(skip, default = "default_max_tensor_elements")]
    pub max_tensor_elements: usize,
}

/// A layer of the encoder whose output can be part of the exported embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureLayer {
    /// The hidden layer after its ReLU (`--hidden` wide).
    Hidden,
    /// The encoder's output (`--dim` wide): what the pretext task trained.
    Embedding,
}

fn default_feature_layers() -> Vec<FeatureLayer> {
    vec![FeatureLayer::Embedding]
}

fn default_max_tensor_elements() -> usize {
    crate::options::DEFAULT_MAX_TENSOR_ELEMENTS
}

impl PretrainConfig {
    /// The defaults for `method`.
    #[must_use]
    pub fn new(method: Method) -> Self {
        Self {
            method,
            p: None,
            alpha: 2.0,
            temperature: 1.0,
            hidden: 128,
            dim: 16,
            epochs: 20,
            batch_size: 256,
            learning_rate: 1e-3,
            seed: 0,
            validation_fraction: 0.1,
            vocabulary: VocabularyLimits::default(),
            feature_layers: default_feature_layers(),
            max_tensor_elements: default_max_tensor_elements(),
        }
    }

    /// Checks that every tensor of the run fits `max_tensor_elements`, given the encoded
    /// input's width, the number of features and the reconstruction targets' width.
    fn check_size(&self, rows: usize, inputs: usize, features: usize, targets: usize) -> crate::Result<()> {
        let heads: Vec<usize> = match self.method {
            Method::Vime => vec![self.dim, features, targets],
            Method::Dae => vec![self.dim, self.hidden, targets],
            Method::Scarf => vec![self.dim, self.dim],
            // Refused by `check` before any size is computed.
            Method::Noise | Method::Blank => Vec::new(),
        };
        let mut tensors = vec![
            ("the encoded training rows", rows, inputs),
            (
                "a batch's activations",
                self.batch_size.min(rows),
                inputs.max(self.hidden).max(targets),
            ),
            ("the encoder's first layer", inputs, self.hidden),
            ("the encoder's second layer", self.hidden, self.dim),
        ];
        tensors.extend(heads.windows(2).map(|w| ("a head layer", w[0], w[1])));
        for (what, a, b) in tensors {
            if a.checked_mul(b).is_none_or(|n| n > self.max_tensor_elements) {
                return Err(Error::Invalid(format!(
                    "{what} would hold {a} × {b} values, more than the limit of {} values per tensor \
                     ({} {}, {} {}, {} {}, {rows} rows of {inputs} encoded inputs); use smaller sizes or raise {}",
                    self.max_tensor_elements,
                    Setting::Hidden,
                    self.hidden,
                    Setting::Dim,
                    self.dim,
                    Setting::BatchSize,
                    self.batch_size,
                    Setting::MaxTensorElements
                )));
            }
        }
        Ok(())
    }

    /// Width of the exported embedding: the chosen layers' widths added up.
    #[must_use]
    pub fn embedding_width(&self) -> usize {
        self.distinct_feature_layers()
            .into_iter()
            .map(|layer| match layer {
                FeatureLayer::Hidden => self.hidden,
                FeatureLayer::Embedding => self.dim,
            })
            .sum()
    }

    /// Indices of the encoder layers whose outputs make the embedding, in network order.
    #[must_use]
    pub fn feature_taps(&self) -> Vec<usize> {
        self.distinct_feature_layers()
            .into_iter()
            .map(|layer| match layer {
                FeatureLayer::Hidden => 0,
                FeatureLayer::Embedding => 1,
            })
            .collect()
    }

    /// The feature layers in network order, each once (`hidden,hidden` is the hidden layer).
    fn distinct_feature_layers(&self) -> Vec<FeatureLayer> {
        let mut layers = self.feature_layers.clone();
        layers.sort_unstable();
        layers.dedup();
        layers
    }

    /// The corruption rate in effect.
    #[must_use]
    pub fn corruption_rate(&self) -> f64 {
        self.p.unwrap_or_else(|| self.method.default_p())
    }

    fn check(&self) -> crate::Result<()> {
        let p = self.corruption_rate();
        let bad = |what: String| Err(Error::Invalid(what));
        if !self.method.trainable() {
            return Err(untrainable(self.method));
        }
        if !(0.0..=1.0).contains(&p) {
            return bad(format!("p must be in [0, 1], got {p}"));
        }
        if self.hidden == 0 || self.dim == 0 || self.epochs == 0 || self.batch_size == 0 {
            return bad("hidden, dim, epochs and batch size must be positive".into());
        }
        if self.feature_layers.is_empty() {
            return bad("the feature layers must name at least one layer (hidden, embedding)".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!(
                "the learning rate must be a positive number, got {}",
                self.learning_rate
            ));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad(format!("the temperature must be positive, got {}", self.temperature));
        }
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return bad(format!("alpha must be non-negative, got {}", self.alpha));
        }
        if !(0.0..0.5).contains(&self.validation_fraction) {
            return bad(format!(
                "the validation fraction must be in [0, 0.5), got {}",
                self.validation_fraction
            ));
        }
        Ok(())
    }
}

/// The losses of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Loss on the held-out rows (same corruption every epoch), when there are any.
    pub validation_loss: Option<f64>,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
}

/// A trained encoder with the preprocessing it expects.
#[derive(Debug, Clone)]
pub struct Pretrained {
    /// The run's configuration.
    pub config: PretrainConfig,
    /// Preprocessing fitted on the training rows.
    pub preprocessor: Preprocessor,
    /// The encoder of the best epoch.
    pub encoder: Mlp,
    /// Per-epoch losses.
    pub history: Vec<EpochStats>,
    /// The epoch whose encoder was kept.
    pub best_epoch: usize,
    /// Rows trained on.
    pub train_rows: usize,
    /// Rows held out.
    pub validation_rows: usize,
}

impl Pretrained {
    /// Embeddings of `table`'s rows, computed in memory (the reference for the ONNX export).
    ///
    /// # Errors
    /// When the table's columns are not the model's.
    pub fn embed(&self, table: &FeatureTable) -> crate::Result<Vec<f32>> {
        let encoded = self.preprocessor.encode(table)?;
        self.encoder
            .apply_taps(&encoded.inputs, encoded.rows, &self.config.feature_taps())
    }

    /// Width of [`Pretrained::embed`]'s rows and of the exported `embedding` output.
    #[must_use]
    pub fn embedding_width(&self) -> usize {
        self.config.embedding_width()
    }
}

/// Pretrains an encoder on `table`, calling `progress` after each epoch.
///
/// # Errors
/// [`crate::Error::Invalid`] for fewer than two rows, bad parameters or unusable columns.
pub fn pretrain(
    table: &FeatureTable,
    config: &PretrainConfig,
    progress: &mut dyn FnMut(&EpochStats),
) -> crate::Result<Pretrained> {
    config.check()?;
    if table.rows < 2 {
        return Err(Error::Invalid(format!(
            "pretraining needs at least 2 rows, the input has {}",
            table.rows
        )));
    }
    let order = TrainRng::new(config.seed, "split").permutation(table.rows);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let validation_rows = if table.rows >= 20 {
        ((table.rows as f64) * config.validation_fraction).round() as usize
    } else {
        0
    };
    let (validation, training) = order.split_at(validation_rows);
    let train_table = table.select(training);
    let preprocessor = Preprocessor::fit(&train_table, config.vocabulary)?;
    config.check_size(
        table.rows,
        preprocessor.input_width(),
        preprocessor.features.len(),
        preprocessor.target_width(),
    )?;
    let train = preprocessor.encode(&train_table)?;
    let held_out = (validation_rows > 0)
        .then(|| preprocessor.encode(&table.select(validation)))
        .transpose()?;

    let mut init = TrainRng::new(config.seed, "init");
    let (width, features, targets) = (
        preprocessor.input_width(),
        preprocessor.features.len(),
        preprocessor.target_width(),
    );
    let encoder = Mlp::new(&mut init, &[width, config.hidden, config.dim])?;
    let heads = match config.method {
        Method::Vime => Heads {
            mask: Some(Mlp::new(&mut init, &[config.dim, features])?),
            features: Some(Mlp::new(&mut init, &[config.dim, targets])?),
            projection: None,
        },
        Method::Dae => Heads {
            mask: None,
            features: Some(Mlp::new(&mut init, &[config.dim, config.hidden, targets])?),
            projection: None,
        },
        Method::Scarf => Heads {
            mask: None,
            features: None,
            projection: Some(Mlp::new(&mut init, &[config.dim, config.dim, config.dim])?),
        },
        Method::Noise | Method::Blank => return Err(untrainable(config.method)),
    };
    let mut vars = encoder.vars();
    for head in [&heads.mask, &heads.features, &heads.projection].into_iter().flatten() {
        vars.extend(head.vars());
    }
    let mut optimizer = AdamW::new(
        vars,
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let params = LossParams {
        method: config.method,
        p: config.corruption_rate(),
        alpha: config.alpha,
        temperature: config.temperature,
    };

    let mut shuffle = TrainRng::new(config.seed, "shuffle");
    let mut corrupt = TrainRng::new(config.seed, "corrupt");
    let mut history = Vec::with_capacity(config.epochs);
    let mut best: Option<(f64, usize, Mlp)> = None;
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let rows = shuffle.permutation(train.rows);
        let mut total = 0.0;
        for chunk in rows.chunks(config.batch_size) {
            let batch = corrupt_batch(&train, &preprocessor, chunk, params.p, &mut corrupt)?;
            let loss = batch_loss(&encoder, &heads, &preprocessor, params, &batch)?;
            optimizer.backward_step(&loss)?;
            #[allow(clippy::cast_precision_loss)]
            {
                total += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let train_loss = total / train.rows as f64;
        if !train_loss.is_finite() {
            return Err(Error::Diverged {
                epoch,
                learning_rate: config.learning_rate,
            });
        }
        let validation_loss = held_out
            .as_ref()
            .map(|data| evaluate(data, &preprocessor, &encoder, &heads, params, config))
            .transpose()?;
        let stats = EpochStats {
            epoch,
            train_loss,
            validation_loss,
            seconds: started.elapsed().as_secs_f64(),
        };
        progress(&stats);
        let score = validation_loss.unwrap_or(train_loss);
        if best.as_ref().is_none_or(|(b, _, _)| score < *b) {
            best = Some((score, epoch, encoder.snapshot()?));
        }
        history.push(stats);
    }
    let (_, best_epoch, encoder) = best.ok_or_else(|| Error::Invalid("no epoch ran".into()))?;
    Ok(Pretrained {
        config: config.clone(),
        preprocessor,
        encoder,
        history,
        best_epoch,
        train_rows: train.rows,
        validation_rows,
    })
}

/// Mean loss over held-out rows with a fixed corruption, so epochs are comparable.
fn evaluate(
    data: &Encoded,
    preprocessor: &Preprocessor,
    encoder: &Mlp,
    heads: &Heads,
    params: LossParams,
    config: &PretrainConfig,
) -> crate::Result<f64> {
    let mut rng = TrainRng::new(config.seed, "validation");
    let rows: Vec<usize> = (0..data.rows).collect();
    let mut total = 0.0;
    for chunk in rows.chunks(config.batch_size) {
        let batch = corrupt_batch(data, preprocessor, chunk, params.p, &mut rng)?;
        let loss = batch_loss(encoder, heads, preprocessor, params, &batch)?;
        #[allow(clippy::cast_precision_loss)]
        {
            total += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(total / data.rows as f64)
}

/// The error for an export-only method given to pretraining.
pub(crate) fn untrainable(method: Method) -> Error {
    Error::Invalid(format!(
        "pretrain cannot train method {method}: it trains vime, scarf or dae (noise and blank are corruptions \
         for tabssl export only)"
    ))
}
