//! A real PostgreSQL server for the differential tests and the benchmarks: `initdb` in a
//! temporary directory, `pg_ctl start` on a free loopback port, stopped on drop.

use std::path::PathBuf;
use std::process::Command;

use crate::free_port;

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
        pg.run("initdb", &["-A", "trust", "-U", "nowdb", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "-D", &pg.data.display().to_string()])?;
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c shared_buffers=256MB -c max_connections=100 -c timezone=UTC",
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
        format!("host=127.0.0.1 port={} user=nowdb dbname=postgres", self.port)
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

