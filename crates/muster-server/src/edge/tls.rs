//! HTTPS with rustls. The certificate chain and key are PEM files, re-read
//! when either file changes (checked every `tls_reload_interval`) or when
//! the process gets SIGHUP, so a renewed certificate (e.g. by certbot or
//! cert-manager) is served without a restart. A reload that fails (a
//! half-written file, a key that does not match) is logged and the current
//! certificate stays in use.

use super::TlsFiles;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// When the files last changed, as far as we can tell without reading them.
type Stamp = Vec<Option<(SystemTime, u64)>>;

/// The certificate in use, swapped on reload.
#[derive(Debug)]
pub struct CertStore {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    stamp: Mutex<Stamp>,
}

impl CertStore {
    /// Loads the files now; fails with a message naming the bad file.
    pub fn load(files: &TlsFiles) -> Result<Arc<CertStore>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamp = stamp(files);
        let key = read(files, &provider)?;
        Ok(Arc::new(CertStore { files: files.clone(), provider, current: RwLock::new(key), stamp: Mutex::new(stamp) }))
    }

    /// A rustls server config that serves the current certificate (HTTP/2
    /// and HTTP/1.1 by ALPN).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Re-reads the files if they changed (or if `force`). Returns whether
    /// a new certificate is now in use.
    pub fn reload(&self, force: bool) -> bool {
        let now = stamp(&self.files);
        {
            let mut last = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
            if !force && *last == now {
                return false;
            }
            *last = now;
        }
        match read(&self.files, &self.provider) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = key;
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate reload failed; still serving the previous one");
                false
            }
        }
    }

    /// Reloads on change (polled every `every`) and on SIGHUP until `shutdown`.
    pub async fn watch(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let force = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => false,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            };
            let store = self.clone();
            // File IO off the async threads.
            let _ = tokio::task::spawn_blocking(move || store.reload(force)).await;
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.cert, &files.key]
        .into_iter()
        .map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
        .collect()
}

fn read(files: &TlsFiles, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading the TLS certificate {}: {e}", files.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate in {}", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("reading the TLS private key {}: {e}", files.key.display()))?;
    let key = CertifiedKey::from_der(certs, key, provider).map_err(|e| {
        format!("the TLS key {} does not fit the certificate {}: {e}", files.key.display(), files.cert.display())
    })?;
    Ok(Arc::new(key))
}
