//! The answer to the user's question: for each label budget, which representation and
//! downstream model would a practitioner pick on the validation rows, how does that pick
//! score on the test split, and does it beat gradient-boosted trees on the raw columns?
//!
//! With embeddings, the answer is the stack (the `stack` module) when it was run: a fixed
//! recipe, so no selection noise. Otherwise, and for the best overall, picks are made per
//! seed on validation AUC only (the test split never decides), so the reported test AUC
//! is what the choice is worth, selection noise included.

use std::fmt::Write as _;

use serde::Serialize;

use super::downstream::Classifier;
use super::metrics::mean_std;
use super::protocol::{Budget, Cell};

/// A difference in mean test AUC smaller than this is a tie in the summary.
pub const TIE: f64 = 0.002;

/// Name of the raw-feature representation.
const RAW: &str = "raw";

/// What was picked for one budget, over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pick {
    /// The (representation · model) picked most often, with how often: `raw + adult_vime ·
    /// logistic (4/5 seeds)`.
    pub label: String,
    /// Test AUC of each seed's pick.
    pub auc: Vec<f64>,
}

impl Pick {
    /// Mean test AUC over seeds.
    #[must_use]
    pub fn mean(&self) -> f64 {
        mean_std(&self.auc).0
    }
}

/// One budget's picks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// The budget.
    pub budget: Budget,
    /// Labelled rows actually used.
    pub labelled_rows: usize,
    /// The reference: gradient-boosted trees on the raw columns when they were run,
    /// otherwise the raw-feature model picked on validation.
    pub reference: Pick,
    /// With embeddings: the stack when it was run, else the best by validation among
    /// representations that use an embedding (`None` when none was evaluated).
    pub with_embeddings: Option<Pick>,
    /// The best by validation among every representation and model.
    pub overall: Pick,
}

impl Choice {
    /// Mean test AUC of the embedding pick minus the reference's.
    #[must_use]
    pub fn gain(&self) -> Option<f64> {
        self.with_embeddings.as_ref().map(|p| p.mean() - self.reference.mean())
    }
}

/// The picks of every budget in `cells`, in budget order of appearance.
#[must_use]
pub fn choices(cells: &[Cell]) -> Vec<Choice> {
    let mut budgets: Vec<Budget> = Vec::new();
    for cell in cells {
        if !budgets.contains(&cell.budget) {
            budgets.push(cell.budget);
        }
    }
    budgets
        .into_iter()
        .filter_map(|budget| {
            let at: Vec<&Cell> = cells.iter().filter(|c| c.budget == budget).collect();
            let raw: Vec<&Cell> = at.iter().copied().filter(|c| c.representation == RAW).collect();
            let embedded: Vec<&Cell> = at
                .iter()
                .copied()
                .filter(|c| c.representation != RAW && c.classifier != Classifier::Stack)
                .collect();
            let with_embeddings = match at.iter().find(|c| c.classifier == Classifier::Stack) {
                Some(stack) => Some(Pick {
                    label: stack_label(stack),
                    auc: stack.auc.clone(),
                }),
                None => pick(&embedded),
            };
            let reference = match raw.iter().find(|c| c.classifier == Classifier::Gbdt) {
                Some(gbdt) => Pick {
                    label: format!("{RAW} · {}", Classifier::Gbdt.as_str()),
                    auc: gbdt.auc.clone(),
                },
                None => pick(&raw)?,
            };
            Some(Choice {
                budget,
                labelled_rows: at.first()?.labelled_rows,
                reference,
                with_embeddings,
                overall: pick(&at)?,
            })
        })
        .collect()
}

/// Per seed, the candidate with the best validation AUC (the first on ties or when no
/// validation AUC is defined); `None` without candidates.
fn pick(candidates: &[&Cell]) -> Option<Pick> {
    let seeds = candidates.first()?.auc.len();
    let mut chosen: Vec<usize> = Vec::with_capacity(seeds);
    for seed in 0..seeds {
        let score = |c: &Cell| {
            c.validation_auc
                .get(seed)
                .copied()
                .flatten()
                .unwrap_or(f64::NEG_INFINITY)
        };
        let mut best = 0;
        for (i, candidate) in candidates.iter().enumerate() {
            if score(candidate) > score(candidates[best]) {
                best = i;
            }
        }
        chosen.push(best);
    }
    let auc = chosen
        .iter()
        .enumerate()
        .map(|(seed, &i)| candidates[i].auc.get(seed).copied().unwrap_or(f64::NAN))
        .collect();
    let mut counts = vec![0usize; candidates.len()];
    for &i in &chosen {
        counts[i] += 1;
    }
    let (most, times) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
        .map(|(i, &n)| (i, n))?;
    let name = format!(
        "{} · {}",
        candidates[most].representation,
        candidates[most].classifier.as_str()
    );
    let label = if times == seeds {
        name
    } else {
        format!("{name} ({times}/{seeds} seeds)")
    };
    Some(Pick { label, auc })
}

