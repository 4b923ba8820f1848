//! Gradient-boosted trees downstream ([`hessboost`]): the baseline practitioners compare
//! embeddings against, as strong as scikit-learn's `HistGradientBoostingClassifier` with
//! native categorical splits (`benches/gbdt_reference.py`).
//!
//! Trees read a representation's tree view ([`super::protocol::Representation`]): raw
//! numbers, categories as codes split natively (a split sends any subset of the categories
//! to each side), NaN for a missing value (a split learns which side missing values go to).
//!
//! Log-loss boosting with learning rate 0.1. The tree depth, the least hessian weight of a
//! leaf and the number of rounds are chosen by validation log-loss, never on the test rows:
//! - with few labelled rows (at most [`CV_MAX_ROWS`]), by stratified [`CV_FOLDS`]-fold
//!   cross-validation over every labelled row (fit and validation rows together), the
//!   rounds where the folds' mean log-loss is lowest;
//! - with more, on the validation rows, after the model boosted on the fit rows.
//!
//! The chosen settings are then boosted again on every labelled row for the chosen number
//! of rounds, and that model predicts the test rows: what a practitioner does once the
//! settings are known. The validation rows' predictions (which the stack blends by) come
//! from models that did not see them: the folds' out-of-fold predictions, or the model
//! boosted on the fit rows.
//!
//! hessboost was chosen over forust-ml (no categorical splits: with categories as ordinal
//! codes it trailed scikit-learn's native splits by 0.018 AUC at 100 Adult labels) and
//! `perpetual` (3.0.0-rc.2's native categoricals go wrong when codes start at 0, no
//! validation set); BENCHMARKS.md has the comparison.

use std::num::NonZeroUsize;

use hessboost::data::FeatureType;
use hessboost::prelude::{BoostedModel, DMatrix, EvalMetric, Iterations, Objective, RegLoss, Trainer, TrainingParams};

use super::downstream::{Labelled, Predictions};
use super::matrix::Matrix;
use tabssl_functions::Error;
use tabssl_functions::rng::TrainRng;

/// Tree depths tried.
const DEPTHS: [usize; 2] = [3, 6];
/// Least sum of hessians in a leaf tried (about 4 and 20 rows where p is near ½).
const MIN_CHILD_WEIGHTS: [f64; 2] = [1.0, 5.0];
/// Shrinkage per round.
const LEARNING_RATE: f64 = 0.1;
/// Most boosting rounds.
const MAX_ROUNDS: usize = 1000;
/// Rounds without a better held-out log-loss before boosting stops.
const PATIENCE: usize = 20;
/// Labelled rows up to which the settings are chosen by cross-validation.
pub const CV_MAX_ROWS: usize = 5_000;
/// Folds of that cross-validation.
pub const CV_FOLDS: usize = 5;

/// One setting of the trees.
#[derive(Debug, Clone, Copy)]
struct Setting {
    depth: usize,
    min_child_weight: f64,
}

/// Boosts trees on the labelled rows (`train` and `validation`) with the settings and
/// round count chosen as the module describes; `categorical` lists the columns holding
/// category codes. Returns out-of-sample probabilities for `validation` and the refitted
/// model's for `test`.
///
/// # Errors
/// When boosting fails (hessboost refuses its input).
pub fn fit_predict(
    train: &Labelled<'_>,
    validation: &Labelled<'_>,
    test: &Matrix,
    categorical: &[usize],
    seed: u64,
) -> tabssl_functions::Result<Predictions> {
    let x = train.x.vconcat(validation.x);
    let y: Vec<bool> = train.y.iter().chain(validation.y).copied().collect();
    let positives = y.iter().filter(|&&y| y).count();
    if positives == 0 || positives == y.len() {
        // One class only: boosting would start from an infinite log-odds. The best
        // constant is the class itself.
        let p = if positives == 0 { 0.0 } else { 1.0 };
        return Ok(Predictions {
            validation: vec![p; validation.x.rows],
            test: vec![p; test.rows],
        });
    }
    let types = feature_types(x.cols, categorical)?;
    let held_out_rows = if y.len() <= CV_MAX_ROWS {
        stratified_folds(&y, CV_FOLDS, seed)
    } else {
        // The protocol's split: fit rows boost, validation rows choose.
        vec![(train.x.rows..y.len()).collect()]
    };
    let folds = held_out_rows
        .into_iter()
        .map(|held| Fold::new(&x, &y, &types, held))
        .collect::<tabssl_functions::Result<Vec<_>>>()?;
    let chosen = choose(&folds, seed)?;
    // Out-of-sample predictions for the validation rows, from the chosen setting's folds.
    let mut held_out = vec![f32::NAN; y.len()];
    for (fold, model) in folds.iter().zip(&chosen.models) {
        let predicted = match model {
            FoldModel::Boosted(model) => probabilities(model, &fold.held_data, chosen.rounds)?,
            FoldModel::Constant(p) => vec![*p; fold.held.len()],
        };
        for (&row, p) in fold.held.iter().zip(predicted) {
            held_out[row] = p;
        }
    }
    let validation_p = held_out[train.x.rows..].to_vec();
    if validation_p.iter().any(|p| p.is_nan()) {
        return Err(Error::Internal(
            "a validation row got no out-of-sample prediction".into(),
        ));
    }
    let refit = boost(&matrix(&x, Some(&y), &types)?, chosen.setting, chosen.rounds, seed)?;
    Ok(Predictions {
        validation: validation_p,
        test: probabilities(&refit, &matrix(test, None, &types)?, chosen.rounds)?,
    })
}

