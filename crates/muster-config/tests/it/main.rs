//! muster-config: upstream-format files load unchanged, bad files are
//! refused with their position, and reload keeps the last good set.

mod bots;
mod load;
mod reload;
mod text;

use std::path::{Path, PathBuf};

pub fn upstream_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/upstream")
}

/// A copy of the upstream example directory in a temp dir.
pub fn copy_upstream() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&upstream_dir(), tmp.path());
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}
