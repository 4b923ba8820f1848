//! The downstream classifiers of the few-label protocol: logistic regression and a small
//! MLP, trained with Adam on binary cross-entropy plus an L2 penalty on the weights, and
//! gradient-boosted trees ([`super::gbdt`]); the stack of [`super::stack`] blends their
//! predictions. The penalty strength and the stopping step are chosen on a validation split
//! (log-loss), never on the test rows; the trees choose theirs as [`super::gbdt`] says. Every
//! model is then trained again on all the labelled rows (fit and validation) with what was
//! chosen, and that model predicts the test rows; the validation rows' predictions come from
//! the model that did not see them.

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use super::matrix::Matrix;
use tabssl_functions::Error;
use tabssl_functions::rng::TrainRng;
use tabssl_train::network::Mlp;
use tabssl_train::objective::bce_with_logits;

/// A downstream model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classifier {
    /// L2-regularised logistic regression.
    Logistic,
    /// One hidden layer of 64 ReLU units.
    Mlp,
    /// Gradient-boosted trees on the representation's tree view.
    Gbdt,
    /// Gradient-boosted trees on the raw columns blended with the logistic and MLP models
    /// on every embedding (`super::stack`); built from those fits, not fitted itself.
    Stack,
}

impl Classifier {
    /// Name in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logistic => "logistic",
            Self::Mlp => "mlp",
            Self::Gbdt => "gbdt",
            Self::Stack => "stack",
        }
    }

    /// Whether the model reads a representation's tree view (raw numbers, categorical
    /// codes, NaN for missing) instead of its standardised one-hot view.
    #[must_use]
    pub fn uses_trees(self) -> bool {
        self == Self::Gbdt
    }
}

/// The two neural downstream models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    Logistic,
    Mlp,
}

impl Network {
    fn widths(self, inputs: usize) -> Vec<usize> {
        match self {
            Self::Logistic => vec![inputs, 1],
            Self::Mlp => vec![inputs, 64, 1],
        }
    }

    /// L2 strengths tried on the validation split.
    fn penalties(self) -> &'static [f64] {
        match self {
            Self::Logistic => &[1e-3, 1e-2, 1e-1, 1.0],
            Self::Mlp => &[1e-4, 1e-2],
        }
    }

    fn learning_rate(self) -> f64 {
        match self {
            Self::Logistic => 0.02,
            Self::Mlp => 3e-3,
        }
    }

    fn steps(self) -> usize {
        match self {
            Self::Logistic => 400,
            Self::Mlp => 800,
        }
    }
}

/// Rows per optimiser step (all rows when fewer).
const BATCH: usize = 512;
/// Validation log-loss is checked every this many steps; the best step's weights win (the
/// untrained model never does: with few labels it can look best by chance).
const CHECK_EVERY: usize = 10;

/// Labelled rows.
pub struct Labelled<'a> {
    /// Features.
    pub x: &'a Matrix,
    /// Labels.
    pub y: &'a [bool],
}

/// The positive-class probabilities of a fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// For the validation rows (model selection).
    pub validation: Vec<f32>,
    /// For the test rows (scores).
    pub test: Vec<f32>,
}

/// Trains `classifier` on `train`, picks the L2 strength (tree settings) and stopping step
/// by log-loss on `validation`, and returns positive-class probabilities: the chosen
/// model's for the validation rows, and for the `test` rows those of the same choice
/// trained again on `train` and `validation` together. `categorical` lists the columns of
/// category codes (read by the trees only).
///
/// # Errors
/// candle or hessboost errors.
pub fn fit_predict(
    classifier: Classifier,
    train: &Labelled<'_>,
    validation: &Labelled<'_>,
    test: &Matrix,
    categorical: &[usize],
    seed: u64,
) -> tabssl_functions::Result<Predictions> {
    let network = match classifier {
        Classifier::Gbdt => return super::gbdt::fit_predict(train, validation, test, categorical, seed),
        Classifier::Stack => {
            return Err(Error::Invalid(
                "the stack is built from the predictions of other fits (see eval::stack), it is not fitted".into(),
            ));
        }
        Classifier::Logistic => Network::Logistic,
        Classifier::Mlp => Network::Mlp,
    };
    let mut best: Option<(f64, f64, Mlp, usize)> = None;
    for &penalty in network.penalties() {
        let (loss, model, step) = fit_one(network, train, validation, penalty, seed)?;
        if best.as_ref().is_none_or(|(b, ..)| loss < *b) {
            best = Some((loss, penalty, model, step));
        }
    }
    let (_, penalty, model, step) = best.ok_or_else(|| Error::Invalid("no penalty to try".into()))?;
    // The chosen penalty and step, trained again on every labelled row: its test
    // predictions are scored; the validation rows' come from the model that did not see them.
    let x_all = train.x.vconcat(validation.x);
    let y_all: Vec<bool> = train.y.iter().chain(validation.y).copied().collect();
    let refit = train_steps(
        network,
        &Labelled { x: &x_all, y: &y_all },
        penalty,
        seed,
        step,
        |_, _| Ok(()),
    )?;
    Ok(Predictions {
        validation: probabilities(&model, validation.x)?,
        test: probabilities(&refit, test)?,
    })
}

