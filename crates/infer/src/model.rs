//! A loaded model (graph spec, manifest, session pool) and the process-wide cache of them.
//!
//! Models are cached per (file, provider, device, threads): every partition and every query
//! of the process shares one [`LoadedModel`]. Replacing the `.onnx` or `.json` file on disk
//! is noticed by the next query planned, which loads the new version; queries already
//! planned keep the version they were planned with (they hold it), and a replacement that
//! does not load leaves the last good version serving.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::SystemTime;

use arrow::array::ArrayRef;
use arrow::buffer::NullBuffer;

use super::manifest::{METADATA_KEY, Manifest, NullPolicy};
use super::registry::{ModelFiles, ModelRegistry};
use super::runtime::{ActiveProvider, runtime};
use super::session::{SessionConfig, SessionPool};
use super::spec::{Arguments, InputLayout, ModelSpec};
use super::tensors::{build_inputs, compact, output_values, row_validity};
use crate::options::InferenceSettings;
use crate::{Error, Result};

/// Where a model's manifest came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestSource {
    /// `<name>.json` beside the model.
    File,
    /// The ONNX file's `metadata_props`.
    Metadata,
    /// No manifest: everything comes from the graph.
    None,
}

impl ManifestSource {
    /// Lowercase name for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Metadata => "onnx metadata",
            Self::None => "none",
        }
    }
}

/// A model ready to run.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model's files.
    pub files: ModelFiles,
    /// The manifest, if any.
    pub manifest: Option<Manifest>,
    /// Where the manifest came from.
    pub manifest_source: ManifestSource,
    /// What the model takes and returns.
    pub spec: ModelSpec,
    /// SHA-256 of the model's content, in hex: see [`content_hash`].
    pub content_hash: String,
    pool: SessionPool,
    /// `tabssl.max_tensor_elements` it was loaded under.
    max_tensor_elements: usize,
}

/// Size, modification time and (on Unix) inode: enough to notice a replaced file, also one
/// renamed into place with the same size and time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileStamp {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    inode: Option<u64>,
}

