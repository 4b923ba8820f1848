//! Exports a trained encoder to ONNX with its preprocessing inside the graph, so the model
//! takes raw SQL columns: one `[N]` input per feature (float32 numbers, strings) and one
//! `embedding` output `[N, dim]`.
//!
//! Per numeric column: optional `Log(x + 1)`, standardise, then a value that is NaN or
//! infinite becomes 0 with its missing indicator set. Per categorical column:
//! `ai.onnx.ml.LabelEncoder` maps the string to its slot (the NULL marker to the missing
//! slot, unseen values to the "other" slot or to an all-zero row) and `Gather` on an
//! identity matrix makes the one-hot block. The blocks are concatenated in training order
//! and run through the encoder's layers.

use std::io::Write;
use std::path::Path;

use crate::infer::manifest::{InputSpec, Manifest, NULL_STRING, NullPolicy, OutputSpec};
use crate::onnx::graph::ML_DOMAIN;
use crate::onnx::{Attribute, Dim, ElemType, GraphBuilder};
use tabssl_functions::atomic::AtomicFile;

use super::preprocess::{CategoricalEncoding, FeatureEncoding, NumericEncoding};
use super::trainer::Pretrained;
use crate::Error;

/// Name of the graph output.
pub const OUTPUT_NAME: &str = "embedding";

/// The manifest of an exported encoder: inputs, output, NULL policy, preprocessing, and
/// `training` (method, parameters, data, losses, command) as given.
///
/// # Errors
/// JSON serialisation errors.
pub fn manifest(model: &Pretrained, description: String, training: serde_json::Value) -> crate::Result<Manifest> {
    let inputs = model
        .preprocessor
        .features
        .iter()
        .map(|f| InputSpec {
            name: f.name().to_string(),
            dtype: Some(
                match f {
                    FeatureEncoding::Numeric(_) => "float32",
                    FeatureEncoding::Categorical(_) => "string",
                }
                .to_string(),
            ),
            columns: None,
        })
        .collect();
    Ok(Manifest {
        description: Some(description),
        inputs: Some(inputs),
        output: Some(OutputSpec {
            name: Some(OUTPUT_NAME.to_string()),
            width: Some(model.embedding_width()),
        }),
        nulls: Some(NullPolicy::Encode),
        preprocessing: Some(
            serde_json::to_value(&model.preprocessor).map_err(|e| Error::json("encoding the preprocessing", e))?,
        ),
        training: Some(training),
    })
}

/// The serialized ONNX model of `model`. The manifest stays in its own `.json` file (the
/// registry reads it there), so `tabssl evaluate` can add downstream metrics to it.
///
/// # Errors
/// candle errors reading the weights, JSON errors.
pub fn onnx_bytes(model: &Pretrained, manifest: &Manifest) -> crate::Result<Vec<u8>> {
    let mut g = GraphBuilder::new();
    let batch = || vec![Dim::Named("N".into())];
    let to_column = g.constant_i64("shape_column", vec![2], vec![-1, 1]);
    let mut blocks = Vec::new();
    for feature in &model.preprocessor.features {
        match feature {
            FeatureEncoding::Numeric(n) => {
                let x = g.input(&n.name, ElemType::Float, batch());
                numeric_block(&mut g, n, &x, &to_column, &mut blocks);
            }
            FeatureEncoding::Categorical(c) => {
                let x = g.input(&c.name, ElemType::String, batch());
                blocks.push(categorical_block(&mut g, c, &x));
            }
        }
    }
    let refs: Vec<&str> = blocks.iter().map(String::as_str).collect();
    let mut h = g.op("Concat", &refs, vec![Attribute::Int("axis", 1)]);
    let layers = &model.encoder.layers;
    let taps = model.config.feature_taps();
    let mut features = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let (weight, bias) = layer.to_vecs()?;
        #[allow(clippy::cast_possible_wrap)]
        let w = g.constant_f32("weight", vec![layer.inputs() as i64, layer.outputs() as i64], weight);
        #[allow(clippy::cast_possible_wrap)]
        let b = g.constant_f32("bias", vec![layer.outputs() as i64], bias);
        let product = g.op("MatMul", &[&h, &w], vec![]);
        h = g.op("Add", &[&product, &b], vec![]);
        if i + 1 < layers.len() {
            h = g.op("Relu", &[&h], vec![]);
        }
        if taps.contains(&i) {
            features.push(h.clone());
        }
    }
    if features.len() > 1 {
        let refs: Vec<&str> = features.iter().map(String::as_str).collect();
        h = g.op("Concat", &refs, vec![Attribute::Int("axis", 1)]);
    } else if let Some(only) = features.pop() {
        h = only;
    }
    g.rename(&h, OUTPUT_NAME);
    #[allow(clippy::cast_possible_wrap)]
    g.output(
        OUTPUT_NAME,
        ElemType::Float,
        vec![Dim::Named("N".into()), Dim::Fixed(model.embedding_width() as i64)],
    );
    let description = manifest.description.clone().unwrap_or_default();
    Ok(
        g.into_model("tabssl_encoder", vec![("description".to_string(), description)])
            .encode(),
    )
}

