#!/usr/bin/env python3
"""tabssl's gradient-boosted trees (`evaluate --classifiers gbdt`, hessboost) against
scikit-learn's HistGradientBoostingClassifier on the same Adult few-label splits: the same
fit and validation rows for every (budget, seed), the same input, the same protocol.

    cargo build --release --bin tabssl            # target/release/tabssl
    python3 benches/gbdt_reference.py             # 100,500,1000,all x 5 seeds
    python3 benches/gbdt_reference.py --budgets 100,500 --seeds 3
    python3 benches/gbdt_reference.py --reuse target/bench/gbdt_reference   # no tabssl run

tabssl side: `tabssl evaluate --train data/adult/adult.data.csv.gz --test
data/adult/adult.test.csv.gz --null-regex '\\?' --classifiers gbdt --budgets ... --seeds ...
--output OUT --save-splits`, timed as a whole process (CSV load, encoding, every fit, the
report). From OUT it reads evaluation.json (the `raw` · `gbdt` cells: per-seed test AUC) and
splits.json (the fit and validation row numbers of every (budget, seed)), and checks that
they agree with each other, with the training split and with --budgets/--seeds.

Reference side, per (budget, seed), on the same rows:
  input    the "tree view" tabssl builds: numeric columns as they are (float32, NaN for
           `?`), each categorical column as the rank of its value among the sorted
           distinct values of that column in the training split (Python `sorted()`, i.e.
           codepoint order, as Rust sorts strings), NaN for `?` or a value the training
           split lacks. Label: `class` is `>50K` after trimming spaces and trailing '.'.
  model    HistGradientBoostingClassifier(learning_rate=0.1, max_depth in {3, 6},
           min_samples_leaf in {20, 4} (about what tabssl's least leaf hessian weights 5
           and 1 mean where p is near 1/2), max_leaf_nodes=None (depth and leaf size are
           the only limits, as in tabssl), random_state=seed; other settings sklearn's
           (l2_regularization=0, max_bins=255), tabssl's its own (lambda 1, 255 bins).
  choice   as in crates/eval/src/gbdt.rs: up to 5,000 labelled rows, stratified 5-fold
           cross-validation over all labelled rows (fit and validation together; the
           folds are drawn here, not tabssl's): each setting boosts on four folds with
           the fifth stopping it (n_iter_no_change=20, up to 1000 rounds), the held-out
           log-loss of every round (staged predictions, clipped to [1e-7, 1 - 1e-7]; a
           fold that stopped keeps its last value) is averaged over the folds by their
           rows, and the setting and round with the lowest mean win (earlier setting and
           round on ties). Above 5,000 rows, the fit rows boost and the validation rows
           stop and choose.
  refit    the chosen setting boosted again on every labelled row for the chosen number
           of rounds (early_stopping=False): its test AUC is scored.
  variants hgb-ordinal: the codes as numbers;
           hgb-native:  categorical_features = the 8 categorical columns (sklearn's
           native categorical splits on the same codes);
           default-ordinal, default-native: what a practitioner's two lines give, the same
           two inputs with HistGradientBoostingClassifier(random_state=seed) at every
           other default (100 rounds, 31 leaves, min_samples_leaf 20; early stopping on
           an internal 10% only from 10,000 rows) fitted on all the labelled rows, fit
           and validation together, with no choice made on validation.
  threads  --threads OpenMP threads for sklearn (default 1: tabssl boosts each fit on one
           thread).

Output: per budget, mean ± std (n - 1) test AUC of each side, the paired mean difference
tabssl − hgb per variant with its paired t statistic (seeds − 1 df) and whether it is within
noise (|t| below the two-sided 95% critical value); the depths and rounds sklearn chose;
seconds per side (tabssl: the whole process; sklearn: fits and predictions of all cells,
data preparation counted apart); then a markdown table for BENCHMARKS.md, the machine and
the exact commands. With --reuse DIR no tabssl runs: DIR/evaluation.json and
DIR/splits.json are read as they are (budgets and seeds beyond --budgets/--seeds are left
out), and tabssl's seconds come from the `Command: ... (N s)` line of DIR/evaluation.md when
there is one.

Exit status: non-zero when the tabssl run fails or its files are inconsistent (missing
cells, seeds or budgets; row numbers out of range, repeated or overlapping; sizes that do
not match the budget). The AUC comparison never changes it.

Creates target/bench-venv with the pinned packages below if they are missing.
"""

import argparse
import datetime
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time

