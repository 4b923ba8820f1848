//! Bearer tokens: every call carries `authorization: Bearer <token>`; the Flight handshake
//! exchanges `Basic <user:token>` for the same token. A wrong or missing token is
//! `UNAUTHENTICATED` with no detail.

use std::path::Path;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use tonic::Status;
use tonic::metadata::MetadataMap;

use tabssl_functions::{Error, Result};

/// Base64 with or without padding: the Go Flight SQL driver (ADBC) leaves it out.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The accepted tokens; empty means no authentication (loopback only).
#[derive(Clone, Default)]
pub struct Tokens(Vec<String>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

impl Tokens {
    /// Tokens from a list; blank entries are ignored.
    #[must_use]
    pub fn new(tokens: impl IntoIterator<Item = String>) -> Self {
        Self(
            tokens
                .into_iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    /// One token per line of `path` (blank lines and `#` comments ignored).
    ///
    /// # Errors
    /// The file cannot be read, or holds no token.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let tokens = Self::new(
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .map(str::to_string),
        );
        if tokens.0.is_empty() {
            return Err(Error::invalid(format!("{}: holds no token", path.display())));
        }
        Ok(tokens)
    }

    /// These tokens and `token`.
    #[must_use]
    pub fn with(self, token: &str) -> Self {
        Self::new(self.0.into_iter().chain([token.to_string()]))
    }

    /// True when calls must carry a token.
    #[must_use]
    pub fn required(&self) -> bool {
        !self.0.is_empty()
    }

    fn accepts(&self, token: &str) -> bool {
        // Compare every byte of every token, so the time taken does not tell how much of a
        // guess was right.
        self.0.iter().fold(false, |found, known| {
            let same_length = known.len() == token.len();
            let differing = known.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found | (same_length && differing == 0)
        })
    }

    /// Checks the bearer token of a call.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for a missing or unknown token.
    pub fn check(&self, metadata: &MetadataMap) -> std::result::Result<(), Status> {
        if !self.required() {
            return Ok(());
        }
        let token = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match token {
            Some(token) if self.accepts(token) => Ok(()),
            _ => Err(unauthenticated()),
        }
    }

    /// The token that the handshake's `Basic user:token` credentials name.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for missing, malformed or unknown credentials.
    pub fn exchange(&self, metadata: &MetadataMap) -> std::result::Result<String, Status> {
        let credentials = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|encoded| BASE64.decode(encoded).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let token = credentials
            .as_deref()
            .and_then(|c| c.split_once(':'))
            .map(|(_, token)| token.to_string());
        match token {
            Some(token) if !self.required() || self.accepts(&token) => Ok(token),
            _ => Err(unauthenticated()),
        }
    }
}

fn unauthenticated() -> Status {
    Status::unauthenticated("missing or invalid credentials")
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

    use super::*;

    fn with(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", value.parse().expect("ascii"));
        metadata
    }

    #[test]
    fn only_a_configured_token_passes() {
        let tokens = Tokens::new(["s3cret".to_string(), "other".to_string()]);
        assert!(tokens.check(&with("Bearer s3cret")).is_ok());
        assert!(tokens.check(&with("Bearer other")).is_ok());
        for bad in ["Bearer s3cre", "Bearer s3crett", "Bearer ", "s3cret", "Basic s3cret"] {
            let status = tokens.check(&with(bad)).expect_err(bad);
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad}");
        }
        assert!(tokens.check(&MetadataMap::new()).is_err());
    }

    #[test]
    fn the_handshake_exchanges_basic_credentials_for_the_token() {
        let tokens = Tokens::new(["s3cret".to_string()]);
        for user in ["a", "ab", "abc"] {
            let credentials = format!("{user}:s3cret");
            for encoded in [STANDARD.encode(&credentials), STANDARD_NO_PAD.encode(&credentials)] {
                let basic = format!("Basic {encoded}");
                assert_eq!(tokens.exchange(&with(&basic)).expect("accepted"), "s3cret", "{basic}");
            }
        }
        let wrong = format!("Basic {}", STANDARD.encode("alice:guess"));
        assert!(tokens.exchange(&with(&wrong)).is_err());
        assert!(tokens.exchange(&with("Basic !!!")).is_err());
    }
}