/// Writes `<path>` (ONNX) and `<path without extension>.json` (the manifest) as a pair:
/// both paths are checked and both files written and synced under temporary names before
/// either is renamed into place, the manifest first (a registry lists `<name>.onnx`, so a
/// manifest alone is never seen as a model).
///
/// # Errors
/// [`Error::Io`] or [`Error::Invalid`] naming the file: a path that does not end in `.onnx`, an output or
/// manifest path that is a directory, a missing directory, a failed write.
pub fn write_model(model: &Pretrained, manifest: &Manifest, path: &Path) -> crate::Result<()> {
    let manifest_path = manifest_path(path)?;
    let onnx = onnx_bytes(model, manifest)?;
    let json = serde_json::to_string_pretty(manifest).map_err(|e| Error::json("writing the manifest", e))? + "\n";
    let staged_model = stage(path, &onnx)?;
    let staged_manifest = stage(&manifest_path, json.as_bytes())?;
    staged_manifest.commit()?;
    staged_model.commit().map_err(|e| match e {
        Error::Io { path, source } => Error::Io {
            source: std::io::Error::new(
                source.kind(),
                format!(
                    "{source} (the manifest {} was already replaced: write the model again)",
                    manifest_path.display()
                ),
            ),
            path,
        },
        other => other,
    })
}

/// The manifest beside the model `path`, which must name an `.onnx` file.
///
/// # Errors
/// [`Error::Invalid`] when `path` does not end in `.onnx`, or either path is a directory.
pub fn manifest_path(path: &Path) -> crate::Result<std::path::PathBuf> {
    if path.extension().is_none_or(|e| !e.eq_ignore_ascii_case("onnx")) {
        return Err(Error::Invalid(format!(
            "{}: the model file must end in .onnx (its manifest is written beside it as <name>.json)",
            path.display()
        )));
    }
    let manifest = path.with_extension("json");
    for file in [path, manifest.as_path()] {
        if file.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: is a directory; expected the path of a file",
                file.display()
            )));
        }
    }
    Ok(manifest)
}

fn stage(path: &Path, bytes: &[u8]) -> crate::Result<AtomicFile> {
    let file = AtomicFile::create(path)?;
    let mut handle = file.open()?;
    handle.write_all(bytes).map_err(|e| crate::Error::io(path, e))?;
    Ok(file)
}

/// `[N, 1]` standardised value, and `[N, 1]` missing indicator when the column has one.
fn numeric_block(g: &mut GraphBuilder, n: &NumericEncoding, x: &str, to_column: &str, blocks: &mut Vec<String>) {
    let mut v = x.to_string();
    if n.log1p {
        let one = g.constant_f32("one", vec![], vec![1.0]);
        let shifted = g.op("Add", &[&v, &one], vec![]);
        v = g.op("Log", &[&shifted], vec![]);
    }
    #[allow(clippy::cast_possible_truncation)]
    let (mean, std) = (n.mean as f32, n.std as f32);
    // Subtract and divide in f64 at training, in f32 here: the difference stays below
    // f32 rounding of the result, far inside the 1e-5 export tolerance.
    let mean = g.constant_f32("mean", vec![], vec![mean]);
    let std = g.constant_f32("std", vec![], vec![std]);
    let centred = g.op("Sub", &[&v, &mean], vec![]);
    let z = g.op("Div", &[&centred, &std], vec![]);
    let is_nan = g.op("IsNaN", &[&z], vec![]);
    let is_inf = g.op("IsInf", &[&z], vec![]);
    let missing = g.op("Or", &[&is_nan, &is_inf], vec![]);
    let zero = g.constant_f32("zero", vec![], vec![0.0]);
    let value = g.op("Where", &[&missing, &zero, &z], vec![]);
    blocks.push(g.op("Reshape", &[&value, to_column], vec![]));
    if n.missing_indicator {
        let indicator = g.op("Cast", &[&missing], vec![Attribute::Int("to", ElemType::Float as i64)]);
        blocks.push(g.op("Reshape", &[&indicator, to_column], vec![]));
    }
}

/// `[N, slots]` one-hot block.
fn categorical_block(g: &mut GraphBuilder, c: &CategoricalEncoding, x: &str) -> String {
    let slots = c.slots();
    // Row `slots` of the lookup table is all zeros: unseen values without an "other" slot
    // and NULLs without a "missing" slot.
    let zero_row = slots;
    let mut keys = c.vocabulary.clone();
    let mut values: Vec<i64> = (0..keys.len()).map(|i| i64::try_from(i).unwrap_or(i64::MAX)).collect();
    keys.push(NULL_STRING.to_string());
    values.push(index(c.missing_index().unwrap_or(zero_row)));
    let default = index(c.other_index().unwrap_or(zero_row));
    let slot = g.op_in(
        ML_DOMAIN,
        "LabelEncoder",
        &[x],
        vec![
            Attribute::Strings("keys_strings", keys),
            Attribute::Ints("values_int64s", values),
            Attribute::Int("default_int64", default),
        ],
    );
    let mut table = vec![0.0_f32; (slots + 1) * slots];
    for i in 0..slots {
        table[i * slots + i] = 1.0;
    }
    let table = g.constant_f32("onehot", vec![index(slots + 1), index(slots)], table);
    g.op("Gather", &[&table, &slot], vec![Attribute::Int("axis", 0)])
}

fn index(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}
