//! The stack: tabssl's default downstream recipe when labels are few. Gradient-boosted
//! trees on the raw columns are blended with the logistic and MLP models on every
//! embedding, in logit space:
//!
//! ```text
//! logit(stack) = (1 − w) · logit(trees on raw) + w · mean over members of logit(member)
//! ```
//!
//! The embedding share `w` is chosen from 0, 0.1, …, 1 by log-loss on the budget's
//! validation rows (`w = 0` is the trees alone, and wins ties), so with many labels the
//! trees take over and with few the embeddings do. It is a fixed recipe, not a pick among
//! representations: choosing one of twenty-odd cells on a few hundred validation rows
//! lands on a worse cell too often (models/README.md).

use super::downstream::Predictions;
use super::metrics::log_loss;

/// Embedding shares tried, from the trees alone to the embedding models alone.
const SHARES: [f64; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// Probabilities are clamped this far from 0 and 1 before taking logits (a tree model on
/// a one-class sample predicts exactly 0 or 1).
const CLAMP: f64 = 1e-6;

/// The stack's predictions and the embedding share chosen on validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Stacked {
    /// Blended positive-class probabilities.
    pub predictions: Predictions,
    /// Share of the embedding models in the blended logit.
    pub share: f64,
}

/// Blends `trees` (gradient-boosted trees on the raw columns) with the mean logit of
/// `members` (models on embeddings), the share chosen by log-loss on `y_validation`.
/// Without members the trees are returned as they are.
#[must_use]
pub fn stack(trees: &Predictions, members: &[&Predictions], y_validation: &[bool]) -> Stacked {
    if members.is_empty() {
        return Stacked {
            predictions: trees.clone(),
            share: 0.0,
        };
    }
    let mean_logit = |part: fn(&Predictions) -> &[f32]| -> Vec<f64> {
        let rows = part(trees).len();
        let mut sum = vec![0.0; rows];
        for member in members {
            for (s, &p) in sum.iter_mut().zip(part(member)) {
                *s += logit(p);
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let n = members.len() as f64;
        sum.into_iter().map(|s| s / n).collect()
    };
    let validation = (part_logits(trees, |p| &p.validation), mean_logit(|p| &p.validation));
    let mut best = (f64::INFINITY, 0.0);
    for share in SHARES {
        let loss = log_loss(&blend(&validation.0, &validation.1, share), y_validation);
        if loss < best.0 {
            best = (loss, share);
        }
    }
    let share = best.1;
    let test = (part_logits(trees, |p| &p.test), mean_logit(|p| &p.test));
    Stacked {
        predictions: Predictions {
            validation: blend(&validation.0, &validation.1, share),
            test: blend(&test.0, &test.1, share),
        },
        share,
    }
}

fn part_logits(predictions: &Predictions, part: fn(&Predictions) -> &[f32]) -> Vec<f64> {
    part(predictions).iter().map(|&p| logit(p)).collect()
}

fn logit(p: f32) -> f64 {
    let p = f64::from(p).clamp(CLAMP, 1.0 - CLAMP);
    (p / (1.0 - p)).ln()
}

/// `sigmoid((1 − share) · trees + share · members)`, row by row.
fn blend(trees: &[f64], members: &[f64], share: f64) -> Vec<f32> {
    trees
        .iter()
        .zip(members)
        .map(|(&t, &m)| {
            let z = (1.0 - share) * t + share * m;
            #[allow(clippy::cast_possible_truncation)]
            {
                (1.0 / (1.0 + (-z).exp())) as f32
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn predictions(validation: &[f32], test: &[f32]) -> Predictions {
        Predictions {
            validation: validation.to_vec(),
            test: test.to_vec(),
        }
    }

    #[test]
    fn useless_members_leave_the_trees_alone() {
        let y = [true, false, true, false];
        let trees = predictions(&[0.8, 0.2, 0.7, 0.3], &[0.9, 0.1]);
        // Members that say the opposite of the labels.
        let member = predictions(&[0.1, 0.9, 0.2, 0.8], &[0.3, 0.6]);
        let stacked = stack(&trees, &[&member], &y);
        assert!(stacked.share.abs() < 1e-12, "{}", stacked.share);
        for (a, b) in stacked.predictions.test.iter().zip(&trees.test) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn better_members_take_a_share_and_the_blend_is_in_logit_space() {
        let y = [true, false, true, false, true, false];
        // Trees that know nothing; members that are right and confident.
        let trees = predictions(&[0.5; 6], &[0.5, 0.5]);
        let a = predictions(&[0.9, 0.1, 0.8, 0.2, 0.9, 0.1], &[0.8, 0.2]);
        let b = predictions(&[0.7, 0.3, 0.9, 0.1, 0.8, 0.2], &[0.6, 0.4]);
        let stacked = stack(&trees, &[&a, &b], &y);
        assert!((stacked.share - 1.0).abs() < 1e-12, "{}", stacked.share);
        // Mean of the members' logits, not of their probabilities.
        let expected = {
            let z = f64::midpoint(logit(0.8), logit(0.6));
            1.0 / (1.0 + (-z).exp())
        };
        assert!(
            (f64::from(stacked.predictions.test[0]) - expected).abs() < 1e-6,
            "{} vs {expected}",
            stacked.predictions.test[0]
        );
        let validation_loss = log_loss(&stacked.predictions.validation, &y);
        assert!(validation_loss < log_loss(&trees.validation, &y));
    }

    #[test]
    fn certain_trees_give_finite_logits() {
        let y = [true, false];
        let trees = predictions(&[1.0, 0.0], &[1.0, 0.0]);
        let member = predictions(&[0.6, 0.4], &[0.6, 0.4]);
        let stacked = stack(&trees, &[&member], &y);
        assert!(stacked.predictions.test.iter().all(|p| p.is_finite()));
        assert!(stacked.predictions.test[0] > 0.5 && stacked.predictions.test[1] < 0.5);
    }
}