/// `stack (embedding share 0.2–0.6)`: the range of shares chosen over seeds.
fn stack_label(stack: &Cell) -> String {
    let low = stack.stack_shares.iter().copied().fold(f64::INFINITY, f64::min);
    let high = stack.stack_shares.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let name = Classifier::Stack.as_str();
    if stack.stack_shares.is_empty() {
        name.to_string()
    } else if (high - low).abs() < 1e-9 {
        format!("{name} (embedding share {low:.1})")
    } else {
        format!("{name} (embedding share {low:.1}–{high:.1})")
    }
}

/// The budget as a reader says it: `100 labels`, `all 31,655 labels`.
#[must_use]
pub fn budget_text(choice: &Choice) -> String {
    match choice.budget {
        Budget::Rows(n) => format!("{n} labels"),
        Budget::All => format!("all {} labels", choice.labelled_rows),
    }
}

/// Whether the embeddings help at this budget, in words.
#[must_use]
pub fn verdict(gain: f64) -> &'static str {
    if gain >= TIE {
        "embeddings help"
    } else if gain <= -TIE {
        "embeddings do not help"
    } else {
        "a tie"
    }
}

/// The markdown section: a table of picks per budget and a plain summary.
#[must_use]
pub fn markdown(choices: &[Choice], seeds: u64) -> String {
    let mut out = String::new();
    let Some(first) = choices.first() else {
        return out;
    };
    let reference = first.reference.label.split(" (").next().unwrap_or_default().to_string();
    let _ = writeln!(
        out,
        "### What to use at each budget (test AUC, mean over {seeds} seeds)\n"
    );
    let stacked = choices.iter().any(|c| {
        c.with_embeddings
            .as_ref()
            .is_some_and(|p| p.label.starts_with(Classifier::Stack.as_str()))
    });
    let _ = writeln!(
        out,
        "{} \"Best overall\" is picked per seed on validation AUC among every row of the tables below.\n",
        if stacked {
            "\"With embeddings\" is the stack, tabssl's default recipe: gbdt on the raw columns blended with the \
             logistic and MLP models (those run) on every embedding, the embeddings' share of the logit chosen on \
             validation log-loss."
        } else {
            "\"With embeddings\" is picked per seed on validation AUC among the rows that use an embedding."
        }
    );
    let _ = writeln!(
        out,
        "| labels | reference: {reference} | with embeddings | its test AUC | vs reference | best overall | its test AUC |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---|---:|");
    for choice in choices {
        let (embedded, embedded_auc, gain) = match (&choice.with_embeddings, choice.gain()) {
            (Some(p), Some(g)) => (p.label.clone(), format!("{:.4}", p.mean()), format!("{g:+.4}")),
            _ => ("–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {:.4} | {embedded} | {embedded_auc} | {gain} | {} | {:.4} |",
            budget_text(choice),
            choice.reference.mean(),
            choice.overall.label,
            choice.overall.mean()
        );
    }
    let _ = writeln!(out, "\n{}\n", summary(choices));
    out
}

/// One sentence per verdict: where the embeddings help, where they do not.
#[must_use]
pub fn summary(choices: &[Choice]) -> String {
    let Some(first) = choices.first() else {
        return String::new();
    };
    let reference = first.reference.label.split(" (").next().unwrap_or_default().to_string();
    let mut groups: Vec<(&'static str, Vec<String>)> = Vec::new();
    for choice in choices {
        let Some(gain) = choice.gain() else { continue };
        let verdict = verdict(gain);
        let text = format!("{} ({gain:+.3})", budget_text(choice));
        match groups.iter_mut().find(|(v, _)| *v == verdict) {
            Some((_, items)) => items.push(text),
            None => groups.push((verdict, vec![text])),
        }
    }
    if groups.is_empty() {
        return format!("No embedding was evaluated; the reference is {reference}.");
    }
    let sentences: Vec<String> = groups
        .iter()
        .map(|(verdict, items)| {
            let tail = if *verdict == "embeddings do not help" {
                format!(": use {reference}")
            } else {
                String::new()
            };
            format!("At {}, {verdict}{tail}.", items.join(", "))
        })
        .collect();
    format!("Test AUC with embeddings, against {reference}: {}", sentences.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(representation: &str, classifier: Classifier, auc: &[f64], validation: &[f64]) -> Cell {
        Cell {
            representation: representation.into(),
            classifier,
            budget: Budget::Rows(100),
            labelled_rows: 100,
            auc: auc.to_vec(),
            accuracy: vec![0.0; auc.len()],
            validation_auc: validation.iter().map(|&v| Some(v)).collect(),
            stack_shares: Vec::new(),
        }
    }

    #[test]
    fn picks_follow_validation_not_test() {
        let cells = vec![
            cell("raw", Classifier::Logistic, &[0.70, 0.70], &[0.9, 0.9]),
            cell("raw", Classifier::Gbdt, &[0.75, 0.77], &[0.6, 0.6]),
            // Best on test, worst on validation: never picked.
            cell("raw + m", Classifier::Logistic, &[0.99, 0.99], &[0.1, 0.1]),
            cell("m", Classifier::Logistic, &[0.80, 0.72], &[0.8, 0.3]),
            cell("raw + m", Classifier::Gbdt, &[0.81, 0.78], &[0.5, 0.7]),
        ];
        let choices = choices(&cells);
        assert_eq!(choices.len(), 1);
        let choice = &choices[0];
        assert_eq!(choice.reference.label, "raw · gbdt");
        assert_eq!(choice.reference.auc, vec![0.75, 0.77]);
        let embedded = choice.with_embeddings.as_ref().expect("embeddings evaluated");
        assert_eq!(
            embedded.auc,
            vec![0.80, 0.78],
            "seed 0 picks m, seed 1 picks raw + m · gbdt"
        );
        assert_eq!(embedded.label, "m · logistic (1/2 seeds)");
        assert_eq!(choice.overall.label, "raw · logistic");
        let gain = choice.gain().expect("gain");
        assert!((gain - 0.03).abs() < 1e-12, "{gain}");
        assert!(summary(&choices).contains("At 100 labels (+0.030), embeddings help."));
    }

    #[test]
    fn with_a_stack_the_embeddings_answer_is_the_stack_on_every_seed() {
        let mut stack = cell("raw + m + n", Classifier::Stack, &[0.79, 0.81], &[0.7, 0.7]);
        stack.stack_shares = vec![0.2, 0.6];
        let cells = vec![
            cell("raw", Classifier::Gbdt, &[0.75, 0.77], &[0.6, 0.6]),
            // Better on validation than the stack, but the stack is the fixed recipe.
            cell("m", Classifier::Logistic, &[0.70, 0.70], &[0.9, 0.9]),
            stack,
        ];
        let choices = choices(&cells);
        let embedded = choices[0].with_embeddings.as_ref().expect("stacked");
        assert_eq!(embedded.label, "stack (embedding share 0.2–0.6)");
        assert_eq!(embedded.auc, vec![0.79, 0.81]);
        assert_eq!(
            choices[0].overall.label, "m · logistic",
            "the overall pick still follows validation"
        );
        let text = markdown(&choices, 2);
        assert!(
            text.contains("\"With embeddings\" is the stack, tabssl's default recipe"),
            "{text}"
        );
        assert!(
            text.contains("| 100 labels | 0.7600 | stack (embedding share 0.2–0.6) | 0.8000 | +0.0400 |"),
            "{text}"
        );
    }

    #[test]
    fn without_trees_the_reference_is_the_raw_pick_and_losses_are_said() {
        let cells = vec![
            cell("raw", Classifier::Logistic, &[0.90], &[0.8]),
            cell("raw", Classifier::Mlp, &[0.95], &[0.7]),
            cell("m", Classifier::Logistic, &[0.85], &[0.9]),
        ];
        let choices = choices(&cells);
        assert_eq!(choices[0].reference.label, "raw · logistic");
        let text = markdown(&choices, 1);
        assert!(
            text.contains("| 100 labels | 0.9000 | m · logistic | 0.8500 | -0.0500 |"),
            "{text}"
        );
        assert!(
            text.contains("At 100 labels (-0.050), embeddings do not help: use raw · logistic."),
            "{text}"
        );
    }
}
