//! `tabssl serve`: an Arrow Flight SQL endpoint whose sessions have every tabssl function.
//!
//! First step of the server: statements (`CommandStatementQuery` → `DoGet`), `GetSqlInfo`,
//! `GetCatalogs`, and bearer-token authentication (the Flight handshake exchanges Basic
//! credentials whose password is a token for that token). Every other command answers
//! `UNIMPLEMENTED`. Without file-system confinement and TLS, the server listens on loopback
//! addresses only ([`check_listen_address`]).

mod auth;
mod service;

use std::net::SocketAddr;

pub use auth::Tokens;
pub use service::{TabsslFlightSql, serve};

use crate::{Error, Result};

/// Refuses addresses beyond loopback: clients' SQL can read files and there is no TLS yet.
///
/// # Errors
/// [`Error::Invalid`] for a non-loopback address.
pub fn check_listen_address(address: SocketAddr) -> Result<()> {
    if address.ip().is_loopback() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "--listen {address}: tabssl serve listens on loopback addresses only (127.0.0.1, ::1) until \
             file-system confinement and TLS are in place"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(check_listen_address("127.0.0.1:50051".parse().expect("address")).is_ok());
        assert!(check_listen_address("[::1]:0".parse().expect("address")).is_ok());
        let error = check_listen_address("0.0.0.0:50051".parse().expect("address")).expect_err("refused");
        assert!(error.to_string().contains("loopback"), "{error}");
    }
}