/// Trains with `penalty` on `train`, checking the log-loss on `validation` every
/// [`CHECK_EVERY`] steps; returns the best check's loss, its weights and its step.
fn fit_one(
    network: Network,
    train: &Labelled<'_>,
    validation: &Labelled<'_>,
    penalty: f64,
    seed: u64,
) -> tabssl_functions::Result<(f64, Mlp, usize)> {
    let mut best: Option<(f64, Mlp, usize)> = None;
    train_steps(network, train, penalty, seed, network.steps(), |step, model| {
        if step % CHECK_EVERY == 0 {
            let current = validation_loss(model, validation)?;
            if best.as_ref().is_none_or(|(b, ..)| current < *b) {
                best = Some((current, model.snapshot()?, step));
            }
        }
        Ok(())
    })?;
    best.ok_or_else(|| Error::Invalid("no validation checkpoint".into()))
}

/// `steps` optimiser steps of `network` with `penalty` on `rows` (mini-batches of
/// [`BATCH`] rows in a seeded order); `after` sees the model after each step.
fn train_steps(
    network: Network,
    rows: &Labelled<'_>,
    penalty: f64,
    seed: u64,
    steps: usize,
    mut after: impl FnMut(usize, &Mlp) -> tabssl_functions::Result<()>,
) -> tabssl_functions::Result<Mlp> {
    let mut rng = TrainRng::new(seed, "downstream");
    let model = Mlp::new(&mut rng, &network.widths(rows.x.cols))?;
    if network == Network::Logistic {
        // The convex problem needs no random start: from zero, early steps move along the
        // gradient of the data, not of the initialisation.
        for layer in &model.layers {
            layer.weight.set(&layer.weight.as_tensor().zeros_like()?)?;
            layer.bias.set(&layer.bias.as_tensor().zeros_like()?)?;
        }
    }
    let mut optimizer = AdamW::new(
        model.vars(),
        ParamsAdamW {
            lr: network.learning_rate(),
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let n = rows.x.rows;
    let batch = BATCH.min(n);
    let mut order = rng.permutation(n);
    let mut cursor = 0;
    for step in 1..=steps {
        if cursor + batch > n {
            order = rng.permutation(n);
            cursor = 0;
        }
        let chosen = &order[cursor..cursor + batch];
        cursor += batch;
        let x = rows.x.select(chosen);
        let y: Vec<f32> = chosen.iter().map(|&r| if rows.y[r] { 1.0 } else { 0.0 }).collect();
        let x = Tensor::from_vec(x.data, (batch, rows.x.cols), &Device::Cpu)?;
        let y = Tensor::from_vec(y, (batch, 1), &Device::Cpu)?;
        let logits = model.forward(&x)?;
        let mut loss = bce_with_logits(&logits, &y)?;
        for layer in &model.layers {
            loss = (loss + (layer.weight.as_tensor().sqr()?.sum_all()? * penalty)?)?;
        }
        optimizer.backward_step(&loss)?;
        after(step, &model)?;
    }
    Ok(model)
}

/// Mean log-loss on validation rows.
fn validation_loss(model: &Mlp, validation: &Labelled<'_>) -> tabssl_functions::Result<f64> {
    Ok(super::metrics::log_loss(
        &probabilities(model, validation.x)?,
        validation.y,
    ))
}

fn probabilities(model: &Mlp, x: &Matrix) -> tabssl_functions::Result<Vec<f32>> {
    let logits = model.apply(&x.data, x.rows)?;
    Ok(logits.into_iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_regression_learns_a_separable_rule() {
        let mut rng = TrainRng::new(1, "data");
        let rows = 600;
        #[allow(clippy::cast_possible_truncation)]
        let data: Vec<f32> = (0..rows * 2).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect();
        let x = Matrix::new(data, rows, 2);
        let y: Vec<bool> = x.data.chunks(2).map(|r| r[0] + 0.5 * r[1] > 0.0).collect();
        let (train_x, val_x, test_x) = (
            x.select(&(0..300).collect::<Vec<_>>()),
            x.select(&(300..400).collect::<Vec<_>>()),
            x.select(&(400..600).collect::<Vec<_>>()),
        );
        let p = fit_predict(
            Classifier::Logistic,
            &Labelled {
                x: &train_x,
                y: &y[..300],
            },
            &Labelled {
                x: &val_x,
                y: &y[300..400],
            },
            &test_x,
            &[],
            0,
        )
        .expect("fits");
        let accuracy = super::super::metrics::accuracy(&p.test, &y[400..]);
        assert!(accuracy > 0.95, "{accuracy}");
    }
}
