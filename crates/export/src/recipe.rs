//! The SQL an export runs: which columns play which role, the first pass that samples
//! each column's marginal, and the query that corrupts every feature column.

use std::fmt::Write as _;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::SessionContext;

use super::ExportOptions;
use tabssl_functions::sql_text::{ident, string_literal};
use tabssl_functions::{Error, Method, Result};

/// The columns of an export, checked against the table, and the SQL built from them.
#[derive(Debug, Clone)]
pub struct Recipe {
    options: ExportOptions,
    table: String,
    key: String,
    features: Vec<(String, DataType)>,
    /// Per feature: for [`Method::Noise`], the noise standard deviation of a numeric column.
    sigmas: Vec<Option<f64>>,
}

impl Recipe {
    /// Checks `options` against the schema of `table` and, for [`Method::Noise`], computes
    /// each numeric feature's standard deviation.
    ///
    /// # Errors
    /// A column that is not in the table, no feature column left, or a column whose
    /// standard deviation is not finite.
    pub async fn new(ctx: &SessionContext, table: &str, options: &ExportOptions) -> Result<Self> {
        let schema = ctx.table(table).await?.schema().as_arrow().clone();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let check = |column: &str| {
            if names.contains(&column) {
                Ok(())
            } else {
                Err(Error::invalid(format!(
                    "column {column:?} is not in the input; it has: {}",
                    names.join(", ")
                )))
            }
        };
        if let Some(key) = &options.key {
            check(key)?;
        }
        // The export adds these columns; an input that has them (a previous export, say)
        // would make every reference ambiguous.
        let added = std::iter::once("view_id").chain(options.key.is_none().then_some("row_id"));
        if let Some(clash) = added.into_iter().find(|name| names.contains(name)) {
            return Err(Error::invalid(format!(
                "the input already has a column named {clash:?}, which the export adds (is the input a tabssl \
                 export?); select the input's columns without it"
            )));
        }
        for column in options.keep.iter().chain(&options.columns) {
            check(column)?;
        }
        let features: Vec<(String, DataType)> = schema
            .fields()
            .iter()
            .filter(|f| {
                if options.columns.is_empty() {
                    Some(f.name()) != options.key.as_ref() && !options.keep.contains(f.name())
                } else {
                    options.columns.contains(f.name())
                }
            })
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        if features.is_empty() {
            return Err(Error::invalid(
                "no feature columns to corrupt: check the columns, keep and key options",
            ));
        }
        let mut recipe = Self {
            options: options.clone(),
            table: ident(table),
            key: options.key.clone().unwrap_or_else(|| "row_id".into()),
            features,
            sigmas: Vec::new(),
        };
        if options.method == Method::Noise {
            recipe.sigmas = recipe.column_stds(ctx).await?;
        }
        Ok(recipe)
    }

    /// The feature columns and their types.
    #[must_use]
    pub fn features(&self) -> &[(String, DataType)] {
        &self.features
    }

    /// The derived columns the export writes.
    #[must_use]
    pub fn derived_columns(&self) -> Vec<String> {
        let outputs = self.options.outputs;
        let written = [outputs.tilde, outputs.mask, outputs.changed];
        self.features
            .iter()
            .flat_map(|(c, _)| derived_names(c).into_iter().zip(written))
            .filter_map(|(name, on)| on.then_some(name))
            .collect()
    }

    /// The input with its row key: the given column, or the row's position.
    #[must_use]
    pub fn keyed_input(&self) -> String {
        if self.options.key.is_some() {
            self.table.clone()
        } else {
            format!(
                "(SELECT CAST(row_number() OVER () AS BIGINT) - 1 AS {}, * FROM {})",
                ident(&self.key),
                self.table
            )
        }
    }

    /// The first pass: `COPY` of each feature's `marginal_sample` to `marginal`.
    #[must_use]
    pub fn marginal_sql(&self, marginal: &str) -> String {
        self.marginal_sql_over(&self.keyed_input(), marginal)
    }

    /// The first pass over `input`, a relation holding [`Self::keyed_input`]'s rows.
    #[must_use]
    pub fn marginal_sql_over(&self, input: &str, marginal: &str) -> String {
        let samples: Vec<String> = self
            .features
            .iter()
            .map(|(c, _)| {
                format!(
                    "marginal_sample({}, {}, {}) AS {}",
                    ident(c),
                    ident(&self.key),
                    self.options.capacity,
                    ident(c)
                )
            })
            .collect();
        format!(
            "COPY (SELECT {} FROM {input}) TO {} STORED AS PARQUET",
            samples.join(", "),
            string_literal(marginal)
        )
    }

