//! Binary classification metrics.

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half (the Mann–Whitney statistic, average ranks for ties).
/// `None` when `labels` hold only one class.
#[must_use]
pub fn roc_auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their average.
        #[allow(clippy::cast_precision_loss)]
        let average_rank = (i + j + 2) as f64 / 2.0;
        for &k in &order[i..=j] {
            if labels[k] {
                rank_sum += average_rank;
            }
        }
        i = j + 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Share of rows where `score >= 0.5` agrees with the label.
#[must_use]
pub fn accuracy(scores: &[f32], labels: &[bool]) -> f64 {
    let correct = scores.iter().zip(labels).filter(|&(&s, &l)| (s >= 0.5) == l).count();
    #[allow(clippy::cast_precision_loss)]
    {
        correct as f64 / labels.len().max(1) as f64
    }
}

/// Mean log-loss of positive-class probabilities (clamped away from 0 and 1); 0 for no rows.
#[must_use]
pub fn log_loss(probabilities: &[f32], labels: &[bool]) -> f64 {
    let eps = 1e-7_f64;
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = f64::from(p).clamp(eps, 1.0 - eps);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    #[allow(clippy::cast_precision_loss)]
    {
        total / labels.len().max(1) as f64
    }
}

/// Mean and sample standard deviation (0 for fewer than two values).
#[must_use]
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    #[allow(clippy::cast_precision_loss)]
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, 0.0);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_counts() {
        // Pairs (pos, neg): (0.9 > 0.1), (0.9 > 0.5), (0.5 = 0.5 -> 1/2), (0.5 > 0.1): 3.5 / 4.
        let auc = roc_auc(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]).expect("two classes");
        assert!((auc - 0.875).abs() < 1e-12, "{auc}");
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        assert!((roc_auc(&[0.1, 0.9], &[true, false]).expect("auc") - 0.0).abs() < 1e-12);
    }

    #[test]
    fn accuracy_and_spread() {
        assert!((accuracy(&[0.7, 0.2, 0.5], &[true, false, false]) - 2.0 / 3.0).abs() < 1e-12);
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
    }
}
