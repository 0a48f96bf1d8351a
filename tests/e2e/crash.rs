//! The crash test: writers stream acknowledged INSERT and COPY batches into an event table and
//! a keyed table that feed a grouped view, a join view and a model view, while the server is
//! SIGKILLed at random moments, twelve times, and restarted. After every restart: every
//! acknowledged row is there, none is there twice, a batch whose acknowledgement was lost is
//! all there or not at all, and every view equals its query recomputed in batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use nowdb_tests::TestServer;
use tokio_postgres::Client;

const KILLS: usize = 12;
const BATCH: i64 = 25;

const SCHEMA: &str = "
    CREATE TABLE ev (id bigint NOT NULL, user_id bigint NOT NULL, amount double precision NOT NULL);
    CREATE TABLE acct (user_id bigint PRIMARY KEY, tier bigint NOT NULL);
    CREATE MODEL lin FROM 'linear.onnx';
    CREATE MATERIALIZED VIEW per_user AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM ev GROUP BY user_id;
    CREATE MATERIALIZED VIEW per_tier AS SELECT a.tier, count(*) AS n, sum(e.amount) AS total FROM ev e JOIN acct a ON a.user_id = e.user_id GROUP BY a.tier;
    CREATE MATERIALIZED VIEW scored AS SELECT user_id, n, lin(n::real, total::real, 1.0) AS score FROM per_user;
";

/// Each view and the batch query it must equal (integer amounts keep the sums exact).
const CHECKS: [(&str, &str, &str); 3] = [
    (
        "per_user",
        "SELECT user_id, n, total FROM per_user ORDER BY user_id",
        "SELECT user_id, count(*), sum(amount) FROM ev GROUP BY user_id ORDER BY user_id",
    ),
    (
        "per_tier",
        "SELECT tier, n, total FROM per_tier ORDER BY tier",
        "SELECT a.tier, count(*), sum(e.amount) FROM ev e JOIN acct a ON a.user_id = e.user_id GROUP BY a.tier ORDER BY a.tier",
    ),
    (
        "scored",
        "SELECT user_id, n, score FROM scored ORDER BY user_id",
        "SELECT user_id, count(*), lin(count(*)::real, sum(amount)::real, 1.0) FROM ev GROUP BY user_id ORDER BY user_id",
    ),
];

/// What a writer sent: acknowledged batches and the one (at most) in flight at the kill.
#[derive(Default)]
struct Sent {
    acked: Vec<(i64, i64)>,
    in_doubt: Option<(i64, i64)>,
}

fn batch_rows(first: i64) -> impl Iterator<Item = (i64, i64, i64)> {
    (first..first + BATCH).map(|id| (id, id % 17, id % 10))
}

async fn insert_batch(c: &Client, first: i64) -> Result<(), tokio_postgres::Error> {
    let values: Vec<String> = batch_rows(first).map(|(id, u, a)| format!("({id}, {u}, {a})")).collect();
    c.batch_execute(&format!("INSERT INTO ev VALUES {}", values.join(", "))).await
}

async fn copy_batch(c: &Client, first: i64) -> Result<(), tokio_postgres::Error> {
    let sink = c.copy_in("COPY ev FROM STDIN").await?;
    futures::pin_mut!(sink);
    let text: String = batch_rows(first).map(|(id, u, a)| format!("{id}\t{u}\t{a}\n")).collect();
    sink.send(Bytes::from(text)).await?;
    sink.finish().await.map(|_| ())
}

/// Writes batches until `stop` or an error (the kill); `copy` picks COPY over INSERT.
async fn writer(c: Client, base: i64, copy: bool, stop: Arc<AtomicBool>) -> Sent {
    let mut sent = Sent::default();
    let mut first = base;
    while !stop.load(Ordering::Relaxed) {
        let result = match copy {
            true => copy_batch(&c, first).await,
            false => insert_batch(&c, first).await,
        };
        match result {
            Ok(()) => sent.acked.push((first, first + BATCH)),
            Err(_) => {
                sent.in_doubt = Some((first, first + BATCH));
                break;
            }
        }
        // Keyed-table upserts between batches (they feed the join view).
        let user = first % 17;
        if c.execute("INSERT INTO acct VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier", &[&user, &(first % 3)])
            .await
            .is_err()
        {
            break;
        }
        first += BATCH;
    }
    sent
}

async fn text_rows(c: &Client, sql: &str) -> Vec<Vec<String>> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_string()).collect()),
            _ => None,
        })
        .collect()
}

async fn verify(c: &Client, acked: &[(i64, i64)], in_doubt: &[(i64, i64)], round: usize) {
    let ids: Vec<i64> = c.query("SELECT id FROM ev", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "round {round}: duplicated rows");
    for (lo, hi) in acked {
        for id in *lo..*hi {
            assert!(distinct.contains(&id), "round {round}: acknowledged row {id} lost");
        }
    }
    for (lo, hi) in in_doubt {
        let present = (*lo..*hi).filter(|id| distinct.contains(id)).count() as i64;
        assert!(present == 0 || present == hi - lo, "round {round}: batch {lo}..{hi} is half there ({present} rows)");
    }
    let known: BTreeSet<i64> = acked.iter().chain(in_doubt).flat_map(|(lo, hi)| *lo..*hi).collect();
    assert!(distinct.is_subset(&known), "round {round}: rows nobody wrote");
    for (view, read, recompute) in CHECKS {
        let (got, want) = (text_rows(c, read).await, text_rows(c, recompute).await);
        assert_eq!(got, want, "round {round}: view {view} differs from its query");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_streaming_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start_in(&data);
    server.connect().await.batch_execute(SCHEMA).await.unwrap();
    let mut acked: Vec<(i64, i64)> = Vec::new();
    let mut in_doubt: Vec<(i64, i64)> = Vec::new();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut per_round = BTreeMap::new();
    for round in 0..KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..3i64 {
            let c = server.connect().await;
            let base = (round as i64 * 3 + w) * 10_000_000;
            tasks.push(tokio::spawn(writer(c, base, w == 2, stop.clone())));
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(150 + rng % 600)).await;
        server.kill();
        stop.store(true, Ordering::Relaxed);
        let mut round_acked = 0;
        for t in tasks {
            let sent = tokio::time::timeout(Duration::from_secs(30), t).await.expect("writer stuck after the kill").unwrap();
            round_acked += sent.acked.len();
            acked.extend(sent.acked);
            in_doubt.extend(sent.in_doubt);
        }
        per_round.insert(round, round_acked);
        server = TestServer::start_in(&data);
        let c = server.connect().await;
        verify(&c, &acked, &in_doubt, round).await;
    }
    let total: usize = per_round.values().sum();
    assert!(total >= KILLS, "the writers made progress between kills: {per_round:?}");
    eprintln!("crash test: {KILLS} SIGKILLs, {total} acknowledged batches of {BATCH} rows, per round {per_round:?}");
}
