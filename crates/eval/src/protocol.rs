//! The few-label protocol: for each label budget and seed, draw that many labelled rows
//! from the training split, keep 20% of them for validation (model selection), train each
//! downstream classifier on each representation, and score it on the test split.
//!
//! Every representation sees the same labelled rows for a given (budget, seed), so their
//! differences are paired. Only the budget's labels are used: validation labels come out
//! of the budget, the test split is only ever scored.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use super::downstream::{Classifier, Labelled, Predictions, fit_predict};
use super::matrix::Matrix;
use super::metrics::{accuracy, mean_std, roc_auc};
use super::plot::{Chart, Series};
use super::stack::stack;
use tabssl_functions::Error;
use tabssl_functions::rng::TrainRng;

/// Share of each labelled sample held out for model selection.
const VALIDATION_SHARE: f64 = 0.2;

/// One way of describing a row: raw features, an embedding, or both. Each split comes in
/// two views: standardised (for the logistic and MLP models) and the tree view (for
/// gradient-boosted trees: raw numbers, categorical codes, NaN for missing).
#[derive(Debug, Clone)]
pub struct Representation {
    /// Name in reports, e.g. `raw`, `adult_vime`, `raw + adult_vime`.
    pub name: String,
    /// What it is made of.
    pub kind: Kind,
    /// Training-split rows (standardised).
    pub train: Matrix,
    /// Test-split rows (standardised with the training moments).
    pub test: Matrix,
    /// Training-split rows, tree view.
    pub tree_train: Matrix,
    /// Test-split rows, tree view.
    pub tree_test: Matrix,
    /// Columns of the tree view that hold category codes (split natively).
    pub tree_categorical: Vec<usize>,
}

/// What a representation is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The raw columns.
    Raw,
    /// One model's embedding.
    Embedding,
    /// Raw columns and an embedding side by side.
    RawAndEmbedding,
}

impl Representation {
    /// Standardises both splits with the training split's column moments; the tree view
    /// keeps the values as they are.
    #[must_use]
    pub fn standardized(name: String, kind: Kind, train: Matrix, test: Matrix) -> Self {
        let (tree_train, tree_test) = (train.clone(), test.clone());
        let (mut train, mut test) = (train, test);
        let moments = train.column_moments();
        train.standardize(&moments);
        test.standardize(&moments);
        Self {
            name,
            kind,
            train,
            test,
            tree_train,
            tree_test,
            tree_categorical: Vec::new(),
        }
    }

    /// The same representation with another tree view (raw features: categorical codes
    /// instead of one-hot columns), `categorical` listing its columns of codes.
    #[must_use]
    pub fn with_tree_view(self, tree_train: Matrix, tree_test: Matrix, categorical: Vec<usize>) -> Self {
        Self {
            tree_train,
            tree_test,
            tree_categorical: categorical,
            ..self
        }
    }

    /// The side-by-side concatenation of two representations.
    #[must_use]
    pub fn concat(&self, other: &Self) -> Self {
        Self {
            name: format!("{} + {}", self.name, other.name),
            kind: Kind::RawAndEmbedding,
            train: self.train.hconcat(&other.train),
            test: self.test.hconcat(&other.test),
            tree_train: self.tree_train.hconcat(&other.tree_train),
            tree_test: self.tree_test.hconcat(&other.tree_test),
            tree_categorical: self
                .tree_categorical
                .iter()
                .copied()
                .chain(other.tree_categorical.iter().map(|c| c + self.tree_train.cols))
                .collect(),
        }
    }