impl FileStamp {
    fn of(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        #[cfg(unix)]
        let inode = Some(std::os::unix::fs::MetadataExt::ino(&meta));
        #[cfg(not(unix))]
        let inode = None;
        Ok(Self {
            path: canonical(path),
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

/// `path` with symbolic links and `..` resolved (as it is when it cannot be): the cache key.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The stamps of a model's files as they are on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamps {
    onnx: FileStamp,
    manifest: Option<FileStamp>,
}

impl Stamps {
    fn of(files: &ModelFiles) -> Result<Self> {
        Ok(Self {
            onnx: FileStamp::of(&files.onnx)?,
            manifest: files.manifest.as_deref().map(FileStamp::of).transpose()?,
        })
    }
}

/// One model file under one set of settings: the version queries get, and a replacement
/// on disk that did not load.
#[derive(Default)]
struct Slot {
    /// The last version that loaded, and the files it was loaded from.
    current: Option<(Stamps, Arc<LoadedModel>)>,
    /// Files that failed to load while `current` keeps serving, and why.
    refused: Option<(Stamps, String)>,
    /// The version `current` replaced, kept for plans pinned to it (a coordinator not yet
    /// rolled out, a query planned just before the replacement).
    previous: Option<Arc<LoadedModel>>,
}

/// A model file under one set of settings: its `.onnx` path and the settings.
type SlotKey = (PathBuf, InferenceSettings);

/// Loaded models: every partition and query shares one.
static CACHE: LazyLock<Mutex<HashMap<SlotKey, Slot>>> = LazyLock::new(Mutex::default);

/// One lock per model file and settings, held while that model loads.
static LOADERS: LazyLock<Mutex<HashMap<SlotKey, Arc<Mutex<()>>>>> = LazyLock::new(Mutex::default);

/// Returns model `name` from the registry in `settings`, loading it on first use and again
/// when its files change on disk.
///
/// A changed model that does not load (a truncated or half-written file, not ONNX, a
/// manifest that disagrees with the graph) is refused while the version loaded before it
/// keeps serving: see [`load_model_status`] for the reason. A model without such a version
/// fails with the load's error.
///
/// # Errors
/// Unknown or path-like names (a deleted model among them), unloadable files, manifests
/// that disagree with the graph, unavailable providers.
pub fn load_model(settings: &InferenceSettings, name: &str) -> Result<Arc<LoadedModel>> {
    load_model_status(settings, name).map(|(model, _)| model)
}

/// [`load_model`], and why the files now on disk were refused when the model returned is
/// the last version that loaded rather than those files.
///
/// # Errors
/// As [`load_model`].
pub fn load_model_status(settings: &InferenceSettings, name: &str) -> Result<(Arc<LoadedModel>, Option<String>)> {
    settings.check()?;
    let files = ModelRegistry::new(&settings.models_dir).locate(name)?;
    let stamps = Stamps::of(&files)?;
    let key = (stamps.onnx.path.clone(), settings.clone());
    let lock = || CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let cached = || {
        let cache = lock();
        let slot = cache.get(&key)?;
        match (&slot.current, &slot.refused) {
            (Some((loaded, model)), _) if *loaded == stamps => Some((Arc::clone(model), None)),
            (Some((_, model)), Some((refused, why))) if *refused == stamps => {
                Some((Arc::clone(model), Some(why.clone())))
            }
            _ => None,
        }
    };
    if let Some(found) = cached() {
        return Ok(found);
    }
    // One load per model file at a time: queries planned meanwhile wait for it instead of
    // loading the same version again. Loaded without the cache's lock, so other models, and
    // this one's current version in running queries, keep serving.
    let loader = Arc::clone(
        LOADERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default(),
    );
    let _loading = loader.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = cached() {
        return Ok(found);
    }
    let opened = LoadedModel::open(files.clone(), settings);
    let mut cache = lock();
    let slot = cache.entry(key).or_default();
    match opened {
        Ok(model) => {
            let model = Arc::new(model);
            // Installed only while the files are still those it was read from, so a slow
            // load never replaces a newer version.
            if Stamps::of(&files).is_ok_and(|now| now == stamps) {
                if let Some((_, old)) = &slot.current {
                    log::info!(
                        "model '{name}': loaded sha256:{} from {} (was sha256:{})",
                        model.content_hash,
                        files.onnx.display(),
                        old.content_hash
                    );
                }
                let replaced = slot.current.replace((stamps, Arc::clone(&model)));
                if let Some((_, old)) = replaced.filter(|(_, old)| old.content_hash != model.content_hash) {
                    slot.previous = Some(old);
                }
                slot.refused = None;
            }
            Ok((model, None))
        }
        Err(error) => match &slot.current {
            Some((_, model)) => {
                let why = error.to_string();
                log::warn!(
                    "model '{name}': the files now in {} are refused ({why}); still serving sha256:{}",
                    files.onnx.display(),
                    model.content_hash
                );
                let model = Arc::clone(model);
                slot.refused = Some((stamps, why.clone()));
                Ok((model, Some(why)))
            }
            None => Err(error),
        },
    }
}

/// The version that `current` (as [`load_model`] returned it) replaced, when its content
/// hash is `sha256` and it is still held in memory: so a plan pinned to it (from a
/// coordinator whose registry is not yet rolled out) still runs.
pub fn replaced_version(settings: &InferenceSettings, current: &LoadedModel, sha256: &str) -> Option<Arc<LoadedModel>> {
    let key = (canonical(&current.files.onnx), settings.clone());
    let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    cache
        .get(&key)?
        .previous
        .as_ref()
        .filter(|previous| previous.content_hash == sha256)
        .map(Arc::clone)
}

/// SHA-256, in lowercase hex, of the `.onnx` file's bytes followed by the manifest's bytes
/// (nothing when there is no manifest): what a distributed worker compares with the
/// coordinator's before it runs the model.
///
/// # Errors
/// [`Error::Io`] when a file cannot be read.
pub fn content_hash(files: &ModelFiles) -> Result<String> {
    Ok(ModelBytes::read(files)?.content_hash())
}

/// A model's files, each read once: the content hash, the manifest and every session come
/// from these bytes, so a file replaced while the model loads cannot mix two versions.
struct ModelBytes {
    onnx: Arc<[u8]>,
    manifest: Option<Vec<u8>>,
}

impl ModelBytes {
    fn read(files: &ModelFiles) -> Result<Self> {
        let read = |path: &Path| std::fs::read(path).map_err(|e| Error::io(path, e));
        Ok(Self {
            onnx: read(&files.onnx)?.into(),
            manifest: files.manifest.as_deref().map(read).transpose()?,
        })
    }

    fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(&self.onnx);
        if let Some(manifest) = &self.manifest {
            hasher.update(manifest);
        }
        hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl LoadedModel {
    /// The columns `embed`/`predict` take for this model, in argument order: the packed
    /// input's manifest columns, or the per-column input names.
    ///
    /// # Errors
    /// When a packed input's manifest does not name its columns (`inputs[0].columns`).
    pub fn argument_columns(&self) -> Result<Vec<String>> {
        match &self.spec.layout {
            InputLayout::Packed {
                columns: Some(columns), ..
            } => Ok(columns.clone()),
            InputLayout::Packed { columns: None, .. } => Err(Error::Invalid(format!(
                "model '{}' has a packed input whose columns its manifest does not name \
                 (inputs[0].columns)",
                self.files.name
            ))),
            InputLayout::PerColumn(inputs) => Ok(inputs.iter().map(|i| i.name.clone()).collect()),
        }
    }

    fn open(files: ModelFiles, settings: &InferenceSettings) -> Result<Self> {
        let bytes = ModelBytes::read(&files)?;
        let content_hash = bytes.content_hash();
        let runtime = runtime(settings.provider)?;
        let config = SessionConfig {
            model: files.name.clone(),
            path: files.onnx.clone(),
            bytes: Arc::clone(&bytes.onnx),
            provider: settings.provider,
            device_id: settings.device_id,
            intra_threads: settings.intra_threads,
            max_sessions: settings.max_sessions,
        };
        let (pool, first) = SessionPool::open(runtime, config)?;
        let invalid = |message: String| Error::InvalidModel {
            model: files.name.clone(),
            path: files.onnx.clone(),
            message,
        };
        let (manifest, manifest_source) = match (&files.manifest, &bytes.manifest) {
            (Some(path), Some(text)) => (
                Some(Manifest::parse_bytes(text, &files.name, path)?),
                ManifestSource::File,
            ),
            _ => match first.metadata().ok().and_then(|m| m.custom(METADATA_KEY)) {
                Some(text) => (
                    Some(Manifest::parse(&text, &files.name, &files.onnx)?),
                    ManifestSource::Metadata,
                ),
                None => (None, ManifestSource::None),
            },
        };
        let spec = ModelSpec::from_graph(first.inputs(), first.outputs(), manifest.as_ref()).map_err(|m| {
            let origin = match manifest_source {
                ManifestSource::File => " (checked against its manifest)",
                ManifestSource::Metadata => " (checked against the manifest in its metadata)",
                ManifestSource::None => "",
            };
            invalid(format!("{m}{origin}"))
        })?;
        spec.check_size(settings.max_tensor_elements)
            .map_err(|message| Error::LimitExceeded {
                limit: "tabssl.max_tensor_elements",
                message: format!("model {:?} ({}): {message}", files.name, files.onnx.display()),
            })?;
        pool.give(first);
        Ok(Self {
            files,
            manifest,
            manifest_source,
            spec,
            content_hash,
            pool,
            max_tensor_elements: settings.max_tensor_elements,
        })
    }

    /// The provider the model really runs on.
    pub fn active_provider(&self) -> ActiveProvider {
        self.pool.active_provider()
    }

    /// Runs the model over one batch of SQL arguments (the model name already removed).
    ///
    /// Returns the row-major output values of the valid rows and the batch's validity
    /// (`None` when every row is valid).
    ///
    /// # Errors
    /// [`Error::Inference`] naming the model and the failing rows.
    pub fn infer(
        &self,
        arguments: Arguments,
        args: &[ArrayRef],
        batch_rows: usize,
    ) -> Result<(Vec<f32>, Option<NullBuffer>)> {
        let validity = match self.spec.nulls {
            NullPolicy::Propagate => row_validity(args),
            NullPolicy::Encode => None,
        };
        let compacted;
        let args = match &validity {
            Some(validity) => {
                compacted = compact(args, validity)?;
                compacted.as_slice()
            }
            None => args,
        };
        let rows = args.first().map_or(0, |a| a.len());
        let result_values = rows
            .checked_mul(self.spec.width)
            .filter(|&n| n <= self.max_tensor_elements);
        let Some(result_values) = result_values else {
            return Err(Error::Inference {
                model: self.files.name.clone(),
                first_row: 0,
                end_row: batch_rows,
                batch_rows,
                message: format!(
                    "{rows} rows × width {} is more than tabssl.max_tensor_elements = {} values in one batch's \
                     result; lower datafusion.execution.batch_size or raise tabssl.max_tensor_elements",
                    self.spec.width, self.max_tensor_elements
                ),
            });
        };
        let mut values = Vec::with_capacity(result_values);
        let chunk = self.spec.rows_per_call(self.max_tensor_elements);
        let mut offset = 0;
        while offset < rows {
            let n = chunk.min(rows - offset);
            let padded = self.spec.fixed_batch.unwrap_or(n);
            let failed = |error: Error| {
                let original = |i: usize| validity.as_ref().map_or(Some(i), |v| v.valid_indices().nth(i));
                Error::Inference {
                    model: self.files.name.clone(),
                    first_row: original(offset).unwrap_or(offset),
                    end_row: original(offset + n - 1).map_or(offset + n, |last| last + 1),
                    batch_rows,
                    message: error.to_string(),
                }
            };
            self.pool
                .with_session(|pooled| {
                    let inputs = build_inputs(&self.spec, arguments, args, offset, n, padded, &mut pooled.scratch)?;
                    let outputs = pooled.session.run(inputs)?;
                    let output = outputs
                        .get(&self.spec.output)
                        .ok_or_else(|| Error::Invalid(format!("the run returned no output '{}'", self.spec.output)))?;
                    output_values(output, &self.spec, n, &mut values)
                })?
                .map_err(failed)?;
            offset += n;
        }
        Ok((values, validity))
    }
}