/// One fold of the labelled rows, prepared once for every setting: the rows it holds out
/// and what boosts without them.
struct Fold {
    /// Row numbers held out.
    held: Vec<usize>,
    /// Their labels.
    held_y: Vec<bool>,
    /// Them, as hessboost reads them.
    held_data: DMatrix,
    /// The other rows.
    boosting: Boosting,
}

/// What boosts in a fold.
enum Boosting {
    /// Rows of both classes.
    Rows(Box<DMatrix>),
    /// Rows of one class only: boosting would start from an infinite log-odds, the class
    /// itself (as a probability) is the best constant.
    OneClass(f32),
}

impl Fold {
    fn new(x: &Matrix, y: &[bool], types: &[FeatureType], held: Vec<usize>) -> tabssl_functions::Result<Self> {
        let rest = complement(&held, y.len());
        let rest_y: Vec<bool> = rest.iter().map(|&i| y[i]).collect();
        let boosting = match (rest_y.iter().any(|&y| y), rest_y.iter().all(|&y| y)) {
            (true, false) => Boosting::Rows(Box::new(matrix(&x.select(&rest), Some(&rest_y), types)?)),
            (_, all) => Boosting::OneClass(if all { 1.0 } else { 0.0 }),
        };
        let held_y: Vec<bool> = held.iter().map(|&i| y[i]).collect();
        Ok(Self {
            held_data: matrix(&x.select(&held), Some(&held_y), types)?,
            held,
            held_y,
            boosting,
        })
    }
}

/// A fold's model of one setting.
enum FoldModel {
    Boosted(Box<BoostedModel>),
    Constant(f32),
}

/// The chosen setting, its round count, and its model of each fold.
struct Choice {
    setting: Setting,
    rounds: usize,
    models: Vec<FoldModel>,
}

/// Boosts every setting on every fold (each fold's rows held out, the others boosting)
/// and picks the setting and round with the lowest held-out log-loss, averaged over the
/// folds by their rows. Ties go to the earlier setting (shallower, heavier leaves first
/// within a depth) and the earlier round.
fn choose(folds: &[Fold], seed: u64) -> tabssl_functions::Result<Choice> {
    let mut best: Option<(f64, Choice)> = None;
    for depth in DEPTHS {
        for min_child_weight in MIN_CHILD_WEIGHTS.iter().rev().copied() {
            let setting = Setting {
                depth,
                min_child_weight,
            };
            let mut curve: Vec<f64> = Vec::new();
            let mut weight = 0.0;
            let mut models = Vec::with_capacity(folds.len());
            for fold in folds {
                #[allow(clippy::cast_precision_loss)]
                let rows = fold.held.len() as f64;
                let losses = match &fold.boosting {
                    Boosting::OneClass(p) => {
                        models.push(FoldModel::Constant(*p));
                        vec![super::metrics::log_loss(&vec![*p; fold.held.len()], &fold.held_y)]
                    }
                    Boosting::Rows(data) => {
                        let (model, losses) = boost_watched(data, &fold.held_data, setting, seed)?;
                        models.push(FoldModel::Boosted(Box::new(model)));
                        losses
                    }
                };
                add_curve(&mut curve, &losses, rows);
                weight += rows;
            }
            let Some((round, loss)) = curve
                .iter()
                .map(|l| l / weight)
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
            else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| loss < *b) {
                best = Some((
                    loss,
                    Choice {
                        setting,
                        rounds: round + 1,
                        models,
                    },
                ));
            }
        }
    }
    best.map(|(_, choice)| choice)
        .ok_or_else(|| Error::Invalid("no tree setting to try".into()))
}