    /// Each numeric feature's standard deviation times the noise std option.
    async fn column_stds(&self, ctx: &SessionContext) -> Result<Vec<Option<f64>>> {
        let numeric: Vec<String> = self
            .features
            .iter()
            .filter(|(_, t)| t.is_numeric())
            .map(|(c, _)| format!("stddev_pop(CAST({} AS DOUBLE))", ident(c)))
            .collect();
        if numeric.is_empty() {
            return Ok(vec![None; self.features.len()]);
        }
        let sql = format!("SELECT {} FROM {}", numeric.join(", "), self.table);
        let batches = ctx.sql(&sql).await?.collect().await?;
        let row = batches
            .first()
            .ok_or_else(|| Error::Internal("the standard deviations query returned no row".into()))?;
        let mut next = 0;
        self.features
            .iter()
            .map(|(_, t)| {
                t.is_numeric().then(|| {
                    let column = row.column(next);
                    next += 1;
                    let std = column
                        .as_primitive::<Float64Type>()
                        .iter()
                        .next()
                        .flatten()
                        .unwrap_or(0.0);
                    self.options.noise_std * std
                })
            })
            .map(|sigma| match sigma {
                Some(s) if !s.is_finite() => Err(Error::invalid(format!(
                    "method noise: a column's standard deviation is not finite ({s}); leave it out with the keep \
                     or columns option"
                ))),
                other => Ok(other),
            })
            .collect()
    }

    /// The export query: originals, corrupted values, masks and labels of every feature,
    /// `views` times per row; swaps draw from the marginal sample at `marginal`.
    #[must_use]
    pub fn export_sql(&self, marginal: &str) -> String {
        let options = &self.options;
        let p = options.corruption_rate();
        let (seed, key) = (options.seed, ident(&self.key));
        let mut inner = format!("{key}, view_id");
        let mut outer = format!("{key}, view_id");
        for column in &options.keep {
            let _ = write!(inner, ", {}", ident(column));
            let _ = write!(outer, ", {}", ident(column));
        }
        for (i, (column, data_type)) in self.features.iter().enumerate() {
            let c = ident(column);
            let sigma = self.sigmas.get(i).copied().flatten().filter(|_| data_type.is_numeric());
            // Method noise: numeric columns get Gaussian noise with p; the others get
            // swap noise at the denoising autoencoder's rate.
            let p = match (options.method, sigma) {
                (Method::Noise, None) => Method::Dae.default_p(),
                _ => p,
            };
            let swap = if options.batch_local {
                format!("corrupt_swap_batch({c}, {p}, {seed}, {key}, view_id)")
            } else {
                format!(
                    "corrupt_swap({c}, {}, {p}, {seed}, {key}, view_id)",
                    string_literal(marginal)
                )
            };
            let corrupted = match (options.method, sigma) {
                (Method::Noise, Some(sigma)) => format!("corrupt_noise({c}, {sigma:?}, {p}, {seed}, {key}, view_id)"),
                (Method::Blank, _) => {
                    let fill = options.fill.as_ref().map_or("NULL".to_string(), |f| string_literal(f));
                    format!("corrupt_fill({c}, {fill}, {p}, {seed}, {key}, view_id)")
                }
                _ => swap,
            };
            let [tilde, mask, changed] = derived_names(column).map(|name| ident(&name));
            let outputs = options.outputs;
            let _ = write!(inner, ", {c}");
            if outputs.needs_corrupted() {
                let _ = write!(inner, ", {corrupted} AS {tilde}");
            }
            if outputs.mask {
                let _ = write!(inner, ", corrupt_mask({c}, {p}, {seed}, {key}, view_id) AS {mask}");
            }
            // VIME's label m = (x != x_tilde): NULL where x is NULL, true where a cell was
            // blanked to NULL.
            let original = if sigma.is_some() {
                format!("CAST({c} AS DOUBLE)")
            } else {
                c.clone()
            };
            // A swap or noise never turns a value into NULL, so a plain comparison gives
            // that; blanking to NULL needs IS DISTINCT FROM.
            let changed_expr = if options.method == Method::Blank {
                format!("CASE WHEN {c} IS NULL THEN NULL ELSE {original} IS DISTINCT FROM {tilde} END")
            } else {
                format!("{original} <> {tilde}")
            };
            let _ = write!(outer, ", {c}");
            if outputs.tilde {
                let _ = write!(outer, ", {tilde}");
            }
            if outputs.mask {
                let _ = write!(outer, ", {mask}");
            }
            if outputs.changed {
                let _ = write!(outer, ", {changed_expr} AS {changed}");
            }
        }
        // One view needs no unnest, which would copy every row.
        let view_ids = if options.views == 1 {
            "CAST(0 AS BIGINT)".to_string()
        } else {
            let views: Vec<String> = (0..options.views).map(|v| v.to_string()).collect();
            format!("unnest(make_array({}))", views.join(", "))
        };
        format!(
            "SELECT {outer} FROM (SELECT {inner} FROM (SELECT *, {view_ids} AS view_id FROM {}))",
            self.keyed_input()
        )
    }
}

/// The columns derived from feature `column`: corrupted value, mask, VIME's label.
fn derived_names(column: &str) -> [String; 3] {
    ["tilde", "mask", "changed"].map(|suffix| format!("{column}_{suffix}"))
}