from bench_env import BUILD_TABSSL, ROOT, TABSSL, cores, ensure_packages, machine

PACKAGES = ["numpy==2.4.6", "pandas==3.1.1", "scikit-learn==1.9.1"]
TRAIN = "data/adult/adult.data.csv.gz"
TEST = "data/adult/adult.test.csv.gz"
LABEL, POSITIVE = "class", ">50K"
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
               "native-country"]
DEPTHS = [3, 6]
MIN_SAMPLES_LEAF = [20, 4]
LEARNING_RATE, MAX_ROUNDS, PATIENCE = 0.1, 1000, 20
CV_MAX_ROWS, CV_FOLDS = 5000, 5  # crates/eval/src/gbdt.rs
VALIDATION_SHARE = 0.2  # crates/eval/src/protocol.rs VALIDATION_SHARE
EPS = 1e-7  # probability clip of the validation log-loss (crates/eval/src/metrics.rs log_loss)
VARIANTS = ["hgb-ordinal", "hgb-native", "default-ordinal", "default-native"]
# Two-sided 95% critical values of Student's t, df 1..30; beyond 30 the df-30 value
# (slightly conservative: 1.96 is the limit).
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
       2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
       2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


# ---------------------------------------------------------------- helpers

def budget_label(budget):
    """evaluation.json's budget ({"Rows": 100} or "All") as splits.json spells it ("100", "all")."""
    if budget == "All":
        return "all"
    if isinstance(budget, dict) and set(budget) == {"Rows"}:
        return str(budget["Rows"])
    sys.exit(f"evaluation.json: unknown budget {budget!r}")


def parse_budgets(text):
    """'100,500,1000,all' -> ['100', '500', '1000', 'all'] (labels as tabssl writes them)."""
    out = []
    for word in (w.strip().lower() for w in text.split(",")):
        if word == "all":
            out.append(word)
        elif word.isdigit() and int(word) > 0:
            out.append(str(int(word)))
        elif word:
            sys.exit(f"--budgets: '{word}' is neither a positive number nor 'all'")
    if not out or len(set(out)) != len(out):
        sys.exit(f"--budgets: '{text}' must list distinct budgets")
    return out


