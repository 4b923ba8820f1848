//! The model manifest: what a model expects, what it returns, and how it was made.
//!
//! A manifest is `<name>.json` beside `<name>.onnx`, or the same JSON stored in the ONNX
//! file's `metadata_props` under [`METADATA_KEY`]. Every field is optional: what the
//! graph itself says (input names, types, widths) is used where the manifest is silent,
//! and where both speak they must agree.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Key of the ONNX `metadata_props` entry that may hold the manifest JSON.
pub const METADATA_KEY: &str = "tabssl.manifest";

/// A model's manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// One line on what the model is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The graph inputs in the order SQL arguments bind to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<InputSpec>>,
    /// The graph output used as the embedding or prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSpec>,
    /// What the model receives for NULL inputs (default: `propagate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nulls: Option<NullPolicy>,
    /// How raw columns are turned into the network's input (free-form, for people).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<serde_json::Value>,
    /// How the model was trained: data, method, parameters, metrics (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Value>,
}

/// How `embed`/`predict` treat NULL arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NullPolicy {
    /// A row with any NULL argument is not run and gets a NULL result.
    #[default]
    Propagate,
    /// Every row is run: a NULL number is passed as NaN and a NULL string as
    /// [`NULL_STRING`]; the graph encodes missing values itself (tabssl's own encoders).
    Encode,
}

/// The string a NULL string argument is passed as under [`NullPolicy::Encode`]: a name
/// between U+0001 control characters (ONNX Runtime strings cannot hold NUL), so no real
/// category collides with it.
pub const NULL_STRING: &str = "\u{1}tabssl:null\u{1}";

/// One graph input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The graph input's name.
    pub name: String,
    /// Element type: `float32`, `float64`, `int64`, `int32`, `string` or `bool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// For a packed `[batch, d]` input: the SQL columns, in order, that fill it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

/// The graph output that tabssl returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The graph output's name (default: the first output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Width D of the `[batch, D]` output, needed when the graph leaves it dynamic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
}

impl Manifest {
    /// Parses a manifest from JSON text; `origin` names where it came from in errors.
    ///
    /// # Errors
    /// [`Error::InvalidModel`] naming the JSON problem.
    pub fn parse(text: &str, model: &str, origin: &Path) -> Result<Self> {
        let invalid = |message: String| Error::InvalidModel {
            model: model.to_string(),
            path: origin.to_path_buf(),
            message: format!("manifest is not valid: {message}"),
        };
        serde_json::from_str::<UniqueKeys>(text).map_err(|e| invalid(e.to_string()))?;
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        check_shape(&value).map_err(|e| invalid(e.to_string()))?;
        serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
    }

    /// Reads and parses a manifest file.
    ///
    /// # Errors
    /// [`Error::Io`] when unreadable, [`Error::InvalidModel`] when malformed.
    pub fn read(path: &Path, model: &str) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse_bytes(&bytes, model, path)
    }

    /// Parses a manifest file's bytes; `path` names the file in errors.
    ///
    /// # Errors
    /// [`Error::InvalidModel`] when the bytes are not UTF-8 or the manifest is malformed.
    pub fn parse_bytes(bytes: &[u8], model: &str, path: &Path) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|e| Error::InvalidModel {
            model: model.to_string(),
            path: path.to_path_buf(),
            message: format!("manifest is not valid: it is not UTF-8 text ({e})"),
        })?;
        Self::parse(text, model, path)
    }
}

/// Any JSON value whose objects repeat no key. serde_json keeps the last of repeated keys
/// without a word, so `{"output": {"width": 8}, "output": {"width": 16}}` would quietly
/// mean something its author may not have meant.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> std::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<UniqueKeys>()?;
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key \"{key}\" appears twice in one object; keep one"
                )));
            }
        }
        Ok(self)
    }
}

