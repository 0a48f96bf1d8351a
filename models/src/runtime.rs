//! Finding and loading ONNX Runtime's shared library, once per process.
//!
//! nowdb links ONNX Runtime dynamically (`ort`'s `load-dynamic`): the library comes from the
//! PyPI `onnxruntime` (or `onnxruntime-gpu`) wheel, which ships
//! `onnxruntime/capi/libonnxruntime.so.<version>`. [`Runtime::get`] looks, in order, at
//! `ORT_DYLIB_PATH`, then for a `.venv` with that wheel in the working directory and every
//! directory above it and above the executable, then at the usual system library folders.
//! ONNX Runtime allows one environment per process, so the loaded runtime is kept in a
//! process-wide cell; a failure is kept too (and reported by every model statement), so the
//! server runs on without models.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ort::environment::Environment;
use tracing::{info, warn};

use crate::ModelError;

/// The loaded ONNX Runtime.
#[derive(Debug)]
pub struct Runtime {
    env: Environment,
    library: PathBuf,
}

static RUNTIME: OnceLock<Result<Arc<Runtime>, String>> = OnceLock::new();

impl Runtime {
    /// The process's ONNX Runtime, loading it on first use.
    pub fn get() -> Result<Arc<Runtime>, ModelError> {
        RUNTIME
            .get_or_init(|| match Self::load() {
                Ok(rt) => {
                    info!(library = %rt.library.display(), "loaded ONNX Runtime");
                    Ok(Arc::new(rt))
                }
                Err(reason) => {
                    warn!(%reason, "ONNX Runtime is not available; model statements will fail");
                    Err(reason)
                }
            })
            .clone()
            .map_err(|reason| ModelError::RuntimeUnavailable { reason })
    }

    fn load() -> Result<Runtime, String> {
        let library = locate().ok_or_else(|| {
            "libonnxruntime.so was not found (ORT_DYLIB_PATH is not set and no .venv with the onnxruntime wheel was found)".to_string()
        })?;
        // ort's own loader panics on some malformed libraries; a panic must not take the
        // server down, so it is caught and reported like any other load failure.
        let built = std::panic::catch_unwind(|| -> Result<Environment, String> {
            ort::init_from(&library)
                .map_err(|e| format!("cannot load {}: {e}", library.display()))?
                .with_name("nowdb")
                .with_telemetry(false)
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime from {}: {e}", library.display()))
        });
        let env = built.map_err(|_| format!("loading {} panicked", library.display()))??;
        Ok(Runtime { env, library })
    }

    /// The ONNX Runtime environment sessions are created in.
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// The shared library in use.
    pub fn library(&self) -> &Path {
        &self.library
    }
}

/// Where libonnxruntime is, if anywhere.
fn locate() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(PathBuf::from(p));
    }
    let mut bases: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        bases.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        bases.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    for base in bases {
        if let Some(found) = in_venv(&base.join(".venv")) {
            return Some(found);
        }
    }
    ["/usr/lib/x86_64-linux-gnu", "/usr/lib", "/usr/local/lib"]
        .iter()
        .find_map(|dir| library_in(Path::new(dir)))
}

/// `<venv>/lib/python3.*/site-packages/onnxruntime/capi/libonnxruntime.so*`.
fn in_venv(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    let mut pythons: Vec<PathBuf> = lib.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    pythons.sort();
    pythons
        .iter()
        .rev()
        .find_map(|py| library_in(&py.join("site-packages").join("onnxruntime").join("capi")))
}

/// The newest `libonnxruntime.so*` in `dir` (the wheel ships only the versioned name).
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    found.sort();
    found.pop()
}
