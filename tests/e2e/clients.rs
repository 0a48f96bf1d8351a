//! Real client programs against the real server: psql, Python drivers and tools (psycopg 3,
//! asyncpg, pg8000, SQLAlchemy, pandas, polars), pgjdbc, node-postgres, and the introspection
//! queries of DBeaver, Grafana and Metabase replayed in both protocols.

use std::path::PathBuf;
use std::process::Command;

use nowdb_tests::TestServer;

fn psql(server: &TestServer, args: &[&str]) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "nowdb", "-d", "nowdb", "-X", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql must be installed (apt-get install postgresql-client)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "psql {args:?} failed:\n{text}");
    text
}

#[test]
fn psql_meta_commands_and_script() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("setup.sql");
    std::fs::write(
        &script,
        "CREATE TABLE users (user_id BIGINT PRIMARY KEY, country TEXT, score REAL);\n\
         CREATE TABLE events (user_id BIGINT NOT NULL, amount DOUBLE PRECISION, merchant TEXT, ts TIMESTAMP NOT NULL);\n\
         INSERT INTO users VALUES (1, 'FR', 0.5), (2, 'US', 0.9);\n\
         SELECT country, score FROM users ORDER BY user_id;\n",
    )
    .unwrap();
    let out = psql(&server, &["-f", script.to_str().unwrap()]);
    assert!(out.contains("FR") && out.contains("0.9"), "{out}");

    let out = psql(&server, &["-c", "\\dt"]);
    assert!(out.contains("users") && out.contains("events") && out.contains("table"), "{out}");
    let out = psql(&server, &["-c", "\\d users"]);
    assert!(out.contains("Table \"public.users\""), "{out}");
    assert!(out.contains("user_id") && out.contains("bigint") && out.contains("not null"), "{out}");
    assert!(out.contains("score") && out.contains("real"), "{out}");
    let out = psql(&server, &["-c", "\\d events"]);
    assert!(out.contains("double precision") && out.contains("timestamp without time zone"), "{out}");
    let out = psql(&server, &["-c", "\\l"]);
    assert!(out.contains("nowdb"), "{out}");
    psql(&server, &["-c", "CREATE MATERIALIZED VIEW user_spend AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM events GROUP BY user_id"]);
    let out = psql(&server, &["-c", "\\dm"]);
    assert!(out.contains("user_spend") && out.contains("materialized view"), "{out}");
    let out = psql(&server, &["-c", "\\dv"]);
    assert!(!out.contains("user_spend"), "a materialized view is not a plain view: {out}");
    let out = psql(&server, &["-c", "\\d"]);
    assert!(out.contains("users") && out.contains("user_spend"), "{out}");
    let out = psql(&server, &["-c", "\\dn"]);
    assert!(out.contains("public"), "{out}");
    // A model is a function: \df lists it with its signature.
    psql(&server, &["-c", "CREATE MODEL linear FROM 'linear.onnx'"]);
    let out = psql(&server, &["-c", "\\df"]);
    assert!(out.contains("linear") && out.contains("3 x real") && out.contains("func"), "{out}");
    psql(&server, &["-c", "CREATE TABLE feats (id BIGINT PRIMARY KEY, emb REAL[], price NUMERIC(10,2))"]);
    let out = psql(&server, &["-c", "\\d feats"]);
    assert!(out.contains("real[]") && out.contains("numeric(10,2)"), "declared types: {out}");
    // \d shows the primary key index, \di lists it.
    let out = psql(&server, &["-c", "\\d users"]);
    assert!(out.contains("\"users_pkey\" PRIMARY KEY, btree (user_id)"), "{out}");
    let out = psql(&server, &["-c", "\\di"]);
    assert!(out.contains("users_pkey") && out.contains("index"), "{out}");
    let out = psql(&server, &["-c", "\\du"]);
    assert!(out.contains("nowdb") && out.contains("Superuser"), "{out}");
    let out = psql(&server, &["-c", "\\dt+"]);
    assert!(out.contains("users") && out.contains("permanent"), "{out}");
    let out = psql(&server, &["-c", "\\d+ users"]);
    assert!(out.contains("Storage") && out.contains("users_pkey"), "{out}");
    let out = psql(&server, &["-c", "\\x", "-c", "SELECT user_id, country FROM users WHERE user_id = 1"]);
    assert!(out.contains("-[ RECORD 1 ]") && out.contains("country | FR"), "{out}");

    // \copy in both directions.
    let csv = dir.path().join("ev.csv");
    std::fs::write(&csv, "user_id,amount,merchant,ts\n1,2.5,\"a,b\",2024-01-01 00:00:00\n2,,c,2024-01-02 00:00:00\n").unwrap();
    let out = psql(&server, &["-c", &format!("\\copy events FROM '{}' WITH (FORMAT csv, HEADER)", csv.display())]);
    assert!(out.contains("COPY 2"), "{out}");
    let back = dir.path().join("back.csv");
    psql(&server, &["-c", &format!("\\copy (SELECT user_id, merchant FROM events ORDER BY user_id) TO '{}' CSV", back.display())]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "1,\"a,b\"\n2,c\n");
    // An error in a script stops it with a message, like Postgres.
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "nowdb", "-X", "-c", "SELECT * FROM missing"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("relation \"missing\" does not exist"));
}

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("NOWDB_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    venv.exists().then_some(venv)
}

#[test]
fn psycopg3_with_and_without_prepared_statements() {
    let Some(python) = python() else {
        panic!("no Python with psycopg: run scripts/setup.sh (creates .venv) or set NOWDB_PYTHON");
    };
    let server = TestServer::start();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/psycopg_check.py");
    let out = Command::new(python).arg(script).arg(server.conn_str()).output().expect("run python");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "psycopg check failed:\n{text}\nserver log:\n{}", server.log_text());
    assert!(text.contains("psycopg ok"), "{text}");
}

/// Runs a client program against a fresh server; it exits non-zero on any failure.
fn run_client(what: &str, program: &str, args: &[&str], with_server: impl FnOnce(&TestServer) -> Vec<String>) {
    let server = TestServer::start();
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(with_server(&server));
    let out = Command::new(program)
        .args(&all)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {program} ({e}); scripts/setup.sh installs it"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed:\n{text}\nserver log:\n{}", server.log_text());
}

fn python_path() -> String {
    python().expect("no Python venv: run scripts/setup.sh").display().to_string()
}

#[test]
fn python_drivers_orms_and_dataframes() {
    run_client("asyncpg/pg8000/SQLAlchemy/pandas/polars", &python_path(), &["tests/python/clients_check.py"], |s| vec![s.conn_str()]);
}

#[test]
fn bi_tools_introspection_replayed() {
    run_client("DBeaver/Grafana/Metabase replay", &python_path(), &["tests/python/bi_replay.py"], |s| vec![s.conn_str()]);
}

#[test]
fn pgjdbc() {
    run_client(
        "pgjdbc",
        "java",
        &["-cp", "/usr/share/java/postgresql.jar", "tests/clients/jdbc/JdbcCheck.java", "127.0.0.1"],
        |s| vec![s.port.to_string()],
    );
}

#[test]
fn node_postgres() {
    run_client("node-postgres", "node", &["tests/clients/node/check.js", "127.0.0.1"], |s| vec![s.port.to_string()]);
}
