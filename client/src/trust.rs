//! Which TLS servers to believe, as ssh does it: trust on first use.
//!
//! A server's certificate is known by its SHA-256 fingerprint (the form
//! `openssl x509 -fingerprint -sha256` prints, which `file-server --tls`
//! shows when it starts). Accepted fingerprints are kept one per line,
//! `HOST:PORT FINGERPRINT`, in `known_servers` (`$XDG_DATA_HOME/file-client/`,
//! else `~/.local/share/file-client/`). A server whose certificate chains to
//! a root the system trusts, for the name typed, is believed without asking.
//! Every handshake still proves the server holds the certificate's key.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use common::tls::fingerprint;

/// What the user asked for about server identities (`--tls` and its flags).
#[derive(Debug, Clone)]
pub struct Trust {
    /// The known servers file; `None` when there is no home to keep it in.
    pub known_servers: Option<PathBuf>,
    /// `--fingerprint`: the only certificate to accept.
    pub pinned: Option<String>,
    /// `--accept-new`: remember an unknown server without asking.
    pub accept_new: bool,
}

/// How a handshake's certificate was judged, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Its fingerprint is the pinned or remembered one.
    Known,
    /// It chains to a root the system trusts, for this name.
    ByAuthority,
    /// Not seen before; accepted only with `--accept-new`.
    New {
        /// Its fingerprint.
        fingerprint: String,
    },
    /// Not the one pinned with `--fingerprint`.
    NotPinned {
        /// The pinned fingerprint.
        pinned: String,
        /// The one presented.
        presented: String,
    },
    /// Not the one remembered for this server.
    Changed {
        /// The remembered fingerprint.
        remembered: String,
        /// The one presented.
        presented: String,
        /// The line of `known_servers` that holds the remembered one.
        line: usize,
    },
}

/// Where a handshake leaves how it judged the server's certificate.
pub type Verdict = Arc<Mutex<Option<Judgement>>>;

/// The default place of `known_servers`.
pub fn default_known_servers() -> Option<PathBuf> {
    let from = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    from("XDG_DATA_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".local/share")))
        .map(|base| base.join("file-client").join("known_servers"))
}

/// The fingerprint remembered for `server`, and its line number (from 1).
///
/// # Errors
/// When the file exists and cannot be read.
pub fn remembered(file: &Path, server: &str) -> io::Result<Option<(String, usize)>> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(text.lines().enumerate().find_map(|(i, line)| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some(key), Some(fp)) if key == server && !key.starts_with('#') => {
                common::tls::parse_fingerprint(fp).map(|fp| (fp, i + 1))
            }
            _ => None,
        }
    }))
}

/// Adds `server` with `fingerprint` to `file`, making its folder (0700) if needed.
///
/// # Errors
/// When the folder or file cannot be written.
pub fn remember(file: &Path, server: &str, fingerprint: &str) -> io::Result<()> {
    if let Some(dir) = file.parent() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut out = OpenOptions::new().create(true).append(true).mode(0o600).open(file)?;
    writeln!(out, "{server} {fingerprint}")
}

impl Trust {
    /// rustls' settings for connecting to `server` (`HOST:PORT`), and where
    /// the handshake leaves its [`Judgement`].
    ///
    /// # Errors
    /// When `known_servers` cannot be read.
    pub fn client_config(&self, server: &str) -> io::Result<(Arc<rustls::ClientConfig>, Verdict)> {
        let expected = match (&self.pinned, &self.known_servers) {
            (Some(pinned), _) => Expected::Pinned(pinned.clone()),
            (None, Some(file)) => match remembered(file, server)? {
                Some((fp, line)) => Expected::Remembered(fp, line),
                None => Expected::Nothing,
            },
            (None, None) => Expected::Nothing,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let judgement = Arc::new(Mutex::new(None));
        let verifier = Pinning {
            expected,
            accept_new: self.accept_new,
            provider: Arc::clone(&provider),
            judgement: Arc::clone(&judgement),
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok((Arc::new(config), judgement))
    }
}

#[derive(Debug)]
enum Expected {
    Pinned(String),
    Remembered(String, usize),
    Nothing,
}

/// Checks the certificate against the pinned or remembered fingerprint,
/// else the system's roots; and the handshake's signatures always.
#[derive(Debug)]
struct Pinning {
    expected: Expected,
    accept_new: bool,
    provider: Arc<CryptoProvider>,
    judgement: Verdict,
}

impl Pinning {
    fn judge(&self, judgement: Judgement) -> Result<ServerCertVerified, rustls::Error> {
        let accepted = match &judgement {
            Judgement::Known | Judgement::ByAuthority => true,
            Judgement::New { .. } => self.accept_new,
            Judgement::NotPinned { .. } | Judgement::Changed { .. } => false,
        };
        *self.judgement.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(judgement);
        if accepted {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("server identity not accepted".into()))
        }
    }

    /// True when the chain is valid for `name` under the system's roots.
    fn by_authority(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if roots.is_empty() {
            return false;
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&self.provider))
            .build()
            .is_ok_and(|v| v.verify_server_cert(end_entity, intermediates, name, &[], now).is_ok())
    }
}

impl ServerCertVerifier for Pinning {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = fingerprint(end_entity);
        let judgement = match &self.expected {
            Expected::Pinned(pinned) if *pinned == presented => Judgement::Known,
            Expected::Pinned(pinned) => Judgement::NotPinned { pinned: pinned.clone(), presented },
            Expected::Remembered(fp, _) if *fp == presented => Judgement::Known,
            Expected::Remembered(fp, line) => Judgement::Changed { remembered: fp.clone(), presented, line: *line },
            Expected::Nothing if self.by_authority(end_entity, intermediates, server_name, now) => {
                Judgement::ByAuthority
            }
            Expected::Nothing => Judgement::New { fingerprint: presented },
        };
        self.judge(judgement)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_servers_are_found_by_exact_key_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/known_servers");
        let a = fingerprint(b"a");
        let b = fingerprint(b"b");
        assert_eq!(remembered(&file, "h:1").unwrap(), None);
        remember(&file, "h:1", &a).unwrap();
        remember(&file, "h:12", &b).unwrap();
        assert_eq!(remembered(&file, "h:1").unwrap(), Some((a, 1)));
        assert_eq!(remembered(&file, "h:12").unwrap(), Some((b, 2)));
        assert_eq!(remembered(&file, "h").unwrap(), None);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
