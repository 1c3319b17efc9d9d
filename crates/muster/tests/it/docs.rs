//! The repository stands on its own and its documentation stays true:
//! - every path ARCHITECTURE.md names exists;
//! - no tracked file points outside the repository (to a path above its
//!   root, or to notes that are not part of it);
//! - every `docs/<page>.md#<section>` reference names a real section.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// The repository root (this crate is `crates/muster`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Tracked files, relative to the root (`git ls-files`).
fn tracked_files(root: &Path) -> Vec<String> {
    let out = std::process::Command::new("git")
        .arg("ls-files")
        .current_dir(root)
        .output()
        .expect("running `git ls-files` (these checks need git and a checkout)");
    assert!(out.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Text of a tracked file, or None for binary / unreadable ones.
fn text(root: &Path, rel: &str) -> Option<String> {
    let bytes = std::fs::read(root.join(rel)).ok()?;
    String::from_utf8(bytes).ok()
}

/// Backticked words of a markdown text.
fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// Whether a backticked word is meant as a file or directory path.
fn looks_like_path(w: &str) -> bool {
    if w.is_empty()
        || w.starts_with('/')
        || w.starts_with('-')
        || w.starts_with('.')
        || w.contains(['<', '>', '*', '{', ' ', '…', '|'])
        || w.contains("::")
        || w.contains("://")
    {
        return false;
    }
    let exts = [".rs", ".md", ".toml", ".sql", ".proto", ".json", ".sh", ".css", ".js"];
    w.contains('/') || exts.iter().any(|e| w.ends_with(e) && w.len() > e.len())
}

#[test]
fn every_path_architecture_md_names_exists() {
    let root = repo_root();
    let arch = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("reading ARCHITECTURE.md");
    let crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("listing crates/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    let mut missing = Vec::new();
    let mut checked = 0;
    for line in arch.lines() {
        // A codemap row names its crate first: paths in it are relative to it.
        let row_crate = line.strip_prefix("| `").and_then(|r| r.split('`').next()).map(|c| root.join(c));
        for w in backticked(line) {
            if !looks_like_path(&w) {
                continue;
            }
            let rel = w.trim_end_matches('/');
            let mut candidates = vec![root.join(rel), root.join("crates").join(rel)];
            if let Some(c) = &row_crate {
                candidates.push(c.join(rel));
                candidates.push(c.join("src").join(rel));
            } else {
                for c in &crates {
                    candidates.push(c.join(rel));
                    candidates.push(c.join("src").join(rel));
                }
            }
            checked += 1;
            if !candidates.iter().any(|p| p.exists()) {
                missing.push(format!("`{w}` in: {}", line.trim()));
            }
        }
    }
    assert!(checked > 20, "only {checked} paths found in ARCHITECTURE.md: is the path detection broken?");
    assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist:\n{}", missing.join("\n"));
}

/// Lexically resolves `rel` against `dir` (both relative to the root);
/// None when it climbs above the root.
fn resolve_inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = dir.components().filter_map(|c| c.as_os_str().to_str().map(str::to_string)).collect();
    for c in Path::new(rel).components() {
        match c {
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    Some(parts.iter().collect())
}

/// What a file must not contain: references a reader of the repository
/// cannot follow. Built from pieces so that this file does not match itself.
fn outside_references(s: &str) -> Vec<String> {
    let mut found = Vec::new();
    let design = ["DESIGN", " §"].concat();
    let spec = ["spec", " §"].concat();
    let shared = ["shared", "/"].concat();
    let work = ["/work", "/"].concat();
    for (n, line) in s.lines().enumerate() {
        let mut bad = |what: &str| found.push(format!("line {}: {what}: {}", n + 1, line.trim()));
        for needle in [&design, &spec, &work] {
            if line.contains(needle.as_str()) {
                bad(needle);
            }
        }
        // A `shared` directory of its own (not `foo_shared`).
        let b = line.as_bytes();
        for (i, _) in line.match_indices(shared.as_str()) {
            if i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'-') {
                bad(&shared);
            }
        }
        // An issue number: a tracker the repository does not carry.
        let lower = line.to_ascii_lowercase();
        let issue = ["issue", " #"].concat();
        for (i, _) in lower.match_indices(issue.as_str()) {
            if lower[i + issue.len()..].starts_with(|c: char| c.is_ascii_digit()) {
                bad(&issue);
            }
        }
    }
    found
}

/// `../` paths in `s` that climb out of the repository from `dir`.
fn escaping_paths(dir: &Path, s: &str) -> Vec<String> {
    let mut found = Vec::new();
    let up = ["..", "/"].concat();
    for (n, line) in s.lines().enumerate() {
        for (i, _) in line.match_indices(up.as_str()) {
            let prev = line[..i].chars().next_back();
            if prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '.' || c == '_' || c == '-') {
                continue; // inside a longer path (`a/../b`), judged as a whole elsewhere
            }
            let token: String = line[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
                .collect();
            if resolve_inside(dir, &token).is_none() {
                found.push(format!("line {}: `{token}` leaves the repository: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn no_tracked_file_points_outside_the_repository() {
    let root = repo_root();
    let files = tracked_files(&root);
    assert!(files.len() > 50, "git ls-files listed only {} files", files.len());
    let mut problems = Vec::new();
    for f in &files {
        if f == "Cargo.lock" || f.starts_with("bench/results/") {
            continue;
        }
        let Some(s) = text(&root, f) else { continue };
        let dir = Path::new(f).parent().unwrap_or(Path::new(""));
        for p in outside_references(&s).into_iter().chain(escaping_paths(dir, &s)) {
            problems.push(format!("{f} {p}"));
        }
    }
    assert!(
        problems.is_empty(),
        "these references cannot be followed from the repository; write what they say under docs/ \
         and point there:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_outside_reference_checks_catch_what_they_should() {
    let design = ["DESIGN", " §6"].concat();
    assert_eq!(outside_references(&format!("// ({design})")).len(), 1);
    assert_eq!(outside_references(&["see ", "shared", "/spec/x.md"].concat()).len(), 1);
    assert_eq!(outside_references(&["(", "issue", " #12)"].concat()).len(), 1);
    assert!(outside_references("a dev_shared/ dir, issue #tracking").is_empty());
    let up = ["..", "/"].concat();
    assert!(escaping_paths(Path::new("crates/x/src"), &format!("include_str!(\"{up}{up}web/a.css\")")).is_empty());
    assert_eq!(escaping_paths(Path::new("crates/x"), &format!("\"{up}{up}{up}elsewhere\"")).len(), 1);
}

/// GitHub's anchor of a markdown heading.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_docs_section_reference_exists() {
    let root = repo_root();
    let mut anchors: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for entry in std::fs::read_dir(root.join("docs")).expect("listing docs/") {
        let path = entry.expect("docs entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if !name.ends_with(".md") {
            continue; // screenshots and other assets have no sections
        }
        let body = std::fs::read_to_string(&path).expect("reading a docs page");
        let set =
            body.lines().filter_map(|l| l.strip_prefix('#')).map(|h| anchor_of(h.trim_start_matches('#'))).collect();
        anchors.insert(format!("docs/{name}"), set);
    }
    let mut problems = Vec::new();
    for f in tracked_files(&root) {
        let Some(s) = text(&root, &f) else { continue };
        for (n, line) in s.lines().enumerate() {
            for (i, _) in line.match_indices("docs/") {
                let rest: String = line[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '#'))
                    .collect();
                let Some((page, anchor)) = rest.split_once('#') else { continue };
                let page = page.trim_end_matches('.');
                match anchors.get(page) {
                    None => problems.push(format!("{f}:{}: no page {page}", n + 1)),
                    Some(set) if !set.contains(anchor.trim_end_matches('.')) => {
                        problems.push(format!("{f}:{}: {page} has no section #{anchor}", n + 1))
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "references to docs/ sections that do not exist:\n{}", problems.join("\n"));
}

/// A fenced command block of the README.
#[derive(Debug)]
pub struct Block {
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The info string after the fence, e.g. `sh` or `sh no-run`.
    pub info: String,
    pub body: String,
}

/// The fenced blocks of a markdown text.
pub fn fenced_blocks(md: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in md.lines().enumerate() {
        let t = line.trim_start();
        match (&mut open, t.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block { line: n + 1, info: info.trim().to_string(), body: String::new() })
            }
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(b), None) => {
                // Blocks may be indented inside a list item.
                let indent = line.len() - t.len();
                b.body.push_str(if indent > 0 && line.len() >= indent { t } else { line });
                b.body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// The README's convention (stated at its top): `sh` blocks run against
/// `muster dev`; `sh no-run` blocks do not.
pub fn runnable(b: &Block) -> bool {
    let mut words = b.info.split_whitespace();
    words.next() == Some("sh") && !words.any(|w| w == "no-run")
}

#[test]
fn the_readme_states_its_command_block_convention_and_uses_it() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("reading README.md");
    assert!(readme.contains("<!--") && readme.contains("no-run"), "the README must explain the convention at its top");
    let blocks = fenced_blocks(&readme);
    assert!(blocks.iter().any(runnable), "no runnable block found: is the parser broken?");
    assert!(blocks.iter().any(|b| !runnable(b)), "no skipped block found: is the parser broken?");
    let md = "a\n```sh\necho 1\n```\n  ```sh no-run\n  rm -rf /\n  ```\n```json\n{}\n```\n";
    let b = fenced_blocks(md);
    assert_eq!(b.len(), 3);
    assert_eq!((runnable(&b[0]), b[0].body.as_str()), (true, "echo 1\n"));
    assert_eq!((runnable(&b[1]), b[1].body.as_str()), (false, "rm -rf /\n"));
    assert!(!runnable(&b[2]));
}

/// Every runnable README block, run by `bash -e` with the real `muster` on
/// PATH against a real `muster dev` (server and two bots), in a scratch
/// directory. The README's `http://127.0.0.1:8080` is this test's dev
/// server.
#[tokio::test]
async fn readme_command_blocks_run_against_muster_dev() -> anyhow::Result<()> {
    use anyhow::Context;
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    let blocks: Vec<Block> = fenced_blocks(&readme).into_iter().filter(runnable).collect();
    let data = tempfile::tempdir()?;
    let scratch = tempfile::tempdir()?;
    let dev = crate::common::DevProcess::start(data.path(), 2).await?;
    let bin_dir = crate::common::exe().parent().context("no bin dir")?.to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut failures = Vec::new();
    for b in &blocks {
        let script = b.body.replace("http://127.0.0.1:8080", &dev.url);
        // Its own process group, killed after the block: whatever a block
        // leaves running in the background ends with it.
        let child = tokio::process::Command::new("bash")
            .args(["-e", "-o", "pipefail", "-c", &script])
            .current_dir(scratch.path())
            .env("PATH", &path)
            .env("SWARMING_SERVER", &dev.url)
            .env("HOME", scratch.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting bash")?;
        let group = child.id().map(|pid| format!("-{pid}"));
        let run = child.wait_with_output();
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(180), run).await;
        if let Some(g) = &group {
            // The group may already be empty: the result does not matter.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", g])
                .stderr(std::process::Stdio::null())
                .status();
        }
        match outcome {
            Err(_) => failures.push(format!("README.md:{} did not finish in 180 s:\n{}", b.line, b.body)),
            Ok(out) => {
                let out = out.context("running bash")?;
                if !out.status.success() {
                    failures.push(format!(
                        "README.md:{} failed ({}):\n{}--- stdout\n{}--- stderr\n{}",
                        b.line,
                        out.status,
                        b.body,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
        }
    }
    dev.stop().await?;
    assert!(
        failures.is_empty(),
        "README command blocks that do not work against muster dev (mark blocks that must not run \
         as ```sh no-run, see the comment at the top of README.md):\n\n{}",
        failures.join("\n\n")
    );
    anyhow::ensure!(blocks.len() >= 2, "only {} runnable README blocks", blocks.len());
    Ok(())
}