    /// The training and test matrices `classifier` reads.
    fn views(&self, classifier: Classifier) -> (&Matrix, &Matrix) {
        if classifier.uses_trees() {
            (&self.tree_train, &self.tree_test)
        } else {
            (&self.train, &self.test)
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
    pub fn parse(text: &str) -> tabssl_functions::Result<Self> {
        match text.trim() {
            "all" => Ok(Self::All),
            n => n
                .parse()
                .ok()
                .filter(|&n: &usize| n >= 10)
                .map(Self::Rows)
                .ok_or_else(|| {
                    tabssl_functions::Error::Invalid(format!(
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

    /// `100` or `all`.
    #[must_use]
    pub fn label(self) -> String {
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
    /// Validation AUC per seed (`None` when the validation rows hold one class): what
    /// the per-budget choice picks by. A stack's is optimistic: its share was chosen on these rows.
    #[serde(default)]
    pub validation_auc: Vec<Option<f64>>,
    /// Stack only: the embedding models' share of the blend per seed (`super::stack`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack_shares: Vec<f64>,
}

/// The labelled rows of one (budget, seed): row numbers of the training split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelledSample {
    /// Rows the models are fitted on.
    pub fit: Vec<usize>,
    /// Rows that choose penalties, depths, stopping steps and representations.
    pub validation: Vec<usize>,
}

/// The labelled rows of `budget` for `seed` out of `train_rows` rows: a seeded random
/// sample, 20% of it (at least one row each) for validation. Every representation and
/// model of a (budget, seed) gets these rows.
#[must_use]
pub fn labelled_sample(budget: Budget, seed: u64, train_rows: usize) -> LabelledSample {
    let labelled = budget.rows(train_rows);
    let sample = TrainRng::new(seed, &format!("labels-{}", budget.label())).permutation(train_rows);
    let sample = &sample[..labelled];
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let validation_rows = if labelled < 2 {
        0
    } else {
        ((labelled as f64 * VALIDATION_SHARE).round() as usize).clamp(1, labelled - 1)
    };
    let (validation, fit) = sample.split_at(validation_rows);
    LabelledSample {
        fit: fit.to_vec(),
        validation: validation.to_vec(),
    }
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
    /// Fits run side by side (0: one per core).
    pub threads: usize,
}

/// Runs the protocol, fits on `config.threads` threads; `progress` receives `(fits done,
/// fits in all)` after each fit. Results do not depend on the thread count: every fit has
/// its own seed and rows. The stack ([`Classifier::Stack`]) is built from the other fits,
/// one cell per budget, when there are embeddings to stack.
///
/// # Errors
/// Training errors, a test split with one class only, or a stack without the models it
/// blends.
pub fn run_protocol(
    representations: &[Representation],
    train_labels: &[bool],
    test_labels: &[bool],
    config: &ProtocolConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> tabssl_functions::Result<Vec<Cell>> {
    let available = train_labels.len();
    if config.budgets.iter().any(|b| b.rows(available) < 2) {
        return Err(Error::Invalid(format!(
            "the training split has {available} labelled rows; the protocol needs at least 2 (each budget's rows \
             are split into fit and validation rows)"
        )));
    }
    let stacked = config.classifiers.contains(&Classifier::Stack);
    if stacked
        && !(config.classifiers.contains(&Classifier::Gbdt)
            && (config.classifiers.contains(&Classifier::Logistic) || config.classifiers.contains(&Classifier::Mlp)))
    {
        return Err(Error::Invalid(
            "the stack blends gbdt on the raw columns with logistic and mlp on the embeddings: list gbdt and \
             logistic or mlp in the classifiers too"
                .into(),
        ));
    }
    // Every (budget, seed): its labelled rows and their labels.
    let samples: Vec<Sample> = config
        .budgets
        .iter()
        .flat_map(|&budget| (0..config.seeds).map(move |seed| (budget, seed)))
        .map(|(budget, seed)| Sample::new(budget, seed, train_labels))
        .collect();
    // Every fit, in the order results are reported: budget, representation, classifier, seed.
    let mut fits = Vec::new();
    for (b, _) in config.budgets.iter().enumerate() {
        for representation in representations {
            for &classifier in config.classifiers.iter().filter(|&&c| c != Classifier::Stack) {
                for seed in 0..config.seeds {
                    #[allow(clippy::cast_possible_truncation)]
                    let sample = &samples[b * config.seeds as usize + seed as usize];
                    fits.push(Fit {
                        representation,
                        classifier,
                        sample,
                    });
                }
            }
        }
    }
    let outcomes = run_fits(&fits, test_labels, config.threads, progress)?;
    let stacks = if stacked {
        stack_cells(&fits, &outcomes, &samples, test_labels)?
    } else {
        Vec::new()
    };
    let mut cells: Vec<Cell> = Vec::new();
    for (fit, outcome) in fits.iter().zip(outcomes) {
        let same = cells.last().is_some_and(|c: &Cell| {
            c.budget == fit.sample.budget
                && c.representation == fit.representation.name
                && c.classifier == fit.classifier
        });
        if !same {
            cells.push(Cell {
                representation: fit.representation.name.clone(),
                classifier: fit.classifier,
                budget: fit.sample.budget,
                labelled_rows: fit.sample.budget.rows(available),
                auc: Vec::new(),
                accuracy: Vec::new(),
                validation_auc: Vec::new(),
                stack_shares: Vec::new(),
            });
        }
        if let Some(cell) = cells.last_mut() {
            cell.auc.push(outcome.auc);
            cell.accuracy.push(outcome.accuracy);
            cell.validation_auc.push(outcome.validation_auc);
        }
    }
    cells.extend(stacks);
    Ok(cells)
}

/// One stack cell per budget: per seed, gradient-boosted trees on the raw columns blended
/// with the logistic and MLP fits on every embedding. None without embeddings.
fn stack_cells(
    fits: &[Fit<'_>],
    outcomes: &[Outcome],
    samples: &[Sample],
    test_labels: &[bool],
) -> tabssl_functions::Result<Vec<Cell>> {
    let embeddings: Vec<&str> = {
        let mut names = Vec::new();
        for fit in fits.iter().filter(|f| f.representation.kind == Kind::Embedding) {
            if !names.contains(&fit.representation.name.as_str()) {
                names.push(fit.representation.name.as_str());
            }
        }
        names
    };
    if embeddings.is_empty() {
        return Ok(Vec::new());
    }
    let mut cells: Vec<Cell> = Vec::new();
    for sample in samples {
        let of_sample = || {
            fits.iter()
                .zip(outcomes)
                .filter(move |(f, _)| std::ptr::eq(f.sample, sample))
        };
        let trees = of_sample()
            .find(|(f, _)| f.representation.kind == Kind::Raw && f.classifier == Classifier::Gbdt)
            .map(|(_, o)| &o.predictions)
            .ok_or_else(|| Error::Invalid("the stack needs gbdt on the raw columns".into()))?;
        let members: Vec<&Predictions> = of_sample()
            .filter(|(f, _)| {
                f.representation.kind == Kind::Embedding
                    && matches!(f.classifier, Classifier::Logistic | Classifier::Mlp)
            })
            .map(|(_, o)| &o.predictions)
            .collect();
        let stacked = stack(trees, &members, &sample.y_validation);
        let outcome = Outcome::score(stacked.predictions, sample, test_labels)?;
        if cells.last().is_none_or(|c| c.budget != sample.budget) {
            cells.push(Cell {
                representation: format!("raw + {}", embeddings.join(" + ")),
                classifier: Classifier::Stack,
                budget: sample.budget,
                labelled_rows: sample.rows.fit.len() + sample.rows.validation.len(),
                auc: Vec::new(),
                accuracy: Vec::new(),
                validation_auc: Vec::new(),
                stack_shares: Vec::new(),
            });
        }
        if let Some(cell) = cells.last_mut() {
            cell.auc.push(outcome.auc);
            cell.accuracy.push(outcome.accuracy);
            cell.validation_auc.push(outcome.validation_auc);
            cell.stack_shares.push(stacked.share);
        }
    }
    Ok(cells)
}

/// The labelled rows of one (budget, seed), with their labels.
struct Sample {
    budget: Budget,
    seed: u64,
    rows: LabelledSample,
    y_fit: Vec<bool>,
    y_validation: Vec<bool>,
}

impl Sample {
    fn new(budget: Budget, seed: u64, labels: &[bool]) -> Self {
        let rows = labelled_sample(budget, seed, labels.len());
        Self {
            budget,
            seed,
            y_fit: rows.fit.iter().map(|&i| labels[i]).collect(),
            y_validation: rows.validation.iter().map(|&i| labels[i]).collect(),
            rows,
        }
    }
}

/// One model fitted on one representation of one sample.
struct Fit<'a> {
    representation: &'a Representation,
    classifier: Classifier,
    sample: &'a Sample,
}

/// What one fit predicted and scored.
struct Outcome {
    auc: f64,
    accuracy: f64,
    validation_auc: Option<f64>,
    predictions: Predictions,
}

impl Outcome {
    fn score(predictions: Predictions, sample: &Sample, test_labels: &[bool]) -> tabssl_functions::Result<Self> {
        Ok(Self {
            auc: roc_auc(&predictions.test, test_labels)
                .ok_or_else(|| Error::Invalid("the test split holds only one class".into()))?,
            accuracy: accuracy(&predictions.test, test_labels),
            validation_auc: roc_auc(&predictions.validation, &sample.y_validation),
            predictions,
        })
    }
}

impl Fit<'_> {
    fn run(&self, test_labels: &[bool]) -> tabssl_functions::Result<Outcome> {
        let (fit_rows, test_rows) = self.representation.views(self.classifier);
        let x_fit = fit_rows.select(&self.sample.rows.fit);
        let x_validation = fit_rows.select(&self.sample.rows.validation);
        let p = fit_predict(
            self.classifier,
            &Labelled {
                x: &x_fit,
                y: &self.sample.y_fit,
            },
            &Labelled {
                x: &x_validation,
                y: &self.sample.y_validation,
            },
            test_rows,
            &self.representation.tree_categorical,
            self.sample.seed,
        )?;
        Outcome::score(p, self.sample, test_labels)
    }
}

/// Runs `fits` on `threads` threads (0: one per core); returns
/// their outcomes in the same order, or the first error (the other threads then stop
/// taking fits).
fn run_fits(
    fits: &[Fit<'_>],
    test_labels: &[bool],
    threads: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> tabssl_functions::Result<Vec<Outcome>> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    } else {
        threads
    }
    .min(fits.len())
    .max(1);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut outcomes: Vec<Option<Outcome>> = std::iter::repeat_with(|| None).take(fits.len()).collect();
    let mut failure = None;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel();
        for _ in 0..threads {
            let sender = sender.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // From the end: the largest budgets usually come last, and starting
                    // with them keeps every thread busy until the end.
                    let taken = next.fetch_add(1, Ordering::Relaxed);
                    let Some(i) = fits.len().checked_sub(taken + 1) else {
                        break;
                    };
                    let fit = &fits[i];
                    if sender.send((i, fit.run(test_labels))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut done = 0;
        for (i, outcome) in receiver {
            match outcome {
                Ok(outcome) => outcomes[i] = Some(outcome),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
            done += 1;
            progress(done, fits.len());
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| Error::Invalid("a downstream fit did not finish".into())))
        .collect()
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
                    let rivals: Vec<f64> = cells
                        .iter()
                        .filter(|o| o.budget == *budget && o.classifier == *classifier)
                        .map(|o| mean_std(&pick(o)).0)
                        .collect();
                    let best = rivals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    if rivals.len() > 1 && (mean - best).abs() < 1e-12 {
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

/// One chart per fitted classifier: test AUC against the label budget, a line per
/// representation, error bars one standard deviation (accuracy is in the tables); charts
/// of the other models also show gradient-boosted trees on raw features as the reference,
/// and every chart shows the stack.
#[must_use]
pub fn charts(cells: &[Cell], train_rows: usize) -> Vec<Chart> {
    let mut classifiers: Vec<Classifier> = Vec::new();
    let mut representations: Vec<String> = Vec::new();
    let mut stack: Option<Series> = None;
    for cell in cells {
        if cell.classifier == Classifier::Stack {
            stack.get_or_insert_with(|| Series {
                name: "stack (default recipe)".into(),
                points: points(cells, &cell.representation, Classifier::Stack, train_rows),
            });
            continue;
        }
        if !classifiers.contains(&cell.classifier) {
            classifiers.push(cell.classifier);
        }
        if !representations.contains(&cell.representation) {
            representations.push(cell.representation.clone());
        }
    }
    let reference = Series {
        name: "gbdt on raw (reference)".into(),
        points: points(cells, RAW_REFERENCE, Classifier::Gbdt, train_rows),
    };
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
                    points: points(cells, name, classifier, train_rows),
                })
                .chain((classifier != Classifier::Gbdt && !reference.points.is_empty()).then(|| reference.clone()))
                .chain(stack.clone())
                .collect(),
        })
        .collect()
}

/// The representation whose gradient-boosted trees are every chart's reference line.
const RAW_REFERENCE: &str = "raw";

/// `(labelled rows, mean test AUC, std)` of one representation and model per budget.
fn points(cells: &[Cell], representation: &str, classifier: Classifier, train_rows: usize) -> Vec<(f64, f64, f64)> {
    cells
        .iter()
        .filter(|c| c.representation == representation && c.classifier == classifier)
        .map(|c| {
            let (mean, sd) = mean_std(&c.auc);
            #[allow(clippy::cast_precision_loss)]
            (c.budget.rows(train_rows) as f64, mean, sd)
        })
        .collect()
}
