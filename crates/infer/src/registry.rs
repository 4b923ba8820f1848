//! The model registry: a directory of `<name>.onnx` files with optional `<name>.json`
//! manifests.
//!
//! Model names are plain names. Anything that looks like a path is rejected before the
//! file system is touched, so SQL can never read a file outside the registry.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A directory of models.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRegistry {
    dir: PathBuf,
}

/// The files that make up one model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelFiles {
    /// The model's name.
    pub name: String,
    /// The ONNX graph.
    pub onnx: PathBuf,
    /// The JSON manifest beside it, if any.
    pub manifest: Option<PathBuf>,
}

impl ModelRegistry {
    /// A registry over `dir` (which need not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The registry directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Names of all models in the registry, sorted; empty when the directory is missing.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory exists but cannot be read.
    pub fn names(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|entry| {
                let path = entry.path();
                if path.extension()? != "onnx" || !path.is_file() {
                    return None;
                }
                let name = path.file_stem()?.to_str()?.to_string();
                validate_name(&name, &self.dir).ok().map(|()| name)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// The files of model `name`.
    ///
    /// # Errors
    /// [`Error::InvalidModelName`] for a path-like name, [`Error::UnknownModel`] (listing
    /// the available models) when there is no `<name>.onnx`.
    pub fn locate(&self, name: &str) -> Result<ModelFiles> {
        validate_name(name, &self.dir)?;
        let onnx = self.dir.join(format!("{name}.onnx"));
        if !onnx.is_file() {
            let available = self.names().unwrap_or_default();
            return Err(Error::UnknownModel {
                name: name.to_string(),
                dir: self.dir.display().to_string(),
                available: if available.is_empty() {
                    "(none)".to_string()
                } else {
                    available.join(", ")
                },
            });
        }
        let manifest = self.dir.join(format!("{name}.json"));
        Ok(ModelFiles {
            name: name.to_string(),
            onnx,
            manifest: manifest.is_file().then_some(manifest),
        })
    }
}

/// Accepts `[A-Za-z0-9_][A-Za-z0-9_.-]*` without `..`: never a path.
fn validate_name(name: &str, dir: &Path) -> Result<()> {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.contains("..")
        && name.len() <= 128;
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidModelName {
            name: name.to_string(),
            dir: dir.display().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_path_like_names_before_touching_the_disk() {
        let registry = ModelRegistry::new("/definitely/not/here");
        for name in [
            "../etc/passwd",
            "a/b",
            "/abs",
            "..",
            "a..b",
            "",
            ".hidden",
            "a\\b",
            "x y",
        ] {
            let err = registry.locate(name).expect_err("an error is expected");
            assert!(matches!(err, Error::InvalidModelName { .. }), "{name:?}: {err}");
        }
    }

    #[test]
    fn unknown_model_lists_available_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("b.onnx"), b"x").expect("write");
        std::fs::write(dir.path().join("a.onnx"), b"x").expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"x").expect("write");
        let registry = ModelRegistry::new(dir.path());
        assert_eq!(registry.names().expect("names"), ["a", "b"]);
        let err = registry.locate("c").expect_err("an error is expected").to_string();
        assert!(err.contains("available models: a, b"), "{err}");
    }

    #[test]
    fn missing_directory_has_no_models() {
        assert!(
            ModelRegistry::new("/definitely/not/here")
                .names()
                .expect("names")
                .is_empty()
        );
    }
}
