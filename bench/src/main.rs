//! nowdb-bench: nowdb side by side with PostgreSQL and Redis, same machine, same data, same
//! client library, one run. Prints and appends a Markdown table of throughput and latency
//! percentiles with each system's ratio to nowdb (ratios within one run are what count on a
//! shared, noisy machine).

mod measure;
mod peers;
mod report;
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
}

fn scale(arg: ScaleArg) -> Scale {
    match arg {
        ScaleArg::Small => Scale { keys: 20_000, events: 200_000, lookup_secs: 5, freshness_samples: 200 },
        ScaleArg::Full => Scale { keys: 1_000_000, events: 5_000_000, lookup_secs: 30, freshness_samples: 2_000 },
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
    eprintln!("starting nowdb, PostgreSQL, Redis ...");
    let nowdb = peers::Nowdb::start(&args.nowdb)?;
    let pg = peers::Postgres::start()?;
    let redis = peers::Redis::start()?;
    let systems = [
        PgSystem { name: "nowdb", conn: nowdb.conn_str() },
        PgSystem { name: "postgres", conn: pg.conn_str() },
    ];
    let mut results = Vec::new();
    let mut notes = Vec::new();

    eprintln!("loading {} feature rows ...", s.keys);
    for sys in &systems {
        let t = workloads::load_features(sys, s).await?;
        notes.push(format!("load of {} 10-column feature rows by COPY: {} {:.1} s", s.keys, sys.name, t.as_secs_f64()));
    }
    let t = workloads::load_redis(redis.port, s).await?;
    notes.push(format!("load into Redis hashes (pipelined HSET): {:.1} s", t.as_secs_f64()));

    for conns in [1, 16] {
        eprintln!("lookups from {conns} connection(s) ...");
        for sys in &systems {
            results.push(workloads::lookup(sys, s, conns).await?);
        }
        results.push(workloads::lookup_redis(redis.port, s, conns).await?);
    }

    eprintln!("ingest ...");
    let no_views = "event table; continuous views not implemented yet";
    let trigger = "events + per-row trigger upserting user_stats";
    workloads::create_events(&systems[0], false).await?;
    workloads::create_events(&systems[1], true).await?;
    results.push(workloads::ingest_copy(&systems[0], s, no_views).await?);
    results.push(workloads::ingest_copy(&systems[1], s, trigger).await?);
    results.push(workloads::ingest_insert(&systems[0], s, no_views).await?);
    results.push(workloads::ingest_insert(&systems[1], s, trigger).await?);

    eprintln!("freshness ...");
    let c = tokio_postgres::connect(&systems[0].conn, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
    tokio::spawn(c.1);
    c.0.batch_execute("CREATE TABLE user_stats (user_id BIGINT PRIMARY KEY, n BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL)")
        .await
        .map_err(|e| e.to_string())?;
    results.push(
        workloads::freshness(
            &systems[0],
            s,
            "INSERT INTO user_stats VALUES ($1, 1, $2) ON CONFLICT (user_id) DO UPDATE SET n = user_stats.n + 1, total = user_stats.total + excluded.total",
            "SELECT total FROM user_stats WHERE user_id = $1",
            "application upsert into a keyed table (views not implemented yet)",
        )
        .await?,
    );
    results.push(
        workloads::freshness(
            &systems[1],
            s,
            "INSERT INTO events VALUES ($1, $2, now())",
            "SELECT total FROM user_stats WHERE user_id = $1",
            trigger,
        )
        .await?,
    );

    let info = report::RunInfo {
        scale: scale_name.into(),
        nowdb_build: args.nowdb_build.clone(),
        versions: vec![pg.version(), peers::Redis::version()],
        notes,
    };
    let md = report::markdown(&results, &info);
    println!("{md}");
    let mut existing = std::fs::read_to_string(&args.report).unwrap_or_default();
    existing.push_str(&md);
    std::fs::write(&args.report, existing).map_err(|e| format!("{}: {e}", args.report.display()))?;
    report::write_curves(&results, &args.curves).map_err(|e| e.to_string())?;
    Ok(())
}
