//! The server's TLS identity: a certificate and its key, loaded from files
//! given with `--tls-cert`/`--tls-key`, or a self-signed pair made on first
//! start and kept in the state folder, so the fingerprint clients pinned
//! stays the same across restarts.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// File names of the self-signed pair in the state folder.
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// A certificate chain and key, ready to serve.
pub struct Identity {
    /// rustls' settings for every TLS connection.
    pub config: Arc<rustls::ServerConfig>,
    /// The SHA-256 of the certificate, as `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint: String,
    /// Where the certificate was read from.
    pub cert_path: PathBuf,
}

/// Why there is no identity to serve with.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File { path: PathBuf, source: io::Error },
    /// A file is not what it should be.
    #[error("{path}: {reason}")]
    Bad { path: PathBuf, reason: String },
    /// The certificate and key do not go together, or rustls refuses them.
    #[error("cannot serve TLS with {cert} and its key: {reason}")]
    Rejected { cert: PathBuf, reason: String },
    /// There is no folder to keep a generated certificate in.
    #[error("no state folder: set XDG_STATE_HOME or HOME, or give --state-dir")]
    NoStateDir,
}

/// The state folder: `$XDG_STATE_HOME/file-server`, else `~/.local/state/file-server`.
pub fn default_state_dir() -> Option<PathBuf> {
    let from = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    from("XDG_STATE_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".local/state")))
        .map(|base| base.join("file-server"))
}

impl Identity {
    /// Loads a certificate chain (PEM, leaf first) and its private key (PEM).
    ///
    /// # Errors
    /// When a file cannot be read, holds no certificate or key, or the two
    /// do not match.
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, IdentityError> {
        let read = |path: &Path| fs::read(path).map_err(|source| IdentityError::File { path: path.into(), source });
        let bad = |path: &Path, reason: String| IdentityError::Bad { path: path.into(), reason };
        let cert_pem = read(cert)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(cert, format!("not a PEM certificate: {e}")))?;
        if chain.is_empty() {
            return Err(bad(cert, "holds no certificate".into()));
        }
        let key_der =
            PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| bad(key, format!("not a PEM private key: {e}")))?;
        let fingerprint = common::tls::fingerprint(&chain[0]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key_der))
            .map_err(|e| IdentityError::Rejected { cert: cert.into(), reason: e.to_string() })?;
        Ok(Identity { config: Arc::new(config), fingerprint, cert_path: cert.into() })
    }

    /// The self-signed identity kept in `state_dir`, made there (key mode
    /// 0600, folder 0700) the first time.
    ///
    /// # Errors
    /// When the folder or files cannot be made or read.
    pub fn self_signed(state_dir: &Path) -> Result<Identity, IdentityError> {
        let (cert, key) = (state_dir.join(CERT_FILE), state_dir.join(KEY_FILE));
        if !cert.exists() && !key.exists() {
            generate(state_dir, &cert, &key)?;
        }
        Identity::load(&cert, &key)
    }
}

/// An I/O error on `path`, for `map_err`.
fn file_error(path: &Path) -> impl FnOnce(io::Error) -> IdentityError + '_ {
    move |source| IdentityError::File { path: path.into(), source }
}

/// Makes a self-signed certificate for this host and writes it and its key.
fn generate(state_dir: &Path, cert: &Path, key: &Path) -> Result<(), IdentityError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(state_dir).map_err(file_error(state_dir))?;
    let mut names = vec!["localhost".to_string()];
    if let Ok(host) = fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_string());
        }
    }
    let cannot =
        |e: rcgen::Error| IdentityError::Bad { path: cert.into(), reason: format!("cannot make a certificate: {e}") };
    let mut params = rcgen::CertificateParams::new(names.clone()).map_err(cannot)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("file-server on {}", names.last().unwrap_or(&names[0])));
    let signing_key = rcgen::KeyPair::generate().map_err(cannot)?;
    let made = rcgen::CertifiedKey { cert: params.self_signed(&signing_key).map_err(cannot)?, signing_key };
    // The key first, created new with 0600: never readable by others, even briefly.
    let write = |path: &Path, mode: u32, text: String| -> Result<(), IdentityError> {
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(file_error(path))?;
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(file_error(path))
    };
    write(key, 0o600, made.signing_key.serialize_pem())?;
    write(cert, 0o644, made.cert.pem())?;
    tracing::info!("made a self-signed certificate in {}", state_dir.display());
    Ok(())
}
