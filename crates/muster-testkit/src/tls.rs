//! A throwaway certificate authority for TLS tests (rcgen).

use anyhow::Context;
use std::path::{Path, PathBuf};

/// A self-signed CA that issues server certificates.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// PEM files of a server certificate and its key.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(name: &str) -> anyhow::Result<TestCa> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().context("CA key")?;
        let cert = params.self_signed(&key).context("self-signing the CA")?;
        Ok(TestCa { cert, key })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate to `path`.
    pub fn write_pem(&self, path: &Path) -> anyhow::Result<PathBuf> {
        std::fs::write(path, self.pem()).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.to_path_buf())
    }

    /// Issues a certificate for `names` (DNS names or IP addresses) and
    /// writes it and its key as `<dir>/<stem>.crt` and `<dir>/<stem>.key`.
    pub fn issue(&self, names: &[&str], dir: &Path, stem: &str) -> anyhow::Result<ServerCert> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).context("server params")?;
        params.distinguished_name.push(rcgen::DnType::CommonName, stem);
        let key = rcgen::KeyPair::generate().context("server key")?;
        let cert = params.signed_by(&key, &self.cert, &self.key).context("signing the server certificate")?;
        let out = ServerCert { cert: dir.join(format!("{stem}.crt")), key: dir.join(format!("{stem}.key")) };
        std::fs::write(&out.cert, cert.pem()).with_context(|| format!("writing {}", out.cert.display()))?;
        std::fs::write(&out.key, key.serialize_pem()).with_context(|| format!("writing {}", out.key.display()))?;
        Ok(out)
    }
}
