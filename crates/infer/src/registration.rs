//! Registering every tabssl function on DataFusion: on a function registry, a session
//! under construction, a live session, or a new one.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::TableFunctionImpl;
use datafusion::config::ConfigOptions;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionContext;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionConfig;
use tabssl_functions::{corrupt, synthetic};

use crate::options::{InferenceSettings, TabsslOptions};
use crate::{models_table, spread, udf};

/// Every tabssl scalar function: `embed`, `predict` and the `corrupt_*` functions. The
/// inference functions start with the default `tabssl.*` settings; a session applies its
/// own when they are registered in it (and on every `SET tabssl...`).
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    let settings = InferenceSettings::from_config(&ConfigOptions::default());
    let mut functions = vec![
        Arc::new(udf::embed_udf(settings.clone())),
        Arc::new(udf::predict_udf(settings)),
    ];
    functions.extend(corrupt::scalar_functions());
    functions
}

/// Every tabssl aggregate function: `marginal_sample`.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![corrupt::marginal_sample_udaf()]
}

/// Every tabssl table function, by name: `tabssl_models`, `tabssl_synthetic`.
pub fn table_functions() -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    vec![
        ("tabssl_models", Arc::new(models_table::ModelsTableFunction)),
        ("tabssl_synthetic", Arc::new(synthetic::SyntheticTableFunction)),
    ]
}

/// Registers the scalar and aggregate functions on any function registry: a
/// `SessionState`, a `SessionContext`, a distributed worker's state. Table functions need
/// a session: see [`register_all`] and [`with_tabssl`].
///
/// # Errors
/// When the registry refuses a function.
pub fn register(registry: &mut dyn FunctionRegistry) -> datafusion::error::Result<()> {
    for function in scalar_functions() {
        registry.register_udf(function)?;
    }
    for function in aggregate_functions() {
        registry.register_udaf(function)?;
    }
    Ok(())
}

/// Adds tabssl to a session under construction: its functions are appended to those the
/// builder already holds (call it after `with_default_features`; a later
/// `with_scalar_functions` would replace them), the table functions are added, and
/// `options` become the session's `tabssl.*` settings. Its physical optimizer gains the
/// rule that runs `embed`/`predict` on every partition ([`with_spread_inference`](crate::with_spread_inference)).
///
/// ```
/// use datafusion::execution::session_state::SessionStateBuilder;
/// use datafusion::prelude::SessionContext;
///
/// let options = tabssl_infer::TabsslOptions::default();
/// let state = tabssl_infer::with_tabssl(SessionStateBuilder::new().with_default_features(), options)
///     .build();
/// let ctx = SessionContext::new_with_state(state);
/// assert!(ctx.state().scalar_functions().contains_key("embed"));
/// assert!(ctx.state().scalar_functions().contains_key("abs"), "the defaults stay");
/// ```
#[must_use]
pub fn with_tabssl(mut builder: SessionStateBuilder, options: TabsslOptions) -> SessionStateBuilder {
    builder
        .scalar_functions()
        .get_or_insert_with(Vec::new)
        .extend(scalar_functions());
    builder
        .aggregate_functions()
        .get_or_insert_with(Vec::new)
        .extend(aggregate_functions());
    let tables = builder.table_functions().get_or_insert_with(HashMap::new);
    for (name, function) in table_functions() {
        let function = datafusion::catalog::TableFunction::new(name.to_string(), function);
        tables.insert(name.to_string(), Arc::new(function));
    }
    let config = builder
        .config()
        .take()
        .unwrap_or_default()
        .with_option_extension(options);
    spread::with_spread_inference(builder.with_config(config))
}

/// Registers every tabssl function on `ctx`, installs `options` as the session's
/// `tabssl.*` settings and adds the rule that runs `embed`/`predict` on every partition
/// ([`with_spread_inference`](crate::with_spread_inference)) when the session lacks it: the same session as [`with_tabssl`]
/// builds, with the tables, functions and settings `ctx` already had.
pub fn register_all(ctx: &SessionContext, options: TabsslOptions) {
    let settings = {
        let state = ctx.state_ref();
        let mut state = state.write();
        state.config_mut().options_mut().extensions.insert(options);
        if !state
            .physical_optimizers()
            .iter()
            .any(|rule| rule.name() == spread::RULE_NAME)
        {
            // A live session's rule list cannot be edited in place: rebuild the state from itself.
            let builder = SessionStateBuilder::new_from_existing(state.clone());
            *state = spread::with_spread_inference(builder).build();
        }
        InferenceSettings::from_config(state.config().options())
    };
    ctx.register_udf(udf::embed_udf(settings.clone()));
    ctx.register_udf(udf::predict_udf(settings));
    for function in corrupt::scalar_functions() {
        ctx.register_udf(function.as_ref().clone());
    }
    for function in aggregate_functions() {
        ctx.register_udaf(function.as_ref().clone());
    }
    for (name, function) in table_functions() {
        ctx.register_udtf(name, function);
    }
}

/// A new context with the information schema enabled and tabssl registered.
pub fn new_context(options: TabsslOptions) -> SessionContext {
    new_context_with_config(SessionConfig::new(), options)
}

/// Like [`new_context`], starting from `config` (batch size, partitions, ...).
pub fn new_context_with_config(config: SessionConfig, options: TabsslOptions) -> SessionContext {
    let builder = SessionStateBuilder::new()
        .with_config(config.with_information_schema(true))
        .with_default_features();
    let ctx = SessionContext::new_with_state(spread::with_spread_inference(builder).build());
    register_all(&ctx, options);
    ctx
}

/// Runs SQL statements one after the other on `ctx`, discarding any rows (set-up SQL:
/// `CREATE EXTERNAL TABLE`, `CREATE VIEW`, `SET`, `COPY`).
///
/// # Errors
/// The first statement that fails to plan or run.
pub async fn run_statements(
    ctx: &SessionContext,
    statements: impl IntoIterator<Item = datafusion::sql::parser::Statement>,
) -> datafusion::error::Result<()> {
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await?;
        ctx.execute_logical_plan(plan).await?.collect().await?;
    }
    Ok(())
}
