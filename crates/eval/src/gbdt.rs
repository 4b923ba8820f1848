//! Gradient-boosted trees downstream ([`forust_ml`]): the baseline practitioners compare
//! embeddings against. Log-loss boosting with learning rate 0.1; the tree depth and the
//! number of rounds are chosen on the validation split (rounds stop 10 after the
//! validation log-loss last improved, and the best round's trees predict), never on the
//! test rows.
//!
//! Trees read a representation's tree view ([`super::protocol::Representation`]): raw
//! numbers, categories as codes, NaN for a missing value (a split learns which side
//! missing values go to).
//!
//! forust-ml was chosen over `perpetual` (its stable releases need a nightly compiler, its
//! native categoricals gave wrong models on Adult), `hessboost` (weeks old, a C
//! dependency) and `gbdt` (unmaintained, no missing values, no early stopping): on
//! Adult's few-label splits its test AUC is within noise of scikit-learn's
//! HistGradientBoosting on the same ordinal codes (`benches/gbdt_reference.py`).

use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix as ForustMatrix};

use super::downstream::{Labelled, Predictions};
use super::matrix::Matrix;
use tabssl_functions::Error;

/// Tree depths tried on the validation split.
const DEPTHS: [usize; 2] = [3, 6];
/// Shrinkage per round.
const LEARNING_RATE: f32 = 0.1;
/// Most boosting rounds.
const MAX_ROUNDS: usize = 1000;
/// Rounds without a better validation log-loss before boosting stops.
const PATIENCE: usize = 10;

/// Boosts trees on `train` with the depth and round count chosen by log-loss on
/// `validation`; returns the chosen model's probabilities for `validation` and `test`.
///
/// # Errors
/// When boosting fails (forust-ml refuses its input).
pub fn fit_predict(
    train: &Labelled<'_>,
    validation: &Labelled<'_>,
    test: &Matrix,
    seed: u64,
) -> tabssl_functions::Result<Predictions> {
    let positives = train.y.iter().filter(|&&y| y).count();
    if positives == 0 || positives == train.y.len() {
        // One class only: boosting would start from an infinite log-odds. The best
        // constant is the class itself.
        let p = if positives == 0 { 0.0 } else { 1.0 };
        return Ok(Predictions {
            validation: vec![p; validation.x.rows],
            test: vec![p; test.rows],
        });
    }
    let x_train = column_major(train.x);
    let x_validation = column_major(validation.x);
    let y_train = as_targets(train.y);
    let y_validation = as_targets(validation.y);
    let weights_train = vec![1.0; train.y.len()];
    let weights_validation = vec![1.0; validation.y.len()];
    let mut best: Option<(f64, GradientBooster)> = None;
    for depth in DEPTHS {
        let mut booster = GradientBooster::default()
            .set_objective_type(ObjectiveType::LogLoss)
            .set_learning_rate(LEARNING_RATE)
            .set_max_depth(depth)
            .set_iterations(MAX_ROUNDS)
            .set_evaluation_metric(Some(Metric::LogLoss))
            .set_early_stopping_rounds(Some(PATIENCE))
            .set_parallel(false)
            .set_seed(seed);
        let evaluation = vec![(
            ForustMatrix::new(&x_validation, validation.x.rows, validation.x.cols),
            y_validation.as_slice(),
            weights_validation.as_slice(),
        )];
        booster
            .fit(
                &ForustMatrix::new(&x_train, train.x.rows, train.x.cols),
                &y_train,
                &weights_train,
                Some(evaluation),
            )
            .map_err(|e| Error::Invalid(format!("gradient boosting failed: {e}")))?;
        let p = probabilities(&booster, &x_validation, validation.x);
        let loss = super::metrics::log_loss(&p, validation.y);
        if best.as_ref().is_none_or(|(b, _)| loss < *b) {
            best = Some((loss, booster));
        }
    }
    let (_, booster) = best.ok_or_else(|| Error::Invalid("no tree depth to try".into()))?;
    Ok(Predictions {
        validation: probabilities(&booster, &x_validation, validation.x),
        test: probabilities(&booster, &column_major(test), test),
    })
}

/// Positive-class probabilities (forust-ml predicts log-odds).
#[allow(clippy::cast_possible_truncation)]
fn probabilities(booster: &GradientBooster, column_major: &[f64], x: &Matrix) -> Vec<f32> {
    booster
        .predict(&ForustMatrix::new(column_major, x.rows, x.cols), false)
        .into_iter()
        .map(|z| (1.0 / (1.0 + (-z).exp())) as f32)
        .collect()
}

/// The values column after column, as forust-ml reads them.
fn column_major(x: &Matrix) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.rows * x.cols);
    for col in 0..x.cols {
        out.extend((0..x.rows).map(|row| f64::from(x.data[row * x.cols + col])));
    }
    out
}

fn as_targets(y: &[bool]) -> Vec<f64> {
    y.iter().map(|&y| if y { 1.0 } else { 0.0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabssl_functions::rng::TrainRng;

    /// An interaction no linear model sees (XOR of two signs), with a third of one
    /// feature missing: the trees must learn it and route missing values.
    #[test]
    fn boosted_trees_learn_an_interaction_with_missing_values() {
        let mut rng = TrainRng::new(3, "data");
        let rows = 1200;
        #[allow(clippy::cast_possible_truncation)]
        let mut data: Vec<f32> = (0..rows * 2).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect();
        let y: Vec<bool> = data.chunks(2).map(|r| (r[0] > 0.0) != (r[1] > 0.0)).collect();
        for row in (0..rows).step_by(3) {
            data[row * 2 + 1] = f32::NAN;
        }
        let x = Matrix::new(data, rows, 2);
        let split = |range: std::ops::Range<usize>| x.select(&range.collect::<Vec<_>>());
        let (train_x, val_x, test_x) = (split(0..600), split(600..800), split(800..1200));
        let p = fit_predict(
            &Labelled {
                x: &train_x,
                y: &y[..600],
            },
            &Labelled {
                x: &val_x,
                y: &y[600..800],
            },
            &test_x,
            0,
        )
        .expect("fits");
        assert_eq!(p.validation.len(), 200);
        // Rows with the second feature present are predictable; the others are coin flips.
        let known: Vec<usize> = (800..1200).filter(|r| r % 3 != 0).collect();
        let known_p: Vec<f32> = known.iter().map(|&r| p.test[r - 800]).collect();
        let known_y: Vec<bool> = known.iter().map(|&r| y[r]).collect();
        let auc = super::super::metrics::roc_auc(&known_p, &known_y).expect("two classes");
        assert!(auc > 0.95, "{auc}");
    }

    #[test]
    fn one_class_training_rows_give_that_class() {
        let x = Matrix::new(vec![0.0, 1.0, 2.0, 3.0], 4, 1);
        let y = [true; 4];
        let p = fit_predict(&Labelled { x: &x, y: &y }, &Labelled { x: &x, y: &y }, &x, 0).expect("fits");
        assert!(
            p.test
                .iter()
                .chain(&p.validation)
                .all(|&p| (p - 1.0).abs() < f32::EPSILON)
        );
    }

    #[test]
    fn values_are_laid_out_column_after_column() {
        let x = Matrix::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2);
        assert_eq!(column_major(&x), vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    }
}