/// Adds `losses` (one per round; a fold that stopped early keeps its last value) times
/// `weight` to `curve`, growing it as needed.
fn add_curve(curve: &mut Vec<f64>, losses: &[f64], weight: f64) {
    let Some(&last) = losses.last() else {
        return;
    };
    if curve.len() < losses.len() {
        // Rounds the folds so far did not reach: they stopped at their last value.
        let fill = curve.last().copied();
        let already = curve.len();
        curve.resize(losses.len(), 0.0);
        if let Some(fill) = fill {
            curve[already..].fill(fill);
        }
    }
    for (i, c) in curve.iter_mut().enumerate() {
        *c += weight * losses.get(i).copied().unwrap_or(last);
    }
}

/// Boosts `train` with `setting`, watching `held` (early stopping after [`PATIENCE`]
/// rounds without improvement); returns the model and the held-out log-loss of each
/// round.
fn boost_watched(
    train: &DMatrix,
    held: &DMatrix,
    setting: Setting,
    seed: u64,
) -> tabssl_functions::Result<(BoostedModel, Vec<f64>)> {
    let params = params(setting, seed)?;
    let patience = NonZeroUsize::new(PATIENCE).ok_or_else(|| Error::Internal("patience 0".into()))?;
    let result = Trainer::new(&params, train, MAX_ROUNDS)
        .eval(held, "held_out")
        .early_stopping_rounds(patience)
        .train()
        .map_err(boosting_failed)?;
    let history = &result.history;
    let metric = history
        .metrics()
        .first()
        .ok_or_else(|| Error::Internal("hessboost recorded no metric".into()))?;
    let losses: Vec<f64> = history
        .series("held_out", metric)
        .ok_or_else(|| Error::Internal("hessboost recorded no held-out log-loss".into()))?
        .collect();
    Ok((result.model, losses))
}

/// Boosts `train` with `setting` for exactly `rounds` rounds.
fn boost(train: &DMatrix, setting: Setting, rounds: usize, seed: u64) -> tabssl_functions::Result<BoostedModel> {
    let params = params(setting, seed)?;
    Ok(Trainer::new(&params, train, rounds.max(1))
        .train()
        .map_err(boosting_failed)?
        .model)
}

fn params(setting: Setting, seed: u64) -> tabssl_functions::Result<TrainingParams> {
    TrainingParams::builder()
        .objective(Objective::BinaryLogistic(RegLoss::default()))
        .eval_metric(EvalMetric::LogLoss)
        .eta(LEARNING_RATE)
        .max_depth(setting.depth)
        .min_child_weight(setting.min_child_weight)
        .lambda(1.0)
        .max_bin(255)
        .seed(seed)
        // Fits already run side by side, one per core.
        .nthread(1)
        .build()
        .map_err(boosting_failed)
}

/// Rows as hessboost reads them, with their labels when they have them.
fn matrix(x: &Matrix, y: Option<&[bool]>, types: &[FeatureType]) -> tabssl_functions::Result<DMatrix> {
    let data = DMatrix::from_dense(&x.data, x.rows, x.cols).and_then(|m| m.with_feature_types(types));
    match y {
        Some(y) => {
            let labels: Vec<f32> = y.iter().map(|&y| if y { 1.0 } else { 0.0 }).collect();
            data.and_then(|m| m.with_labels(&labels))
        }
        None => data,
    }
    .map_err(boosting_failed)
}

/// Positive-class probabilities of `data` from the first `rounds` rounds of `model` (all
/// of them when it has fewer: a fold that stopped early).
fn probabilities(model: &BoostedModel, data: &DMatrix, rounds: usize) -> tabssl_functions::Result<Vec<f32>> {
    let predictions = model
        .predict(data, Iterations::from(..rounds.min(model.num_boost_rounds())))
        .map_err(boosting_failed)?;
    Ok(predictions.as_slice().to_vec())
}

/// Each column's type: categorical for `categorical`, numerical for the rest.
fn feature_types(cols: usize, categorical: &[usize]) -> tabssl_functions::Result<Vec<FeatureType>> {
    let mut types = vec![FeatureType::Numerical; cols];
    for &col in categorical {
        *types
            .get_mut(col)
            .ok_or_else(|| Error::Internal(format!("categorical column {col} of {cols}")))? = FeatureType::Categorical;
    }
    Ok(types)
}

