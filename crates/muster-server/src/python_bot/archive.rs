//! Building `swarming_bot.zip` and computing its version (docs/bot-protocol.md#python-bot-code).
//!
//! Pure functions over bytes and a directory: which files go in, the
//! generated `config/config.json`, a byte-for-byte reproducible zip (entries
//! sorted by name, DEFLATE, fixed 1980-01-01 timestamps, mode 0600, no
//! directory entries), and the digest the upstream bot computes of itself.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Zip entry name → uncompressed content. A BTreeMap keeps the names sorted
/// by bytes, which is the order Python's `sorted(namelist())` gives.
pub type Entries = BTreeMap<String, Vec<u8>>;

/// Name of the generated server config inside the zip.
pub const CONFIG_JSON: &str = "config/config.json";
/// Name of the hooks script inside the zip.
pub const BOT_CONFIG_PY: &str = "config/bot_config.py";

/// Why the bot code could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("writing the zip: {0}")]
    Zip(String),
    #[error("{0} is not a bot source directory (no __main__.py)")]
    NotABotDir(String),
}

fn io_err(path: &Path, e: std::io::Error) -> ArchiveError {
    ArchiveError::Io { path: path.display().to_string(), message: e.to_string() }
}

/// Whether a file or directory name is left out of the zip: hidden entries
/// (`.git`, `.coveragerc`), byte code (`__pycache__`, `*.pyc`, `*.pyo`) and
/// unit tests (`*_test.py`); none of them is imported by a running bot.
pub fn is_skipped(name: &str) -> bool {
    name.starts_with('.')
        || name == "__pycache__"
        || name.ends_with(".pyc")
        || name.ends_with(".pyo")
        || name.ends_with("_test.py")
}

/// One source file: its zip name and where it really lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub name: String,
    pub path: PathBuf,
    pub len: u64,
    pub modified: Option<SystemTime>,
}

/// Every regular file under `dir` (following symlinks, as the upstream
/// builder does; dangling links and non-UTF-8 names are skipped with a
/// warning), minus [`is_skipped`] names, sorted by zip name.
pub fn list_files(dir: &Path) -> Result<Vec<SourceFile>, ArchiveError> {
    let root = std::fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
    if !root.join("__main__.py").is_file() {
        return Err(ArchiveError::NotABotDir(dir.display().to_string()));
    }
    let mut out = Vec::new();
    let mut seen_dirs = BTreeSet::new();
    walk(&root, "", &mut seen_dirs, &mut out)?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &str,
    seen_dirs: &mut BTreeSet<PathBuf>,
    out: &mut Vec<SourceFile>,
) -> Result<(), ArchiveError> {
    // A symlink cycle would otherwise recurse forever.
    let canonical = std::fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
    if !seen_dirs.insert(canonical.clone()) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            tracing::warn!(path = %path.display(), "python bot dir: skipping a non-UTF-8 file name");
            continue;
        };
        if is_skipped(&name) {
            continue;
        }
        // metadata() follows symlinks; a dangling link fails here.
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "python bot dir: skipping an unreadable entry");
                continue;
            }
        };
        let zip_name = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if meta.is_dir() {
            walk(&path, &zip_name, seen_dirs, out)?;
        } else if meta.is_file() {
            out.push(SourceFile { name: zip_name, path, len: meta.len(), modified: meta.modified().ok() });
        }
    }
    seen_dirs.remove(&canonical);
    Ok(())
}

/// The generated `config/config.json`: the bot reads only `server`.
pub fn config_json(server: &str, server_version: &str) -> Vec<u8> {
    let v = serde_json::json!({
        "enable_ts_monitoring": false,
        "server": server.trim_end_matches('/'),
        "server_version": server_version,
    });
    v.to_string().into_bytes()
}

/// Reads `files` and adds the generated entries: `config/config.json`
/// always, `config/bot_config.py` when the operator gave one (otherwise the
/// tree's own default stays).
pub fn collect(files: &[SourceFile], config_json: &[u8], bot_config: Option<&[u8]>) -> Result<Entries, ArchiveError> {
    let mut entries = Entries::new();
    for f in files {
        let bytes = std::fs::read(&f.path).map_err(|e| io_err(&f.path, e))?;
        entries.insert(f.name.clone(), bytes);
    }
    entries.insert(CONFIG_JSON.to_string(), config_json.to_vec());
    if let Some(b) = bot_config {
        entries.insert(BOT_CONFIG_PY.to_string(), b.to_vec());
    }
    Ok(entries)
}

/// Writes `entries` as a reproducible zip: same entries → same bytes.
pub fn build_zip(entries: &Entries) -> Result<Vec<u8>, ArchiveError> {
    let zerr = |e: zip::result::ZipError| ArchiveError::Zip(e.to_string());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o600);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        w.start_file(name.as_str(), options).map_err(zerr)?;
        w.write_all(content).map_err(|e| ArchiveError::Zip(e.to_string()))?;
    }
    Ok(w.finish().map_err(zerr)?.into_inner())
}

/// The bot version of `entries` (docs/bot-protocol.md#python-bot-code): SHA-256 over, for each
/// entry sorted by name, `len(name)` in decimal, the name, `len(content)` in
/// decimal, the content. Lowercase hex.
pub fn entries_digest<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut sorted: Vec<(&str, &[u8])> = entries.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    for (name, content) in sorted {
        h.update(name.len().to_string().as_bytes());
        h.update(name.as_bytes());
        h.update(content.len().to_string().as_bytes());
        h.update(content);
    }
    hex::encode(h.finalize())
}

/// The bot version of a zip, computed from its entries exactly as the bot
/// computes its own (so it is the digest of the bytes actually served).
pub fn zip_digest(zip_bytes: &[u8]) -> Result<String, ArchiveError> {
    let zerr = |e: zip::result::ZipError| ArchiveError::Zip(e.to_string());
    let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes)).map_err(zerr)?;
    let mut entries = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).map_err(zerr)?;
        let mut content = Vec::with_capacity(usize::try_from(f.size()).unwrap_or(0));
        f.read_to_end(&mut content).map_err(|e| ArchiveError::Zip(e.to_string()))?;
        let name =
            String::from_utf8(f.name_raw().to_vec()).map_err(|e| ArchiveError::Zip(format!("entry name: {e}")))?;
        entries.push((name, content));
    }
    Ok(entries_digest(entries.iter().map(|(n, c)| (n.as_str(), c.as_slice()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_names_are_hidden_files_bytecode_and_unit_tests() {
        for n in [".git", ".coveragerc", "__pycache__", "x.pyc", "bot_main_test.py"] {
            assert!(is_skipped(n), "{n}");
        }
        for n in ["__main__.py", "bot_main.py", "cacert.pem", "test_env_bot.py", "config.json"] {
            assert!(!is_skipped(n), "{n}");
        }
    }

    #[test]
    fn the_digest_of_no_entries_is_the_sha256_of_nothing() {
        assert_eq!(
            entries_digest(std::iter::empty()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn config_json_names_the_server_without_a_trailing_slash() {
        let v: serde_json::Value = serde_json::from_slice(&config_json("http://h:1/", "v1")).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"enable_ts_monitoring": false, "server": "http://h:1", "server_version": "v1"})
        );
    }
}
