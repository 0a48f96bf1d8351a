//! The systems under test, each started on a free loopback port in its own temp directory
//! and stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

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

/// A PostgreSQL server made with initdb + pg_ctl.
pub struct Postgres {
    bindir: PathBuf,
    data: PathBuf,
    /// Port.
    pub port: u16,
    as_postgres_user: bool,
    _dir: tempfile::TempDir,
}

fn pg_bindir() -> Result<PathBuf, String> {
    for v in ["17", "16", "15"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("initdb").exists() {
            return Ok(p);
        }
    }
    Err("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql-15)".into())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

impl Postgres {
    /// `initdb` and start; as root, runs as the `postgres` user (initdb refuses root).
    pub fn start() -> Result<Self, String> {
        let bindir = pg_bindir()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = dir.path().join("pgdata");
        let as_postgres_user = is_root();
        if as_postgres_user {
            Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().map_err(|e| e.to_string())?;
        }
        let port = free_port();
        let pg = Self { bindir, data, port, as_postgres_user, _dir: dir };
        pg.run("initdb", &["-A", "trust", "-U", "bench", "-E", "UTF8", "--no-sync", "-D", &pg.data.display().to_string()])?;
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c shared_buffers=256MB -c max_connections=100",
            pg._dir.path().display()
        );
        pg.run("pg_ctl", &["-D", &pg.data.display().to_string(), "-o", &opts, "-l", &pg._dir.path().join("pg.log").display().to_string(), "-w", "start"])?;
        Ok(pg)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bindir.join(tool);
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).current_dir("/").output().map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{tool} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Connection string.
    pub fn conn_str(&self) -> String {
        format!("host=127.0.0.1 port={} user=bench dbname=postgres", self.port)
    }

    /// `postgres --version`.
    pub fn version(&self) -> String {
        Command::new(self.bindir.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data.display().to_string(), "-m", "immediate", "-w", "stop"]);
    }
}

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
