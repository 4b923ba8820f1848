//! The few-label protocol: for each label budget and seed, draw that many labelled rows
//! from the training split, keep 20% of them for validation (model selection), train each
//! downstream classifier on each representation, and score it on the test split.
//!
//! Every representation sees the same labelled rows for a given (budget, seed), so their
//! differences are paired. Only the budget's labels are used: validation labels come out
//! of the budget, the test split is only ever scored.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::downstream::{Classifier, Labelled, fit_predict};
use super::matrix::Matrix;
use super::metrics::{accuracy, mean_std, roc_auc};
use super::plot::{Chart, Series};
use crate::Error;
use crate::rng::TrainRng;

/// Share of each labelled sample held out for model selection.
const VALIDATION_SHARE: f64 = 0.2;

/// One way of describing a row: raw features, an embedding, or both.
#[derive(Debug, Clone)]
pub struct Representation {
    /// Name in reports, e.g. `raw`, `adult_vime`, `raw + adult_vime`.
    pub name: String,
    /// Training-split rows (standardised).
    pub train: Matrix,
    /// Test-split rows (standardised with the training moments).
    pub test: Matrix,
}

impl Representation {
    /// Standardises both splits with the training split's column moments.
    #[must_use]
    pub fn standardized(name: String, mut train: Matrix, mut test: Matrix) -> Self {
        let moments = train.column_moments();
        train.standardize(&moments);
        test.standardize(&moments);
        Self { name, train, test }
    }

    /// The side-by-side concatenation of two representations.
    #[must_use]
    pub fn concat(&self, other: &Self) -> Self {
        Self {
            name: format!("{} + {}", self.name, other.name),
            train: self.train.hconcat(&other.train),
            test: self.test.hconcat(&other.test),
        }
    }
}

/// A label budget: a number of labelled rows, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Budget {
    /// This many labelled rows.
    Rows(usize),
    /// Every training row.
    All,
}

impl Budget {
    /// Parses `100` or `all`.
    ///
    /// # Errors
    /// When the text is neither.
    pub fn parse(text: &str) -> crate::Result<Self> {
        match text.trim() {
            "all" => Ok(Self::All),
            n => n
                .parse()
                .ok()
                .filter(|&n: &usize| n >= 10)
                .map(Self::Rows)
                .ok_or_else(|| {
                    crate::Error::Invalid(format!(
                        "a label budget is a number of rows (at least 10) or 'all', got {n:?}"
                    ))
                }),
        }
    }

    fn rows(self, available: usize) -> usize {
        match self {
            Self::Rows(n) => n.min(available),
            Self::All => available,
        }
    }

    fn label(self) -> String {
        match self {
            Self::Rows(n) => n.to_string(),
            Self::All => "all".into(),
        }
    }
}

/// The scores of one (representation, classifier, budget) over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// Representation name.
    pub representation: String,
    /// Downstream model.
    pub classifier: Classifier,
    /// The budget.
    pub budget: Budget,
    /// Labelled rows actually used (train + validation).
    pub labelled_rows: usize,
    /// Test AUC per seed.
    pub auc: Vec<f64>,
    /// Test accuracy per seed.
    pub accuracy: Vec<f64>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ProtocolConfig {
    /// Label budgets.
    pub budgets: Vec<Budget>,
    /// Seeds 0..seeds.
    pub seeds: u64,
    /// Downstream models.
    pub classifiers: Vec<Classifier>,
}

/// Runs the protocol; `progress` receives one line per finished cell.
///
/// # Errors
/// Training errors, or a test split with one class only.
pub fn run_protocol(
    representations: &[Representation],
    train_labels: &[bool],
    test_labels: &[bool],
    config: &ProtocolConfig,
    progress: &mut dyn FnMut(&str),
) -> crate::Result<Vec<Cell>> {
    let mut cells = Vec::new();
    for &budget in &config.budgets {
        let labelled = budget.rows(train_labels.len());
        if labelled < 2 {
            return Err(Error::Invalid(format!(
                "the training split has {} labelled rows; the protocol needs at least 2 (each budget's rows \
                 are split into fit and validation rows)",
                train_labels.len()
            )));
        }
        // Index into `cells` of each (representation, classifier) for this budget.
        let start = cells.len();
        for representation in representations {
            for &classifier in &config.classifiers {
                cells.push(Cell {
                    representation: representation.name.clone(),
                    classifier,
                    budget,
                    labelled_rows: labelled,
                    auc: Vec::new(),
                    accuracy: Vec::new(),
                });
            }
        }
        for seed in 0..config.seeds {
            let sample = TrainRng::new(seed, &format!("labels-{}", budget.label())).permutation(train_labels.len());
            let sample = &sample[..labelled];
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let validation_rows = ((labelled as f64 * VALIDATION_SHARE).round() as usize).clamp(1, labelled - 1);
            let (validation, train) = sample.split_at(validation_rows);
            let y_train: Vec<bool> = train.iter().map(|&i| train_labels[i]).collect();
            let y_validation: Vec<bool> = validation.iter().map(|&i| train_labels[i]).collect();
            let mut cell = start;
            for representation in representations {
                let x_train = representation.train.select(train);
                let x_validation = representation.train.select(validation);
                for &classifier in &config.classifiers {
                    let p = fit_predict(
                        classifier,
                        &Labelled {
                            x: &x_train,
                            y: &y_train,
                        },
                        &Labelled {
                            x: &x_validation,
                            y: &y_validation,
                        },
                        &representation.test,
                        seed,
                    )?;
                    let auc = roc_auc(&p, test_labels)
                        .ok_or_else(|| Error::Invalid("the test split holds only one class".into()))?;
                    cells[cell].auc.push(auc);
                    cells[cell].accuracy.push(accuracy(&p, test_labels));
                    cell += 1;
                }
            }
        }
        for cell in &cells[start..] {
            let (auc, auc_sd) = mean_std(&cell.auc);
            progress(&format!(
                "budget {:>5}  {:<28} {:<8}  AUC {auc:.4} ± {auc_sd:.4}",
                cell.budget.label(),
                cell.representation,
                cell.classifier.as_str()
            ));
        }
    }
    Ok(cells)
}