def mean_std(values):
    """Mean and sample standard deviation (n - 1), as tabssl's reports."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd


def paired(ours, reference):
    """Paired comparison of per-seed values: (mean difference, t statistic, |t| < critical).
    t and the verdict are None with a single seed (no degrees of freedom)."""
    differences = [a - b for a, b in zip(ours, reference)]
    mean, sd = mean_std(differences)
    df = len(differences) - 1
    if df < 1:
        return mean, None, None
    if sd == 0.0:
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / (sd / math.sqrt(len(differences)))
    return mean, t, abs(t) < T95[min(df, len(T95)) - 1]


def validation_rows(labelled):
    """Validation share of a labelled sample (crates/eval/src/protocol.rs labelled_sample)."""
    if labelled < 2:
        return 0
    # Rust's f64::round rounds halves away from zero; Python's round() to even.
    return min(max(int(math.floor(labelled * VALIDATION_SHARE + 0.5)), 1), labelled - 1)


# ---------------------------------------------------------------- the tabssl side

def run_tabssl(args, out):
    """Runs `tabssl evaluate` (raw features, gbdt only, --save-splits) into `out`; returns
    (seconds, command line)."""
    if not os.path.exists(args.tabssl):
        sys.exit(f"{args.tabssl} not found: build it with `{BUILD_TABSSL}` (or pass --tabssl, or --reuse DIR)")
    os.makedirs(out, exist_ok=True)
    # Files of an earlier run must not pass for this run's.
    for name in ["evaluation.json", "splits.json", "evaluation.md"]:
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    command = [args.tabssl, "evaluate", "--train", TRAIN, "--test", TEST, "--null-regex", r"\?",
               "--classifiers", "gbdt", "--budgets", ",".join(args.budgets), "--seeds", str(args.seeds),
               "--output", out, "--save-splits"]
    print(f"running {shlex.join(command)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"tabssl evaluate failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return seconds, shlex.join(command)


def reused_run(directory):
    """(seconds, command) of the run that wrote `directory`, from evaluation.md's
    'Command: `...` (N s).' line; (None, None) where it is missing."""
    try:
        with open(os.path.join(directory, "evaluation.md")) as f:
            text = f.read()
    except OSError:
        return None, None
    found = re.search(r"Command: `(.*)` \((\d+(?:\.\d+)?) s\)", text)
    return (float(found.group(2)), found.group(1)) if found else (None, None)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"cannot read {path}: {e}")


def read_tabssl(directory, budgets, seeds, train_rows, strict):
    """Reads and checks DIR/splits.json and DIR/evaluation.json; `strict`: they hold
    nothing beyond `budgets` and `seeds` (a reused run may hold more). Returns
    ({budget: [(fit rows, validation rows) per seed]}, {budget: [test AUC per seed]},
    {budget: labelled rows})."""
    splits = load_json(os.path.join(directory, "splits.json"))
    cells = load_json(os.path.join(directory, "evaluation.json"))
    problems = []
    if splits.get("train_rows") != train_rows:
        problems.append(f"splits.json: train_rows {splits.get('train_rows')}, the training split has {train_rows}")

    # splits.json: one sample per (budget, seed), rows in range, distinct, disjoint, sized
    # like the budget.
    samples = {}
    for sample in splits.get("samples", []):
        key = (str(sample.get("budget")), sample.get("seed"))
        if key in samples:
            problems.append(f"splits.json: budget {key[0]} seed {key[1]} appears twice")
        samples[key] = sample
    extra = sorted(set(samples) - {(b, s) for b in budgets for s in range(seeds)}, key=str)
    if extra and strict:
        problems.append(f"splits.json: samples not asked for (budget, seed): {extra}")
    elif extra:
        print(f"splits.json: {len(extra)} samples beyond --budgets/--seeds left out")
    rows_of = {}
    for budget in budgets:
        rows_of[budget] = []
        labelled = train_rows if budget == "all" else min(int(budget), train_rows)
        for seed in range(seeds):
            sample = samples.get((budget, seed))
            if sample is None:
                problems.append(f"splits.json: no sample for budget {budget} seed {seed}")
                continue
            fit, validation = sample.get("fit", []), sample.get("validation", [])
            where = f"splits.json: budget {budget} seed {seed}"
            every = fit + validation
            if any(not isinstance(r, int) or r < 0 or r >= train_rows for r in every):
                problems.append(f"{where}: row numbers outside 0..{train_rows - 1}")
            elif len(set(every)) != len(every):
                problems.append(f"{where}: repeated rows (within or across fit and validation)")
            if len(every) != labelled or len(validation) != validation_rows(labelled):
                problems.append(f"{where}: {len(fit)} fit + {len(validation)} validation rows, expected "
                                f"{labelled - validation_rows(labelled)} + {validation_rows(labelled)}")
            rows_of[budget].append((fit, validation))

    # evaluation.json: the raw · gbdt cell of every budget, one AUC per seed.
    auc, labelled_rows = {}, {}
    for cell in cells:
        if cell.get("representation") != "raw" or cell.get("classifier") != "gbdt":
            continue
        budget = budget_label(cell.get("budget"))
        if budget not in budgets:
            if strict:
                problems.append(f"evaluation.json: a raw · gbdt cell for budget {budget}, not asked for")
            continue
        if budget in auc:
            problems.append(f"evaluation.json: two raw · gbdt cells for budget {budget}")
        auc[budget] = [float(v) for v in cell.get("auc", [])]
        labelled_rows[budget] = cell.get("labelled_rows")
    for budget in budgets:
        if budget not in auc:
            problems.append(f"evaluation.json: no raw · gbdt cell for budget {budget}")
            continue
        if not strict and len(auc[budget]) > seeds:
            auc[budget] = auc[budget][:seeds]  # a reused run with more seeds: the first ones
        if len(auc[budget]) != seeds:
            problems.append(f"evaluation.json: budget {budget} has {len(auc[budget])} AUCs, expected {seeds} seeds")
        expected = train_rows if budget == "all" else min(int(budget), train_rows)
        if labelled_rows[budget] != expected:
            problems.append(f"evaluation.json: budget {budget} labelled_rows {labelled_rows[budget]}, "
                            f"expected {expected}")
        if any(not (0.0 <= v <= 1.0) for v in auc[budget]):
            problems.append(f"evaluation.json: budget {budget} has an AUC outside [0, 1]")
    if problems:
        sys.exit("the tabssl files are inconsistent:\n  " + "\n  ".join(problems))
    return rows_of, auc, labelled_rows


# ---------------------------------------------------------------- the reference side

def load_split(pd, np, path):
    """(features DataFrame in file order, labels) of one split: '?' is missing, nothing else
    is (keep_default_na=False); blank lines (the test file's last) are skipped."""
    frame = pd.read_csv(os.path.join(ROOT, path), dtype=str, na_values=["?"], keep_default_na=False)
    expected = set(NUMERIC) | set(CATEGORICAL) | {LABEL}
    if set(frame.columns) != expected:
        sys.exit(f"{path}: columns {list(frame.columns)}, expected {sorted(expected)}")
    if frame[LABEL].isna().any():
        sys.exit(f"{path}: {int(frame[LABEL].isna().sum())} rows have a missing label")
    labels = (frame[LABEL].str.strip().str.rstrip(".") == POSITIVE).to_numpy()
    return frame.drop(columns=[LABEL]), labels


def tree_view(np, train, table):
    """float64 matrix of `table` (columns in file order): numbers as float32 values, each
    category as its rank among the training split's sorted categories, NaN for missing or a
    category the training split lacks (crates/eval/src/dataset.rs tree_view)."""
    out = np.full((len(table), len(table.columns)), np.nan)
    for j, column in enumerate(table.columns):
        if column in NUMERIC:
            out[:, j] = table[column].astype("float64").to_numpy().astype(np.float32)
        else:
            rank = {value: float(i) for i, value in enumerate(sorted(train[column].dropna().unique()))}
            out[:, j] = table[column].map(rank).astype("float64").to_numpy()
    return out


def log_loss(np, p, y):
    p = np.clip(p.astype(np.float64), EPS, 1.0 - EPS)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def held_out_losses(np, model, X, y):
    """Log-loss of (X, y) after each round of `model`."""
    return [log_loss(np, (1.0 / (1.0 + np.exp(-raw))).astype(np.float32), y)
            for raw in model.staged_decision_function(X)]


def stratified_folds(np, y, seed):
    """CV_FOLDS held-out row sets over the labelled rows: a seeded shuffle of each class
    dealt in turn (empty folds dropped)."""
    order = np.random.RandomState(seed).permutation(len(y))
    folds = [[] for _ in range(CV_FOLDS)]
    dealt = 0
    for cls in (True, False):
        for row in order[y[order] == cls]:
            folds[dealt % CV_FOLDS].append(row)
            dealt += 1
    return [np.array(sorted(f), dtype=np.int64) for f in folds if f]


def fit_reference(np, HistGradientBoostingClassifier, roc_auc_score, variant, categorical, X, y, X_test, y_test,
                  fit, validation, seed):
    """One (budget, seed) of one variant: returns (test AUC, (depth, min_samples_leaf) or
    "default", rounds)."""
    fit, validation = np.asarray(fit, dtype=np.int64), np.asarray(validation, dtype=np.int64)
    native = variant.endswith("native")
    labelled = np.concatenate([fit, validation])
    x_all, y_all = X[labelled], y[labelled]
    if y_all.all() or not y_all.any():
        # One class only: the constant, as tabssl does (sklearn refuses to fit).
        return roc_auc_score(y_test, np.full(len(y_test), float(y_all[0]))), None, 0
    cat = categorical if native else None
    if variant.startswith("default"):
        model = HistGradientBoostingClassifier(categorical_features=cat, random_state=seed)
        model.fit(x_all, y_all)
        return roc_auc_score(y_test, model.decision_function(X_test)), "default", model.n_iter_
    if len(labelled) <= CV_MAX_ROWS:
        positions = np.arange(len(labelled))
        folds = [(np.setdiff1d(positions, held), held) for held in stratified_folds(np, y_all, seed)]
    else:
        folds = [(np.arange(len(fit)), np.arange(len(fit), len(labelled)))]
    best = None
    for depth in DEPTHS:
        for leaf in MIN_SAMPLES_LEAF:
            curve, weight = [], 0
            for boosting, held in folds:
                xb, yb, xh, yh = x_all[boosting], y_all[boosting], x_all[held], y_all[held]
                if yb.all() or not yb.any():
                    losses = [log_loss(np, np.full(len(yh), float(yb[0]), dtype=np.float32), yh)]
                else:
                    model = HistGradientBoostingClassifier(
                        learning_rate=LEARNING_RATE, max_iter=MAX_ROUNDS, max_depth=depth, max_leaf_nodes=None,
                        min_samples_leaf=leaf, early_stopping=True, scoring="loss", n_iter_no_change=PATIENCE,
                        categorical_features=cat, random_state=seed)
                    model.fit(xb, yb, X_val=xh, y_val=yh)
                    losses = held_out_losses(np, model, xh, yh)
                if len(curve) < len(losses):
                    curve += [curve[-1] if curve else 0.0] * (len(losses) - len(curve))
                curve = [c + len(held) * (losses[i] if i < len(losses) else losses[-1]) for i, c in enumerate(curve)]
                weight += len(held)
            mean = [c / weight for c in curve]
            rounds = int(np.argmin(mean)) + 1
            if best is None or mean[rounds - 1] < best[0]:
                best = (mean[rounds - 1], depth, leaf, rounds)
    _, depth, leaf, rounds = best
    model = HistGradientBoostingClassifier(
        learning_rate=LEARNING_RATE, max_iter=rounds, max_depth=depth, max_leaf_nodes=None, min_samples_leaf=leaf,
        early_stopping=False, categorical_features=cat, random_state=seed)
    model.fit(x_all, y_all)
    return roc_auc_score(y_test, model.decision_function(X_test)), (depth, leaf), rounds


# ---------------------------------------------------------------- report

def verdict(t, within):
    if t is None:
        return "n/a (1 seed)"
    return f"t {t:+.2f}, {'within noise' if within else 'NOT within noise'}"


def main():
    ensure_packages(["numpy", "pandas", "sklearn"], PACKAGES)
    import numpy as np
    import pandas as pd
    import sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tabssl", default=TABSSL)
    parser.add_argument("--seeds", type=int, default=5, help="seeds per budget [5]")
    parser.add_argument("--budgets", default="100,500,1000,all", help="label budgets [100,500,1000,all]")
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "gbdt_reference"),
                        help="tabssl's output directory [target/bench/gbdt_reference]")
    parser.add_argument("--reuse", metavar="DIR",
                        help="run no tabssl: read DIR/evaluation.json and DIR/splits.json of an earlier run")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads of sklearn [1, as tabssl's fits]")
    args = parser.parse_args()
    args.budgets = parse_budgets(args.budgets)
    if args.seeds < 1:
        sys.exit("--seeds must be at least 1")
    ours = "tabssl gbdt"

    # 1. tabssl: run it (or reuse a run), read its cells and splits.
    if args.reuse:
        directory = os.path.abspath(args.reuse)
        tabssl_seconds, tabssl_command = reused_run(directory)
    else:
        directory = os.path.abspath(args.out)
        tabssl_seconds, tabssl_command = run_tabssl(args, directory)

    # 2. The same data as tabssl reads, in its tree view.
    started = time.perf_counter()
    train, y = load_split(pd, np, TRAIN)
    test, y_test = load_split(pd, np, TEST)
    X, X_test = tree_view(np, train, train), tree_view(np, train, test)
    categorical = [j for j, c in enumerate(train.columns) if c in CATEGORICAL]
    prepare_seconds = time.perf_counter() - started
    print(f"train {len(y)} rows ({int(y.sum())} positive), test {len(y_test)} rows ({int(y_test.sum())} positive), "
          f"{X.shape[1]} features ({len(categorical)} categorical); prepared in {prepare_seconds:.2f} s")
    rows_of, auc, labelled = read_tabssl(directory, args.budgets, args.seeds, len(y), strict=not args.reuse)
    print(f"read {directory}/evaluation.json and splits.json: {len(args.budgets)} budgets x {args.seeds} seeds, "
          "consistent")

    # 3. sklearn on the same rows, both variants.
    results = {}  # variant -> budget -> [(auc, depth, rounds) per seed]
    seconds = {}
    for variant in VARIANTS:
        results[variant] = {}
        started = time.perf_counter()
        with threadpool_limits(limits=args.threads, user_api="openmp"):
            for budget in args.budgets:
                results[variant][budget] = [
                    fit_reference(np, HistGradientBoostingClassifier, roc_auc_score, variant, categorical, X, y,
                                  X_test, y_test, fit, validation, seed)
                    for seed, (fit, validation) in enumerate(rows_of[budget])]
                print(f"  {variant} budget {budget}: done ({time.perf_counter() - started:.1f} s)", flush=True)
        seconds[variant] = time.perf_counter() - started

    # 4. The comparison.
    df = args.seeds - 1
    critical = T95[min(df, len(T95)) - 1] if df >= 1 else None
    print(f"\nTest AUC, mean ± std over {args.seeds} seeds; Δ = paired mean difference {ours} − hgb "
          + (f"(t with {df} df, within noise when |t| < {critical})" if critical else "(no t with one seed)"))
    header = f"{'budget':>6} {'rows':>6}  {ours:>17}" + "".join(f"  {v:>17}" for v in VARIANTS)
    print(header + "   " + " / ".join(f"Δ {v}" for v in VARIANTS))
    rows_md = []
    for budget in args.budgets:
        tabssl_auc = auc[budget]
        line = f"{budget:>6} {labelled[budget]:>6}  " + "{:.4f} ± {:.4f}".format(*mean_std(tabssl_auc))
        md = [budget, f"{labelled[budget]:,}", "{:.4f} ± {:.4f}".format(*mean_std(tabssl_auc))]
        deltas = []
        for variant in VARIANTS:
            reference = [r[0] for r in results[variant][budget]]
            line += "  " + "{:.4f} ± {:.4f}".format(*mean_std(reference))
            delta, t, within = paired(tabssl_auc, reference)
            deltas.append(f"{delta:+.4f} ({verdict(t, within)})")
            md += ["{:.4f} ± {:.4f}".format(*mean_std(reference)),
                   f"{delta:+.4f} (t {t:+.2f}{'' if within else ', **not noise**'})" if t is not None
                   else f"{delta:+.4f}"]
        print(line + "   " + " / ".join(deltas))
        rows_md.append(md)

    print("\nsklearn's choices per budget (depth 3 / 6 counts; best round, mean and range):")
    for variant in VARIANTS:
        for budget in args.budgets:
            cells = results[variant][budget]
            depths = [c[1] for c in cells]
            rounds = [c[2] for c in cells]
            if variant.startswith("default"):
                print(f"  {variant:15} {budget:>5}: sklearn's defaults; rounds {sum(rounds) / len(rounds):.0f} "
                      f"({min(rounds)}–{max(rounds)})")
                continue
            settings = sorted({d for d in depths if d is not None})
            print(f"  {variant:15} {budget:>5}: (depth, min_samples_leaf) "
                  + ", ".join(f"{d} x{depths.count(d)}" for d in settings)
                  + (f", one class x{depths.count(None)}" if None in depths else "")
                  + f"; rounds {sum(rounds) / len(rounds):.0f} ({min(rounds)}–{max(rounds)})")

    tabssl_time = f"{tabssl_seconds:.1f} s" if tabssl_seconds is not None else "n/a"
    print("\nSeconds, all budgets and seeds:")
    print(f"  {ours:12} {tabssl_time:>9}   whole `tabssl evaluate` process"
          + (" (from the reused evaluation.md, rounded to 1 s)" if args.reuse and tabssl_seconds is not None else ""))
    for variant in VARIANTS:
        print(f"  {variant:15} {seconds[variant]:7.1f} s   fits and predictions, {args.threads} thread(s)")
    print(f"  {'data':12} {prepare_seconds:7.1f} s   sklearn side: reading both splits and building the tree view")

    # 5. Markdown for BENCHMARKS.md, the machine, the commands.
    model, commit = machine()
    python_command = shlex.join(sys.argv)
    print(f"\n| budget | labelled rows | {ours} (hessboost) | " + " | ".join(f"{v} | Δ" for v in VARIANTS) + " |")
    print("|---|---:|---:|" + "---:|---:|" * len(VARIANTS))
    for md in rows_md:
        print("| " + " | ".join(md) + " |")
    print(f"\nTest AUC, mean ± std over {args.seeds} seeds on the same fit/validation rows; Δ: paired mean "
          f"difference tabssl − HGB"
          + (f", t with {df} df (noise when |t| < {critical})" if critical else "")
          + f". hgb-*: scikit-learn {sklearn.__version__} HistGradientBoostingClassifier, lr 0.1, depth 3 or 6, "
          f"min_samples_leaf 20 or 4 and rounds chosen as tabssl chooses them (5-fold cross-validation up to "
          f"{CV_MAX_ROWS:,} labelled rows, else the validation rows), then refitted on every labelled row; "
          f"default-*: its defaults, fitted on every labelled row. Seconds: tabssl {tabssl_time} (whole process), "
          + ", ".join(f"{v} {seconds[v]:.1f} s" for v in VARIANTS)
          + f" ({args.threads} thread(s), fits and predictions).")
    print(f"\nMachine: {cores()} cores, {model}; {datetime.date.today()}, commit {commit}, "
          f"numpy {np.__version__}, pandas {pd.__version__}, scikit-learn {sklearn.__version__}.")
    print(f"Command: python3 {python_command}")
    print(f"tabssl: {tabssl_command or 'n/a (no evaluation.md in the reused directory)'}")


if __name__ == "__main__":
    main()
