//! nowdb-bench: nowdb side by side with PostgreSQL and Redis, same machine, same data, same
//! client library, one run. Prints and appends a Markdown table of throughput and latency
//! percentiles with each system's ratio to nowdb (ratios within one run are what count on a
//! shared, noisy machine).

mod history;
mod kafka;
mod measure;
mod models;
mod peers;
mod report;
mod load;
mod workloads;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use workloads::{PgSystem, Scale};

#[derive(Clone, Copy, ValueEnum)]
enum ScaleArg {
    /// Minutes on 2 cores; CI's smoke test.
    Small,
    /// The numbers for reports: 1M keys, 5M events.
    Full,
}

#[derive(Parser)]
#[command(about = "nowdb vs PostgreSQL vs Redis on one machine")]
struct Args {
    /// Data size and durations.
    #[arg(long, value_enum, default_value_t = ScaleArg::Small)]
    scale: ScaleArg,
    /// The nowdb binary to start.
    #[arg(long)]
    nowdb: PathBuf,
    /// Build profile of that binary, for the report.
    #[arg(long, default_value = "release")]
    nowdb_build: String,
    /// Markdown file the results are appended to.
    #[arg(long)]
    report: PathBuf,
    /// CSV of latency percentiles, for the chart.
    #[arg(long)]
    curves: PathBuf,
    /// Workloads to run.
    #[arg(long, value_delimiter = ',', default_value = "lookup,ingest,view_lookup,freshness,model,history,kafka,load")]
    workloads: Vec<String>,
    /// Systems to run them on.
    #[arg(long, value_delimiter = ',', default_value = "nowdb,postgres,redis")]
    systems: Vec<String>,
    /// The Python with onnxruntime and duckdb, for the model and point-in-time baselines.
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// A command nowdb is started under, e.g. `perf record -g -o nowdb.data --` (profiling).
    #[arg(long, allow_hyphen_values = true)]
    nowdb_wrapper: Option<String>,
}

