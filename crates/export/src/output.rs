//! What an export writes: which derived columns ([`Outputs`]), in which file format
//! ([`ExportFormat`]) and with which compression ([`ExportCompression`]).

use std::fmt;
use std::str::FromStr;

use datafusion::parquet::basic::{Compression, GzipLevel, ZstdLevel};

use tabssl_functions::{Error, Result};

/// The columns derived from each feature that an export writes next to the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outputs {
    /// `<col>_tilde`: the corrupted value.
    pub tilde: bool,
    /// `<col>_mask`: the Bernoulli(p) draw (true where the cell was corrupted).
    pub mask: bool,
    /// `<col>_changed`: VIME's label `x <> x_tilde` (false where a swap drew an equal value).
    pub changed: bool,
}

impl Default for Outputs {
    fn default() -> Self {
        Self {
            tilde: true,
            mask: true,
            changed: true,
        }
    }
}

impl Outputs {
    /// True when the corrupted value must be computed (written, or compared for `_changed`).
    #[must_use]
    pub fn needs_corrupted(self) -> bool {
        self.tilde || self.changed
    }
}

impl FromStr for Outputs {
    type Err = Error;

    /// Parses a comma-separated subset of `tilde,mask,changed`.
    fn from_str(text: &str) -> Result<Self> {
        let mut outputs = Self {
            tilde: false,
            mask: false,
            changed: false,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "tilde" => outputs.tilde = true,
                "mask" => outputs.mask = true,
                "changed" => outputs.changed = true,
                other => {
                    return Err(Error::invalid(format!(
                        "outputs: unknown column kind {other:?}; expected a comma-separated subset of tilde,mask,changed"
                    )));
                }
            }
        }
        if outputs
            == (Self {
                tilde: false,
                mask: false,
                changed: false,
            })
        {
            return Err(Error::invalid(
                "outputs must name at least one of tilde, mask, changed (the originals are always written)",
            ));
        }
        Ok(outputs)
    }
}

impl fmt::Display for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [(self.tilde, "tilde"), (self.mask, "mask"), (self.changed, "changed")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        f.write_str(&names.join(","))
    }
}

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// Apache Parquet: fixed 131,072-row row groups, statistics on the originals only.
    #[default]
    Parquet,
    /// The Arrow IPC file format (Feather v2), in 8,192-row record batches: what training
    /// loaders can memory-map and read without decoding.
    Arrow,
}

impl ExportFormat {
    /// The name used in SQL (`STORED AS ...`).
    #[must_use]
    pub fn sql_name(self) -> &'static str {
        match self {
            Self::Parquet => "PARQUET",
            Self::Arrow => "ARROW",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "parquet" => Ok(Self::Parquet),
            "arrow" | "ipc" | "feather" => Ok(Self::Arrow),
            other => Err(Error::invalid(format!(
                "format: expected parquet or arrow, got {other:?}"
            ))),
        }
    }
}

/// The compression codec of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportCompression {
    /// No compression.
    None,
    /// Snappy (Parquet only; Parquet's default).
    Snappy,
    /// LZ4 (`LZ4_RAW` in Parquet, `LZ4_FRAME` in Arrow IPC).
    Lz4,
    /// Zstandard at a level from 1 to 22 (Arrow IPC takes the default level only).
    Zstd(Option<i32>),
    /// Gzip at a level from 0 to 9 (Parquet only).
    Gzip(Option<u32>),
}

impl ExportCompression {
    /// The codec used when none is given: Snappy for Parquet, none for Arrow (so loaders
    /// can memory-map the file).
    #[must_use]
    pub fn default_for(format: ExportFormat) -> Self {
        match format {
            ExportFormat::Parquet => Self::Snappy,
            ExportFormat::Arrow => Self::None,
        }
    }

    /// The Parquet codec.
    ///
    /// # Errors
    /// A level out of range.
    pub fn parquet(self) -> Result<Compression> {
        Ok(match self {
            Self::None => Compression::UNCOMPRESSED,
            Self::Snappy => Compression::SNAPPY,
            Self::Lz4 => Compression::LZ4_RAW,
            Self::Zstd(level) => Compression::ZSTD(
                ZstdLevel::try_new(level.unwrap_or(3))
                    .map_err(|_| Error::invalid(format!("compression: zstd levels are 1 to 22, got {level:?}")))?,
            ),
            Self::Gzip(level) => Compression::GZIP(
                GzipLevel::try_new(level.unwrap_or(6))
                    .map_err(|_| Error::invalid(format!("compression: gzip levels are 0 to 9, got {level:?}")))?,
            ),
        })
    }

    /// The Arrow IPC codec (`None` for no compression).
    ///
    /// # Errors
    /// A codec Arrow IPC does not have (snappy, gzip) or a zstd level.
    pub fn arrow(self) -> Result<Option<arrow::ipc::CompressionType>> {
        match self {
            Self::None => Ok(None),
            Self::Lz4 => Ok(Some(arrow::ipc::CompressionType::LZ4_FRAME)),
            Self::Zstd(None) => Ok(Some(arrow::ipc::CompressionType::ZSTD)),
            Self::Zstd(Some(_)) => Err(Error::invalid(
                "compression: Arrow IPC writes zstd at its default level; give zstd without a level",
            )),
            Self::Snappy | Self::Gzip(_) => Err(Error::invalid(format!(
                "compression: the Arrow format supports none, lz4 and zstd, not {self}"
            ))),
        }
    }

