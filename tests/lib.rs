//! End-to-end test support: start the real `nowdb` binary on an ephemeral loopback port with
//! a temporary data directory, connect to it, and stop it (gracefully or with SIGKILL).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod postgres;
pub mod slt;

/// Path of the `nowdb` binary under test: `$NOWDB_BIN`, or `nowdb` beside the test binary's
/// `deps/` folder (the workspace's target profile directory).
pub fn nowdb_binary() -> PathBuf {
    if let Ok(p) = std::env::var("NOWDB_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target profile directory");
    let bin = profile_dir.join("nowdb");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build --bin nowdb`) or set NOWDB_BIN",
        bin.display()
    );
    bin
}

/// `tests/tls`: a self-signed certificate for `localhost` / 127.0.0.1 and its key (test only).
pub fn tls_fixtures() -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tls");
    (dir.join("server.crt"), dir.join("server.key"))
}

/// `tests/models`: the ONNX fixtures (`make_fixtures.py`), every test server's `--model-dir`.
pub fn model_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A running `nowdb serve`.
pub struct TestServer {
    child: Option<Child>,
    /// Port it listens on (127.0.0.1).
    pub port: u16,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    log: PathBuf,
}

impl TestServer {
    /// Starts a server on a new temporary data directory.
    pub fn start() -> Self {
        Self::start_env(&[])
    }

    /// Starts a server on a new temporary data directory with extra environment variables
    /// (every `nowdb serve` flag has a `NOWDB_*` variable).
    pub fn start_env(env: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("data");
        let mut s = Self::start_with(&dir, &model_fixtures(), env);
        s._temp = Some(temp);
        s
    }

    /// Starts a server on `data_dir` (kept after the server stops).
    pub fn start_in(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &model_fixtures(), &[])
    }

    /// Starts a server on `data_dir` reading model files from `model_dir`, with extra
    /// environment variables.
    pub fn start_with(data_dir: &Path, model_dir: &Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = data_dir.with_extension(format!("{port}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(nowdb_binary())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir)
            .arg("--model-dir")
            .arg(model_dir)
            .arg("--export-dir")
            .arg(data_dir.with_extension("exports"))
            .env("NOWDB_LOG", "info")
            // Many servers run at once: the metrics endpoint only where a test asks for it.
            .env("NOWDB_HTTP_LISTEN", "off")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn nowdb");
        let mut server = Self { child: Some(child), port, data_dir: data_dir.to_path_buf(), _temp: None, log };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("nowdb exited early ({status}); log:\n{}", self.log_text());
                }
            }
            assert!(Instant::now() < deadline, "nowdb did not start; log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where `COPY ... TO 'file'` writes (beside the data directory).
    pub fn export_dir(&self) -> PathBuf {
        self.data_dir.with_extension("exports")
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A libpq-style connection string.
    pub fn conn_str(&self) -> String {
        format!("host=127.0.0.1 port={} user=nowdb dbname=nowdb", self.port)
    }

    /// Connects with tokio-postgres; the connection task runs in the background.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.conn_str(), tokio_postgres::NoTls)
            .await
            .expect("connect to nowdb");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return false };
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}
