//! Confining client-named files to a directory the server was given (model files, exports).

use std::path::{Component, Path, PathBuf};

use crate::error::{NowError, NowResult};

/// Whether `p` (not necessarily existing) leaves `root`, judged lexically.
pub fn escapes(root: &Path, p: &Path) -> bool {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    !out.starts_with(root)
}

/// The path `path` names under `dir`, for a file the server is about to write: refused
/// (42501) when it leaves `dir`, lexically or through a symbolic link. Creates `dir` and the
/// file's parent directories.
pub fn writable_under(dir: &Path, path: &str, what: &str) -> NowResult<PathBuf> {
    let io = |p: &Path, e: std::io::Error| NowError::coded("58P01", format!("could not create directory \"{}\": {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let root = dir.canonicalize().map_err(|e| io(dir, e))?;
    let outside = || NowError::coded("42501", format!("path \"{path}\" is outside the {what} {}", root.display()));
    let wanted = root.join(path);
    if path.is_empty() || escapes(&root, &wanted) {
        return Err(outside());
    }
    let (Some(parent), Some(name)) = (wanted.parent(), wanted.file_name()) else { return Err(outside()) };
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let parent = parent.canonicalize().map_err(|e| io(parent, e))?;
    if !parent.starts_with(&root) {
        return Err(outside());
    }
    let full = parent.join(name);
    if full.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(outside());
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_leaving_the_directory_are_refused() {
        let dir = std::env::temp_dir().join(format!("nowdb-paths-{}", std::process::id()));
        let ok = writable_under(&dir, "sub/out.csv", "export directory").unwrap();
        assert!(ok.ends_with("sub/out.csv"));
        for bad in ["../out.csv", "/etc/passwd", "sub/../../x", ""] {
            let e = writable_under(&dir, bad, "export directory").unwrap_err();
            assert_eq!(e.to_error_info().code, "42501", "{bad}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
