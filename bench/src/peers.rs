//! The systems under test, each started on a free loopback port in its own temp directory
//! and stopped when dropped.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};


/// Runs the Python baseline `script` (under bench/) with `args` and reads the one JSON
/// value it prints.
pub fn python_baseline(python: &Path, script: &str, args: &[String]) -> Result<serde_json::Value, String> {
    let path = format!("bench/{script}");
    let out = Command::new(python).arg(&path).args(args).output().map_err(|e| format!("{path}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{path} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{path} output: {e}"))
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited early: {status}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what} did not open port {port}"))
}

/// A `nowdb serve` process.
pub struct Nowdb {
    child: Child,
    /// Port.
    pub port: u16,
    wrapped: bool,
    _dir: tempfile::TempDir,
}

impl Nowdb {
    /// Starts `bin` with default (sync) durability, under `wrapper` (e.g. a profiler) if given.
    pub fn start(bin: &Path, wrapper: &[String]) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = cmd
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--export-dir")
            .arg(dir.path().join("exports"))
            .env("NOWDB_LOG", "warn")
            .env("NOWDB_HTTP_LISTEN", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {}: {e}", bin.display()))?;
        wait_for_port(port, "nowdb", &mut child)?;
        Ok(Self { child, port, wrapped: !wrapper.is_empty(), _dir: dir })
    }

    /// Connection string.
    pub fn conn_str(&self) -> String {
        format!("host=127.0.0.1 port={} user=nowdb dbname=nowdb", self.port)
    }

    /// The process id (of the wrapper, when started under one).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where its `COPY ... TO 'file'` writes.
    pub fn export_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("exports")
    }
}

impl Drop for Nowdb {
    fn drop(&mut self) {
        if self.wrapped {
            // A profiler writes its data on SIGINT, and stops the server with it.
            let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub use nowdb_tests::postgres::Postgres;
use nowdb_tests::free_port;

/// A Redis server with persistence off.
pub struct Redis {
    child: Child,
    /// Port.
    pub port: u16,
}

impl Redis {
    /// Starts `redis-server` on loopback without persistence.
    pub fn start() -> Result<Self, String> {
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e} (apt-get install redis-server)"))?;
        wait_for_port(port, "redis-server", &mut child)?;
        Ok(Self { child, port })
    }

    /// `redis-server --version`.
    pub fn version() -> String {
        Command::new("redis-server")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
