//! File-system confinement: the directories whose files SQL from untrusted clients may read.
//!
//! A path is resolved the way the operating system would open it (relative to the working
//! directory, `..` and symbolic links followed) and accepted only when the result lies
//! under one of the roots, themselves resolved once at start. A path that does not exist
//! is judged by its lexical form, so the answer never tells whether a file outside the
//! roots exists.

use std::path::{Component, Path, PathBuf};

use crate::setting::Setting;
use crate::{Error, Result};

/// Which files SQL may read: every file (the operator's own SQL, the CLI), or only those
/// under a set of root directories (clients of `tabssl serve`; no root means no file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum FileAccess {
    /// Any file the process can read.
    #[default]
    Unrestricted,
    /// Only files under these directories (resolved, absolute).
    Within(Vec<PathBuf>),
}

impl FileAccess {
    /// Confinement to `roots`, each resolved now (it must exist and be a directory).
    ///
    /// # Errors
    /// A root that does not exist or is not a directory.
    pub fn within<P: AsRef<Path>>(roots: impl IntoIterator<Item = P>) -> Result<Self> {
        let mut resolved = Vec::new();
        for root in roots {
            let root = root.as_ref();
            let canonical = root
                .canonicalize()
                .map_err(|e| Error::invalid(format!("data root {}: {e}", root.display())))?;
            if !canonical.is_dir() {
                return Err(Error::invalid(format!(
                    "data root {}: not a directory (a data root is a directory whose files clients may read)",
                    root.display()
                )));
            }
            resolved.push(canonical);
        }
        Ok(Self::Within(resolved))
    }

    /// The path to open for `path`: the resolved path when it lies under a root.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the path and the roots when it lies outside them, or when
    /// it does not exist (without telling which, for a path outside the roots).
    pub fn resolve(&self, path: &str) -> Result<PathBuf> {
        let Self::Within(roots) = self else {
            return Ok(PathBuf::from(path));
        };
        let inside = |p: &Path| roots.iter().any(|root| p.starts_with(root));
        match Path::new(path).canonicalize() {
            Ok(resolved) if inside(&resolved) => Ok(resolved),
            Ok(_) => Err(self.outside(path)),
            Err(_) if lexical_absolute(path).is_some_and(|p| inside(&p)) => Err(Error::invalid(format!(
                "file {path:?} does not exist under the data roots"
            ))),
            Err(_) => Err(self.outside(path)),
        }
    }

    fn outside(&self, path: &str) -> Error {
        let roots = match self {
            Self::Within(roots) if !roots.is_empty() => roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            _ => format!(
                "none: this server gives clients no file access (give it data roots with {})",
                Setting::DataRoot
            ),
        };
        Error::invalid(format!(
            "file {path:?} is outside the data roots; clients may read files only under: {roots}"
        ))
    }
}

/// `path` made absolute against the working directory with `.` and `..` applied
/// lexically (symbolic links are not followed: the path does not exist).
fn lexical_absolute(path: &str) -> Option<PathBuf> {
    let joined = std::env::current_dir().ok()?.join(path);
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_under_a_root_resolve() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("root");
        std::fs::write(root.join("m.parquet"), b"x").expect("file");
        std::fs::write(dir.path().join("secret"), b"x").expect("file");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).expect("symlink");
        let access = FileAccess::within([&root]).expect("root");
        let s = |p: PathBuf| p.display().to_string();

        assert!(access.resolve(&s(root.join("m.parquet"))).is_ok());
        for outside in [
            s(dir.path().join("secret")),
            s(root.join("../secret")),
            s(root.join("link")),
            "/etc/passwd".to_string(),
            s(dir.path().join("missing")),
        ] {
            let error = access.resolve(&outside).expect_err(&outside);
            assert!(
                error.to_string().contains("outside the data roots"),
                "{outside}: {error}"
            );
        }
        let missing = access.resolve(&s(root.join("missing"))).expect_err("missing");
        assert!(missing.to_string().contains("does not exist"), "{missing}");

        let none = FileAccess::Within(Vec::new()).resolve(&s(root.join("m.parquet")));
        let none = none.expect_err("no roots").to_string();
        assert!(none.contains("give it data roots with file_access"), "{none}");
        assert!(
            FileAccess::within([root.join("m.parquet")]).is_err(),
            "a file is not a root"
        );
    }
}