fn scale(arg: ScaleArg) -> Scale {
    match arg {
        ScaleArg::Small => Scale {
            keys: 20_000,
            events: 200_000,
            lookup_secs: 5,
            freshness_samples: 200,
            score_rows: 100_000,
            pit_versions: 100_000,
            pit_keys: 1_000,
            pit_labels: 10_000,
            load_secs: 15,
        },
        ScaleArg::Full => Scale {
            keys: 1_000_000,
            events: 5_000_000,
            lookup_secs: 30,
            freshness_samples: 2_000,
            score_rows: 1_000_000,
            pit_versions: 1_000_000,
            pit_keys: 10_000,
            pit_labels: 100_000,
            load_secs: 60,
        },
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nowdb-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let s = scale(args.scale);
    let scale_name = match args.scale {
        ScaleArg::Small => "small",
        ScaleArg::Full => "full",
    };
    let want = |name: &str| args.systems.iter().any(|x| x == name);
    let workload = |name: &str| args.workloads.iter().any(|x| x == name);
    eprintln!("starting {} ...", args.systems.join(", "));
    let wrapper: Vec<String> = args.nowdb_wrapper.as_deref().unwrap_or("").split_whitespace().map(String::from).collect();
    let nowdb = peers::Nowdb::start(&args.nowdb, &wrapper)?;
    let pg = if want("postgres") { Some(peers::Postgres::start()?) } else { None };
    let redis = if want("redis") { Some(peers::Redis::start()?) } else { None };
    let mut systems = vec![PgSystem { name: "nowdb", conn: nowdb.conn_str() }];
    if let Some(pg) = &pg {
        systems.push(PgSystem { name: "postgres", conn: pg.conn_str() });
    }
    let mut results = Vec::new();
    let mut notes = Vec::new();

    // Batch scoring first, while no other load's background work (RocksDB compactions after
    // the big loads) competes with nowdb for the cores; the Python baseline has none either.
    if workload("model") {
        eprintln!("model batch scoring ...");
        models::setup(&systems[0], s).await?;
        results.extend(models::batch_scoring(&systems[0], s, &args.python).await?);
    }

    if workload("lookup") {
        eprintln!("loading {} feature rows ...", s.keys);
        for sys in &systems {
            let t = workloads::load_features(sys, s).await?;
            notes.push(format!("load of {} 10-column feature rows by COPY: {} {:.1} s", s.keys, sys.name, t.as_secs_f64()));
        }
        if let Some(r) = &redis {
            let t = workloads::load_redis(r.port, s).await?;
            notes.push(format!("load into Redis hashes (pipelined HSET): {:.1} s", t.as_secs_f64()));
        }
        for conns in [1, 16] {
            eprintln!("lookups from {conns} connection(s) ...");
            for sys in &systems {
                results.push(workloads::lookup(sys, s, conns).await?);
            }
            if let Some(r) = &redis {
                results.push(workloads::lookup_redis(r.port, s, conns).await?);
            }
        }
    }

    let trigger = "events + per-row trigger upserting user_stats";
    let note_of = |i: usize| if i > 0 { trigger } else { workloads::NOWDB_VIEWS_NOTE };
    let needs_events = workload("ingest") || workload("view_lookup") || workload("freshness") || workload("model");
    if needs_events {
        for (i, sys) in systems.iter().enumerate() {
            workloads::create_events(sys, i > 0).await?;
        }
    }
    if workload("ingest") {
        eprintln!("ingest ...");
        for (i, sys) in systems.iter().enumerate() {
            results.push(workloads::ingest_copy(sys, s, note_of(i)).await?);
            results.push(workloads::ingest_insert(sys, s, note_of(i)).await?);
        }
    }

    if (workload("view_lookup") || workload("model")) && !workload("ingest") {
        for sys in &systems {
            workloads::ingest_copy(sys, s, "").await?;
        }
    }
    if workload("view_lookup") {
        for conns in [1, 16] {
            eprintln!("view lookups from {conns} connection(s) ...");
            for sys in &systems {
                results.push(workloads::view_lookup(sys, s, conns).await?);
            }
        }
    }

    if workload("freshness") {
        eprintln!("freshness ...");
        for (i, sys) in systems.iter().enumerate() {
            results.push(
                workloads::freshness(
                    sys,
                    s,
                    "INSERT INTO events VALUES ($1, $2, now())",
                    "SELECT total FROM user_stats WHERE user_id = $1",
                    note_of(i),
                )
                .await?,
            );
        }
    }

    if workload("model") {
        let nowdb = &systems[0];
        for conns in [1, 16] {
            eprintln!("request-time scoring from {conns} connection(s) ...");
            results.push(models::request_time(nowdb, s, conns).await?);
        }
    }

    if workload("history") {
        eprintln!("history: write-path overhead ...");
        results.extend(history::write_overhead(&systems[0], s).await?);
        eprintln!("history: point-in-time join vs DuckDB ...");
        results.extend(history::pit_join(&systems[0], s, &args.python, &nowdb.export_dir()).await?);
    }

    if workload("kafka") {
        eprintln!("Kafka source ingest ...");
        results.extend(kafka::ingest(&systems[0], s).await?);
    }

    if workload("load") {
        eprintln!("load test: 64 connections for {} s ...", s.load_secs);
        results.extend(load::run(&systems[0], s.load_secs, nowdb.pid()).await?);
    }

    let mut versions = Vec::new();
    if let Some(pg) = &pg {
        versions.push(pg.version());
    }
    if redis.is_some() {
        versions.push(peers::Redis::version());
    }
    let info = report::RunInfo { scale: scale_name.into(), nowdb_build: args.nowdb_build.clone(), versions, notes };
    let md = report::markdown(&results, &info);
    println!("{md}");
    let mut existing = std::fs::read_to_string(&args.report).unwrap_or_default();
    existing.push_str(&md);
    std::fs::write(&args.report, existing).map_err(|e| format!("{}: {e}", args.report.display()))?;
    report::write_curves(&results, &args.curves).map_err(|e| e.to_string())?;
    Ok(())
}