/// The results as markdown: one table per metric, rows (representation, classifier),
/// columns budgets, cells `mean ± std` over seeds; the best mean per column in bold.
#[must_use]
pub fn markdown(cells: &[Cell], seeds: u64) -> String {
    let mut budgets: Vec<Budget> = Vec::new();
    let mut rows: Vec<(String, Classifier)> = Vec::new();
    for cell in cells {
        if !budgets.contains(&cell.budget) {
            budgets.push(cell.budget);
        }
        let row = (cell.representation.clone(), cell.classifier);
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    let mut out = String::new();
    for (metric, values) in [("AUC", true), ("Accuracy", false)] {
        let pick = |c: &Cell| if values { c.auc.clone() } else { c.accuracy.clone() };
        let _ = writeln!(out, "### Test {metric} (mean ± std over {seeds} seeds)\n");
        let header: Vec<String> = budgets
            .iter()
            .map(|b| match b {
                Budget::Rows(n) => format!("{n} labels"),
                Budget::All => {
                    let n = cells
                        .iter()
                        .find(|c| c.budget == Budget::All)
                        .map_or(0, |c| c.labelled_rows);
                    format!("all ({n})")
                }
            })
            .collect();
        let _ = writeln!(out, "| representation | model | {} |", header.join(" | "));
        let _ = writeln!(out, "|---|---|{}", "---:|".repeat(budgets.len()));
        for (representation, classifier) in &rows {
            let mut line = format!("| {representation} | {} |", classifier.as_str());
            for budget in &budgets {
                let cell = cells.iter().find(|c| {
                    c.budget == *budget && &c.representation == representation && c.classifier == *classifier
                });
                let text = cell.map_or("–".to_string(), |c| {
                    let (mean, sd) = mean_std(&pick(c));
                    let best = cells
                        .iter()
                        .filter(|o| o.budget == *budget && o.classifier == *classifier)
                        .map(|o| mean_std(&pick(o)).0)
                        .fold(f64::NEG_INFINITY, f64::max);
                    if (mean - best).abs() < 1e-12 {
                        format!("**{mean:.4}** ± {sd:.4}")
                    } else {
                        format!("{mean:.4} ± {sd:.4}")
                    }
                });
                let _ = write!(line, " {text} |");
            }
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    out
}

/// One chart per classifier: test AUC against the label budget, a line per
/// representation, error bars one standard deviation (accuracy is in the tables).
#[must_use]
pub fn charts(cells: &[Cell], train_rows: usize) -> Vec<Chart> {
    let mut classifiers: Vec<Classifier> = Vec::new();
    let mut representations: Vec<String> = Vec::new();
    for cell in cells {
        if !classifiers.contains(&cell.classifier) {
            classifiers.push(cell.classifier);
        }
        if !representations.contains(&cell.representation) {
            representations.push(cell.representation.clone());
        }
    }
    classifiers
        .iter()
        .map(|&classifier| Chart {
            title: format!("Test AUC, {} on each representation", classifier.as_str()),
            x_label: "labelled rows (log scale)".into(),
            y_label: "AUC".into(),
            log_x: true,
            series: representations
                .iter()
                .map(|name| Series {
                    name: name.clone(),
                    points: cells
                        .iter()
                        .filter(|c| &c.representation == name && c.classifier == classifier)
                        .map(|c| {
                            let (mean, sd) = mean_std(&c.auc);
                            #[allow(clippy::cast_precision_loss)]
                            (c.budget.rows(train_rows) as f64, mean, sd)
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}