/// serde reads a struct from a JSON array too (`[]` would be an empty manifest): the
/// manifest, its `output` and each of its `inputs` must be objects.
fn check_shape(value: &serde_json::Value) -> crate::Result<()> {
    let expected = "expected an object such as {\"inputs\": [{\"name\": \"x\"}], \"output\": {\"width\": 8}}";
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    };
    let serde_json::Value::Object(fields) = value else {
        return Err(crate::Error::Invalid(format!(
            "the manifest is {}; {expected}",
            kind(value)
        )));
    };
    if let Some(output) = fields.get("output").filter(|o| !o.is_object() && !o.is_null()) {
        return Err(crate::Error::Invalid(format!(
            "\"output\" is {}; expected an object {{\"name\": ..., \"width\": ...}}",
            kind(output)
        )));
    }
    if let Some(serde_json::Value::Array(inputs)) = fields.get("inputs")
        && let Some((i, input)) = inputs.iter().enumerate().find(|(_, input)| !input.is_object())
    {
        return Err(crate::Error::Invalid(format!(
            "\"inputs\"[{i}] is {}; expected an object {{\"name\": ..., \"dtype\": ...}}",
            kind(input)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_manifest() {
        let text = r#"{"description": "d",
            "inputs": [{"name": "x", "dtype": "float32", "columns": ["a", "b"]}],
            "output": {"name": "embedding", "width": 8},
            "training": {"method": "vime", "epochs": 3}}"#;
        let manifest = Manifest::parse(text, "m", Path::new("m.json")).expect("valid manifest");
        assert_eq!(manifest.output.and_then(|o| o.width), Some(8));
        assert_eq!(
            manifest.inputs.map(|i| i[0].columns.clone()),
            Some(Some(vec!["a".into(), "b".into()]))
        );
    }

    #[test]
    fn a_key_repeated_in_any_object_is_refused_by_name() {
        for (text, key) in [
            (r#"{"output": {"width": 8}, "output": {"width": 16}}"#, "output"),
            (r#"{"output": {"width": 8, "width": 16}}"#, "width"),
            (r#"{"training": {"runs": [{"seed": 1, "seed": 2}]}}"#, "seed"),
        ] {
            let err = Manifest::parse(text, "m", Path::new("m.json"))
                .expect_err(text)
                .to_string();
            assert!(
                err.contains(&format!("the key \"{key}\" appears twice")),
                "{text}: {err}"
            );
            assert!(err.contains("m.json"), "{text}: {err}");
        }
        let same_key_in_two_objects = r#"{"inputs": [{"name": "a"}, {"name": "b"}]}"#;
        Manifest::parse(same_key_in_two_objects, "m", Path::new("m.json")).expect("one key per object");
    }

    #[test]
    fn arrays_are_not_manifests() {
        for (text, expected) in [
            ("[]", "the manifest is an array"),
            ("7", "the manifest is a number"),
            (r#"{"output": [null, 8]}"#, "\"output\" is an array"),
            (r#"{"inputs": [["x", "float32"]]}"#, "\"inputs\"[0] is an array"),
        ] {
            let err = Manifest::parse(text, "m", Path::new("m.json"))
                .expect_err(text)
                .to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains("m.json"), "{text}: {err}");
        }
        assert_eq!(
            Manifest::parse("{}", "m", Path::new("m.json")).expect("an empty object is a manifest"),
            Manifest::default()
        );
    }

    #[test]
    fn rejects_unknown_fields_naming_them() {
        let err = Manifest::parse(r#"{"ouput": {}}"#, "m", Path::new("m.json")).expect_err("an error is expected");
        assert!(err.to_string().contains("unknown field `ouput`"), "{err}");
    }

    /// JSON values built from the manifest's own keys, nested a few levels.
    fn json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let keys = prop::sample::select(vec![
            "description",
            "inputs",
            "output",
            "nulls",
            "name",
            "dtype",
            "columns",
            "width",
            "training",
            "x",
        ]);
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            prop::sample::select(vec!["float32", "encode", "propagate", "", "x"]).prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..5).prop_map(|fields| {
                    serde_json::Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    proptest::proptest! {
        /// Any text, and any JSON made of the manifest's words, parses or is refused with
        /// a message naming the file; a parsed manifest's parts are what the JSON said.
        #[test]
        fn any_json_parses_or_is_refused(value in json(), text in ".{0,64}") {
            let _ = Manifest::parse(&text, "m", Path::new("m.json"));
            match Manifest::parse(&value.to_string(), "m", Path::new("m.json")) {
                Ok(manifest) => {
                    proptest::prop_assert!(value.is_object());
                    let width = value.get("output").and_then(|o| o.get("width")).and_then(serde_json::Value::as_u64);
                    proptest::prop_assert_eq!(manifest.output.and_then(|o| o.width).map(|w| w as u64), width);
                }
                Err(error) => proptest::prop_assert!(error.to_string().contains("m.json")),
            }
        }
    }
}