    /// The name of this codec in DataFusion's Parquet option `format.compression`.
    #[must_use]
    pub fn datafusion_name(self) -> String {
        match self {
            Self::None => "uncompressed".into(),
            Self::Snappy => "snappy".into(),
            Self::Lz4 => "lz4_raw".into(),
            Self::Zstd(level) => format!("zstd({})", level.unwrap_or(3)),
            Self::Gzip(level) => format!("gzip({})", level.unwrap_or(6)),
        }
    }

    /// Checks that `format` supports this codec and level.
    ///
    /// # Errors
    /// As [`Self::parquet`] or [`Self::arrow`].
    pub fn check(self, format: ExportFormat) -> Result<()> {
        match format {
            ExportFormat::Parquet => self.parquet().map(drop),
            ExportFormat::Arrow => self.arrow().map(drop),
        }
    }
}

impl FromStr for ExportCompression {
    type Err = Error;

    /// Parses `none`, `snappy`, `lz4`, `zstd`, `zstd(N)`, `gzip` or `gzip(N)`.
    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim().to_ascii_lowercase();
        let (name, level) = match text.split_once('(') {
            Some((name, rest)) => {
                let level = rest.strip_suffix(')').ok_or_else(|| {
                    Error::invalid(format!("compression: expected NAME or NAME(LEVEL), got {text:?}"))
                })?;
                (name.to_string(), Some(level.to_string()))
            }
            None => (text.clone(), None),
        };
        let bad_level = |level: &str| Error::invalid(format!("compression: {level:?} is not a level for {name}"));
        match (name.as_str(), level) {
            ("none" | "uncompressed", None) => Ok(Self::None),
            ("snappy", None) => Ok(Self::Snappy),
            ("lz4", None) => Ok(Self::Lz4),
            ("zstd", level) => Ok(Self::Zstd(
                level.map(|l| l.parse().map_err(|_| bad_level(&l))).transpose()?,
            )),
            ("gzip", level) => Ok(Self::Gzip(
                level.map(|l| l.parse().map_err(|_| bad_level(&l))).transpose()?,
            )),
            (known @ ("none" | "uncompressed" | "snappy" | "lz4"), Some(_)) => {
                Err(Error::invalid(format!("compression: {known} takes no level")))
            }
            _ => Err(Error::invalid(format!(
                "compression: expected none, snappy, lz4, zstd, zstd(LEVEL), gzip or gzip(LEVEL), got {text:?}"
            ))),
        }
    }
}

impl fmt::Display for ExportCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Snappy => f.write_str("snappy"),
            Self::Lz4 => f.write_str("lz4"),
            Self::Zstd(None) => f.write_str("zstd"),
            Self::Zstd(Some(level)) => write!(f, "zstd({level})"),
            Self::Gzip(None) => f.write_str("gzip"),
            Self::Gzip(Some(level)) => write!(f, "gzip({level})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_outputs() -> Result<()> {
        assert_eq!("tilde,mask,changed".parse::<Outputs>()?, Outputs::default());
        let tilde: Outputs = "tilde".parse()?;
        assert_eq!(
            tilde,
            Outputs {
                tilde: true,
                mask: false,
                changed: false
            }
        );
        assert_eq!(" changed , mask ".parse::<Outputs>()?.to_string(), "mask,changed");
        let unknown = "tilde,label"
            .parse::<Outputs>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(unknown.contains("unknown column kind \"label\""), "{unknown}");
        let empty = "".parse::<Outputs>().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(empty.contains("at least one"), "{empty}");
        Ok(())
    }

    #[test]
    fn parses_compression_and_checks_it_against_the_format() -> Result<()> {
        for text in ["none", "snappy", "lz4", "zstd", "zstd(9)", "gzip", "gzip(1)"] {
            assert_eq!(text.parse::<ExportCompression>()?.to_string(), text);
        }
        assert_eq!(
            format!("{:?}", "ZSTD(19)".parse::<ExportCompression>()?.parquet()?),
            "ZSTD(ZstdLevel(19))"
        );
        assert_eq!(ExportCompression::Zstd(None).datafusion_name(), "zstd(3)");
        let too_high = "zstd(30)".parse::<ExportCompression>()?.check(ExportFormat::Parquet);
        assert!(too_high.is_err_and(|e| e.to_string().contains("zstd levels are 1 to 22")));
        let snappy_ipc = ExportCompression::Snappy.check(ExportFormat::Arrow);
        assert!(snappy_ipc.is_err_and(|e| e.to_string().contains("supports none, lz4 and zstd, not snappy")));
        assert!(ExportCompression::Lz4.check(ExportFormat::Arrow).is_ok());
        for bad in ["brotli", "zstd(x)", "snappy(2)", "zstd(3"] {
            assert!(bad.parse::<ExportCompression>().is_err(), "{bad}");
        }
        Ok(())
    }
}
