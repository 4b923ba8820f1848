//! The pretext tasks, one list for the whole crate: `tabssl export` writes their corrupted
//! training sets and `tabssl pretrain` trains encoders on them.

use serde::{Deserialize, Serialize};

/// A self-supervised pretext task: how cells are corrupted and, for pretraining, what the
/// encoder must recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// VIME (Yoon et al., 2020): cells masked with p [0.3] take a value drawn from the
    /// column's marginal; the encoder learns mask estimation + feature reconstruction.
    Vime,
    /// SCARF (Bahri et al., 2022): the same corruption at a higher rate [0.6]; contrastive
    /// learning between a row and its corrupted view.
    Scarf,
    /// Denoising autoencoder with swap noise [0.15]: reconstruct the clean row.
    Dae,
    /// Export only: Gaussian noise on numeric columns (sigma = noise std x the column's
    /// std) with probability p [1.0]; other columns get swap noise at the DAE rate 0.15.
    Noise,
    /// Export only: constant masking (TabNet obfuscation, blanking): masked cells become
    /// the fill value (default NULL).
    Blank,
}

impl Method {
    /// Every method, in the order above.
    pub const ALL: [Self; 5] = [Self::Vime, Self::Scarf, Self::Dae, Self::Noise, Self::Blank];

    /// The method's name as written in manifests and on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vime => "vime",
            Self::Scarf => "scarf",
            Self::Dae => "dae",
            Self::Noise => "noise",
            Self::Blank => "blank",
        }
    }

    /// The published default corruption rate: VIME p_m = 0.3, SCARF c = 0.6, DAE swap 0.15;
    /// blanking follows VIME, Gaussian noise touches every numeric cell.
    #[must_use]
    pub fn default_p(self) -> f64 {
        match self {
            Self::Vime | Self::Blank => 0.3,
            Self::Scarf => 0.6,
            Self::Dae => 0.15,
            Self::Noise => 1.0,
        }
    }

    /// True when masked cells take values drawn from the column (a marginal sample or the
    /// batch); blanking draws nothing.
    #[must_use]
    pub fn swaps(self) -> bool {
        !matches!(self, Self::Blank)
    }

    /// True for the methods `pretrain` trains (its corruption is swap noise).
    #[must_use]
    pub fn trainable(self) -> bool {
        matches!(self, Self::Vime | Self::Scarf | Self::Dae)
    }
}

impl std::str::FromStr for Method {
    type Err = crate::Error;

    fn from_str(name: &str) -> crate::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                crate::Error::invalid(format!(
                    "unknown method {name:?}: expected one of vime, scarf, dae, noise, blank"
                ))
            })
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
