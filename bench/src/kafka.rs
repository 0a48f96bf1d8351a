//! Kafka ingest: messages already in a topic, read by a nowdb source into an event table with
//! a grouped view over it; throughput from `CREATE TABLE` until the table holds them all.
//!
//! The broker is `NOWDB_TEST_KAFKA` (the real one `scripts/test.sh` starts) or librdkafka's
//! mock cluster in this process, which nowdb reaches over loopback TCP like any broker.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

use crate::measure::Result;
use crate::workloads::{connect, PgSystem, Scale};

const PARTITIONS: i32 = 4;
/// librdkafka's mock cluster keeps the last 5 MB of each partition: 200,000 of these messages
/// fit in 4 partitions.
const MOCK_EVENTS: u64 = 200_000;

/// Runs the workload against nowdb; returns events/s.
pub async fn ingest(sys: &PgSystem, scale: Scale) -> std::result::Result<Vec<Result>, String> {
    let external = std::env::var("NOWDB_TEST_KAFKA").ok().filter(|b| !b.is_empty());
    let mock = match external {
        Some(_) => None,
        None => Some(MockCluster::new(1).map_err(|e| format!("mock cluster: {e}"))?),
    };
    let (bootstrap, broker) = match (&mock, external) {
        (Some(m), _) => (m.bootstrap_servers(), "librdkafka mock cluster"),
        (None, b) => (b.unwrap_or_default(), "Kafka broker"),
    };
    let topic = format!("bench-{}", std::process::id());
    match &mock {
        Some(m) => m.create_topic(&topic, PARTITIONS, 1).map_err(|e| e.to_string())?,
        None => {
            let admin: AdminClient<_> = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().map_err(|e| e.to_string())?;
            let created = admin.create_topics(&[NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1))], &AdminOptions::new()).await.map_err(|e| e.to_string())?;
            for t in created {
                t.map_err(|(t, e)| format!("create topic {t}: {e}"))?;
            }
        }
    }
    let events = if mock.is_some() { scale.events.min(MOCK_EVENTS) } else { scale.events };
    let users = scale.keys.max(1);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .map_err(|e| e.to_string())?;
    tokio::task::block_in_place(|| -> std::result::Result<(), String> {
        for i in 0..events {
            let key = (i % users).to_string();
            let payload = format!(r#"{{"user_id": {key}, "amount": {}, "ts": "2026-01-03T00:00:{:02}Z"}}"#, (i % 997) as f64 / 10.0, i % 60);
            loop {
                match producer.send(BaseRecord::to(&topic).key(&key).payload(&payload)) {
                    Ok(()) => break,
                    Err(_) => producer.poll(Duration::from_millis(10)),
                }
            }
        }
        producer.flush(Duration::from_secs(120)).map_err(|e| e.to_string())
    })?;
    let c = connect(&sys.conn).await?;
    let start = Instant::now();
    c.batch_execute(&format!(
        "CREATE TABLE kafka_events (user_id bigint NOT NULL, amount double precision, ts timestamptz)
             WITH (connector = 'kafka', topic = '{topic}', bootstrap_servers = '{bootstrap}');
         CREATE MATERIALIZED VIEW kafka_user_stats AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM kafka_events GROUP BY user_id;"
    ))
    .await
    .map_err(|e| e.to_string())?;
    let deadline = start + Duration::from_secs(600);
    loop {
        let n: i64 = c.query_one("SELECT count(*) FROM kafka_events", &[]).await.map_err(|e| e.to_string())?.get(0);
        if n as u64 >= events {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("Kafka ingest: {n} of {events} events after 600 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    let in_view: i64 = c.query_one("SELECT sum(n)::bigint FROM kafka_user_stats", &[]).await.map_err(|e| e.to_string())?.get(0);
    if in_view as u64 != events {
        return Err(format!("Kafka ingest: the view counted {in_view} of {events} events"));
    }
    let keys = events.min(users);
    let note = format!("{events} JSON messages over {keys} keys in {PARTITIONS} partitions ({broker}) into an event table + a grouped view, exactly once");
    Ok(vec![Result::throughput("ingest Kafka source", sys.name, events, elapsed, "events/s", &note)])
}