/// `folds` held-out row sets over `y`: a seeded shuffle of each class dealt in turn, so
/// every fold holds both classes when each class has at least `folds` rows. Folds left
/// empty (fewer rows than folds) are dropped.
fn stratified_folds(y: &[bool], folds: usize, seed: u64) -> Vec<Vec<usize>> {
    let order = TrainRng::new(seed, "gbdt-folds").permutation(y.len());
    let mut out = vec![Vec::new(); folds];
    let mut next = 0;
    for class in [true, false] {
        for &row in order.iter().filter(|&&row| y[row] == class) {
            out[next % folds].push(row);
            next += 1;
        }
    }
    out.retain(|fold| !fold.is_empty());
    for fold in &mut out {
        fold.sort_unstable();
    }
    out
}

/// The rows of `0..rows` not in `fold` (sorted).
fn complement(fold: &[usize], rows: usize) -> Vec<usize> {
    let mut held = vec![false; rows];
    for &row in fold {
        held[row] = true;
    }
    (0..rows).filter(|&row| !held[row]).collect()
}

#[allow(clippy::needless_pass_by_value)]
fn boosting_failed(e: hessboost::prelude::HessboostError) -> Error {
    Error::Invalid(format!("gradient boosting failed: {e}"))
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
            &[],
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
        let p = fit_predict(&Labelled { x: &x, y: &y }, &Labelled { x: &x, y: &y }, &x, &[], 0).expect("fits");
        assert!(
            p.test
                .iter()
                .chain(&p.validation)
                .all(|&p| (p - 1.0).abs() < f32::EPSILON)
        );
    }

    /// The positive class is a scattered set of categories (codes 1, 4, 7, 13, 18 of 20):
    /// one native split separates it, ordinal thresholds need many. With 200 labelled rows
    /// (cross-validated, then refitted) the trees must find it.
    #[test]
    fn native_categorical_splits_find_a_scattered_set_of_categories() {
        let mut rng = TrainRng::new(5, "data");
        let rows = 2200;
        let mut data = Vec::with_capacity(rows * 2);
        let mut y = Vec::with_capacity(rows);
        for _ in 0..rows {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let code = (rng.uniform() * 20.0).floor() as u32;
            let noise = rng.uniform();
            y.push([1, 4, 7, 13, 18].contains(&code) != (noise < 0.05));
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            data.extend([code as f32, rng.uniform() as f32]);
        }
        let x = Matrix::new(data, rows, 2);
        let split = |range: std::ops::Range<usize>| x.select(&range.collect::<Vec<_>>());
        let (fit_x, val_x, test_x) = (split(0..160), split(160..200), split(200..rows));
        let auc = |categorical: &[usize]| {
            let p = fit_predict(
                &Labelled {
                    x: &fit_x,
                    y: &y[..160],
                },
                &Labelled {
                    x: &val_x,
                    y: &y[160..200],
                },
                &test_x,
                categorical,
                0,
            )
            .expect("fits");
            assert_eq!((p.validation.len(), p.test.len()), (40, rows - 200));
            super::super::metrics::roc_auc(&p.test, &y[200..]).expect("two classes")
        };
        let native = auc(&[0]);
        assert!(native > 0.9, "native {native}");
        assert!(native > auc(&[]), "native splits must beat ordinal codes here");
    }

    #[test]
    fn folds_are_stratified_disjoint_and_cover_every_row() {
        let y: Vec<bool> = (0..23).map(|i| i % 4 == 0).collect();
        let folds = stratified_folds(&y, 5, 9);
        assert_eq!(folds.len(), 5);
        let mut all: Vec<usize> = folds.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..23).collect::<Vec<_>>());
        for fold in &folds {
            assert!(fold.iter().any(|&r| y[r]), "every fold holds a positive: {fold:?}");
            assert!(fold.len() >= 4 && fold.len() <= 5);
        }
        assert_eq!(stratified_folds(&[true, false], 5, 0).len(), 2);
    }

    #[test]
    fn a_shorter_fold_keeps_its_last_loss_in_the_mean_curve() {
        let mut curve = Vec::new();
        add_curve(&mut curve, &[3.0, 2.0], 1.0);
        add_curve(&mut curve, &[4.0, 3.0, 1.0], 2.0);
        assert_eq!(curve, vec![11.0, 8.0, 4.0]);
    }
}
