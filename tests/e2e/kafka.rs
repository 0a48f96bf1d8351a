//! Kafka sources and sinks against a broker: the real Apache Kafka broker the test script
//! starts (`scripts/kafka.sh`, address in `NOWDB_TEST_KAFKA`), or, where its jars cannot be
//! fetched, librdkafka's mock cluster (a Kafka protocol implementation in this process that
//! nowdb reaches over loopback TCP like any broker).
//!
//! Ingest into a table and views over it, malformed messages, the system tables, a view sunk
//! to a topic as upserts, SIGKILL of nowdb mid-stream (every message counted exactly once),
//! and two nodes in shard mode and in replica mode.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nowdb_tests::TestServer;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio_postgres::Client;

/// The broker the tests talk to.
struct Kafka {
    _mock: Option<MockCluster<'static, DefaultProducerContext>>,
    bootstrap: String,
}

static TOPICS: AtomicUsize = AtomicUsize::new(0);

impl Kafka {
    fn start() -> Self {
        match std::env::var("NOWDB_TEST_KAFKA") {
            Ok(b) if !b.is_empty() => Self { _mock: None, bootstrap: b },
            _ => {
                let mock = MockCluster::new(1).expect("librdkafka mock cluster");
                let bootstrap = mock.bootstrap_servers();
                Self { _mock: Some(mock), bootstrap }
            }
        }
    }

    /// A new topic of `partitions` partitions (names unique per test run).
    async fn topic(&self, prefix: &str, partitions: i32) -> String {
        let name = format!("{prefix}-{}-{}", std::process::id(), TOPICS.fetch_add(1, Ordering::Relaxed));
        match &self._mock {
            Some(m) => m.create_topic(&name, partitions, 1).expect("create mock topic"),
            None => {
                use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
                let admin: AdminClient<_> = ClientConfig::new().set("bootstrap.servers", &self.bootstrap).create().expect("admin client");
                let r = admin.create_topics(&[NewTopic::new(&name, partitions, TopicReplication::Fixed(1))], &AdminOptions::new()).await.expect("create topic");
                for t in r {
                    t.expect("topic created");
                }
            }
        }
        name
    }

    /// A producer partitioning by key like Kafka's Java client (murmur2).
    fn producer(&self) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "2")
            .create()
            .expect("producer")
    }

    /// `WITH (...)` options of a source on `topic`.
    fn source(&self, topic: &str, extra: &str) -> String {
        format!("connector = 'kafka', topic = '{topic}', bootstrap_servers = '{}'{extra}", self.bootstrap)
    }
}

/// Sends `payload` with `key`; returns its partition.
async fn send(p: &FutureProducer, topic: &str, key: &str, payload: &str) -> i32 {
    let d = p.send(FutureRecord::to(topic).key(key).payload(payload), Duration::from_secs(10)).await.map_err(|(e, _)| e).expect("delivered");
    d.partition
}

async fn count(c: &Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

/// Waits until `sql` (one bigint) returns `want`.
async fn wait_for(c: &Client, sql: &str, want: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = count(c, sql).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {sql} gave {got}, waited for {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(key, n, total)` rows of a per-user aggregate query.
async fn per_user(c: &Client, sql: &str) -> Vec<(String, i64, i64)> {
    c.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

const EVENTS: &str = "id bigint NOT NULL, user_key text NOT NULL, amount bigint NOT NULL, ts timestamptz";

fn event(id: i64) -> (String, String) {
    let key = format!("u{}", id % 13);
    (key.clone(), format!(r#"{{"id": {id}, "user_key": "{key}", "amount": {}, "ts": "2026-11-29T10:00:{:02}Z"}}"#, id % 7, id % 60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_source_feeds_views_keeps_dead_letters_and_sinks_upserts() {
    let kafka = Kafka::start();
    let topic = kafka.topic("events", 3).await;
    let producer = kafka.producer();
    for id in 0..300 {
        let (key, payload) = event(id);
        send(&producer, &topic, &key, &payload).await;
    }
    // Malformed: not JSON, a wrong type, a missing NOT NULL field, not an object.
    let bad = [r#"{"id": 1000, "user_key": "u1""#, r#"{"id": "ten", "user_key": "u1", "amount": 1}"#, r#"{"id": 1001, "amount": 1}"#, "[1, 2, 3]"];
    for b in bad {
        send(&producer, &topic, "u1", b).await;
    }

    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute(&format!("CREATE TABLE events ({EVENTS}) WITH ({})", kafka.source(&topic, ", format = 'json'"))).await.unwrap();
    c.batch_execute("CREATE MATERIALIZED VIEW per_user AS SELECT user_key, count(*) AS n, sum(amount) AS total FROM events GROUP BY user_key").await.unwrap();
    wait_for(&c, "SELECT count(*) FROM events", 300, "initial ingest").await;
    wait_for(&c, "SELECT count(*) FROM nowdb_catalog.dead_letters", 4, "dead letters").await;
    let batch = "SELECT user_key, count(*), sum(amount) FROM events GROUP BY user_key ORDER BY user_key";
    assert_eq!(per_user(&c, "SELECT user_key, n, total FROM per_user ORDER BY user_key").await, per_user(&c, batch).await);

    // Every malformed message is kept with its payload and the reason.
    let letters = c.query("SELECT payload, error, partition, message_offset FROM nowdb_catalog.dead_letters ORDER BY payload", &[]).await.unwrap();
    let kept: BTreeSet<String> = letters.iter().map(|r| r.get::<_, String>(0)).collect();
    assert_eq!(kept, bad.iter().map(|s| s.to_string()).collect());
    let errors: Vec<String> = letters.iter().map(|r| r.get(1)).collect();
    assert!(errors.iter().any(|e| e.contains("invalid JSON")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("bigint") && e.contains("ten")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("user_key") && e.contains("not-null")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("not a JSON object")), "{errors:?}");

    // The source's state per partition: positions at the end, nothing lagging, errors counted.
    wait_for(&c, "SELECT count(*) FROM nowdb_catalog.sources WHERE source = 'events' AND lag = 0", 3, "lag").await;
    let rows = c.query("SELECT partition, owned, next_offset, high_watermark, messages, errors, state FROM nowdb_catalog.sources WHERE source = 'events' ORDER BY partition", &[]).await.unwrap();
    assert_eq!(c.query("SHOW SOURCES", &[]).await.unwrap().len(), 3);
    assert_eq!(rows.len(), 3);
    let (mut next_sum, mut messages, mut errors) = (0i64, 0i64, 0i64);
    for r in &rows {
        assert!(r.get::<_, bool>(1));
        assert_eq!(r.get::<_, Option<i64>>(2), r.get::<_, Option<i64>>(3));
        next_sum += r.get::<_, Option<i64>>(2).unwrap_or(0);
        messages += r.get::<_, i64>(4);
        errors += r.get::<_, i64>(5);
        assert_eq!(r.get::<_, String>(6), "running");
    }
    assert_eq!((next_sum, messages, errors), (304, 304, 4));

    // The view stays current as messages arrive.
    for id in 300..400 {
        let (key, payload) = event(id);
        send(&producer, &topic, &key, &payload).await;
    }
    wait_for(&c, "SELECT sum(n)::bigint FROM per_user", 400, "live view").await;
    assert_eq!(count(&c, "SELECT count(*) FROM events").await, 400);
    assert_eq!(per_user(&c, "SELECT user_key, n, total FROM per_user ORDER BY user_key").await, per_user(&c, batch).await);

    // start_offset = 'latest': only what is produced after the source took its partitions.
    c.batch_execute(&format!("CREATE TABLE latest_events ({EVENTS}) WITH ({})", kafka.source(&topic, ", start_offset = 'latest'"))).await.unwrap();
    wait_for(&c, "SELECT count(*) FROM nowdb_catalog.sources WHERE source = 'latest_events' AND owned AND next_offset IS NOT NULL", 3, "latest positions").await;
    for id in 1000..1010 {
        let (key, payload) = event(id);
        send(&producer, &topic, &key, &payload).await;
    }
    wait_for(&c, "SELECT count(*) FROM latest_events", 10, "latest").await;
    assert_eq!(count(&c, "SELECT min(id) FROM latest_events").await, 1000);
    c.batch_execute("DROP TABLE latest_events").await.unwrap();

    // A CSV source into another table.
    let csv_topic = kafka.topic("csv", 1).await;
    for (i, line) in ["1,u1,5,2026-11-29 10:00:00+00", "2,u2,6,", "3,,7,", "x,u3,1,"].iter().enumerate() {
        send(&producer, &csv_topic, &i.to_string(), line).await;
    }
    c.batch_execute(&format!("CREATE TABLE csv_events ({EVENTS}) WITH ({})", kafka.source(&csv_topic, ", format = 'csv'"))).await.unwrap();
    wait_for(&c, "SELECT count(*) FROM csv_events", 2, "CSV ingest").await;
    wait_for(&c, "SELECT count(*) FROM nowdb_catalog.dead_letters WHERE source = 'csv_events'", 2, "CSV dead letters").await;
    assert_eq!(count(&c, "SELECT sum(amount)::bigint FROM csv_events").await, 11);

    // A sink: the view's rows as upserts, keyed by the view's key; a row that leaves the view
    // is a tombstone.
    let out = kafka.topic("per-user-out", 2).await;
    c.batch_execute(&format!("CREATE SINK per_user_out FROM per_user WITH (connector = 'kafka', topic = '{out}', bootstrap_servers = '{}')", kafka.bootstrap)).await.unwrap();
    c.batch_execute("CREATE TABLE accounts (id bigint PRIMARY KEY, tier text NOT NULL);
        INSERT INTO accounts VALUES (1, 'gold'), (2, 'gold'), (3, 'silver');
        CREATE MATERIALIZED VIEW gold AS SELECT id, tier FROM accounts WHERE tier = 'gold'").await.unwrap();
    let gold_out = kafka.topic("gold-out", 1).await;
    c.batch_execute(&format!("CREATE SINK gold_out FROM gold WITH (connector = 'kafka', topic = '{gold_out}', bootstrap_servers = '{}')", kafka.bootstrap)).await.unwrap();
    c.batch_execute("UPDATE accounts SET tier = 'silver' WHERE id = 1; UPDATE accounts SET tier = 'gold' WHERE id = 3").await.unwrap();
    for id in 400..450 {
        let (key, payload) = event(id);
        send(&producer, &topic, &key, &payload).await;
    }
    wait_for(&c, "SELECT sum(n)::bigint FROM per_user", 460, "view after more events").await;
    let view: BTreeMap<String, String> = per_user(&c, "SELECT user_key, n, total FROM per_user")
        .await
        .into_iter()
        .map(|(k, n, t)| (format!(r#"{{"user_key":"{k}"}}"#), format!(r#"{{"user_key":"{k}","n":{n},"total":{t}}}"#)))
        .collect();
    let consumed = consume_until(&kafka, &out, |state| state == &view.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect()).await;
    assert_eq!(consumed.len(), view.len());
    // A projection's rows are keyed by their row id: id 1 left the view (a tombstone under its
    // key), 3 joined it.
    let live = |s: &BTreeMap<String, Option<String>>| s.values().flatten().cloned().collect::<BTreeSet<String>>();
    let want: BTreeSet<String> = [r#"{"id":2,"tier":"gold"}"#, r#"{"id":3,"tier":"gold"}"#].iter().map(|s| s.to_string()).collect();
    let gold = consume_until(&kafka, &gold_out, |s| live(s) == want && s.len() == 3).await;
    assert_eq!(gold.values().filter(|v| v.is_none()).count(), 1, "{gold:?}");
    assert!(gold.keys().all(|k| k.starts_with(r#"{"row":""#)), "{gold:?}");
    let sinks = c.query("SHOW SINKS", &[]).await.unwrap();
    let sinks: Vec<(String, i64, String)> = sinks.iter().map(|r| (r.get(0), r.get(3), r.get(4))).collect();
    assert_eq!(sinks.len(), 2);
    assert_eq!((sinks[0].0.as_str(), sinks[1].0.as_str()), ("gold_out", "per_user_out"));
    assert!(sinks.iter().all(|(_, sent, state)| *sent > 0 && state == "running"), "{sinks:?}");
    let err = c.batch_execute("DROP MATERIALIZED VIEW gold").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("2BP01"), "{err}");
    c.batch_execute("DROP SINK gold_out; DROP MATERIALIZED VIEW gold").await.unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM nowdb_catalog.sinks").await, 1);

    // A restart resumes at the stored positions: nothing read twice, nothing lost.
    drop(c);
    let dir = server.data_dir().to_path_buf();
    let mut server = server;
    assert!(server.terminate());
    let server = TestServer::start_in(&dir);
    let c = server.connect().await;
    for id in 450..500 {
        let (key, payload) = event(id);
        send(&producer, &topic, &key, &payload).await;
    }
    wait_for(&c, "SELECT count(*) FROM events", 510, "after restart").await;
    assert_eq!(count(&c, "SELECT count(DISTINCT id) FROM events").await, 510);
    assert_eq!(count(&c, "SELECT count(*) FROM nowdb_catalog.dead_letters WHERE source = 'events'").await, 4);
    assert_eq!(per_user(&c, "SELECT user_key, n, total FROM per_user ORDER BY user_key").await, per_user(&c, batch).await);

    // Bad definitions are refused with PostgreSQL errors; the connection stays usable.
    for (sql, code) in [
        (format!("CREATE TABLE k1 (a bigint) WITH (connector = 'kafka', topic = '{topic}')"), "22023"),
        (format!("CREATE TABLE k2 (a bigint) WITH ({})", kafka.source(&topic, ", format = 'avro'")), "22023"),
        (format!("CREATE TABLE k3 (a bigint PRIMARY KEY) WITH ({})", kafka.source(&topic, "")), "0A000"),
        (format!("CREATE TABLE k4 (a bigint) WITH (connector = 'pulsar', topic = '{topic}')"), "0A000"),
        (format!("CREATE SINK s1 FROM events WITH (connector = 'kafka', topic = 't', bootstrap_servers = '{}')", kafka.bootstrap), "42809"),
        ("CREATE SINK s2 FROM nope WITH (connector = 'kafka', topic = 't', bootstrap_servers = 'h:1')".to_string(), "42P01"),
        ("DROP SINK nope".to_string(), "42704"),
    ] {
        let err = c.batch_execute(&sql).await.unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some(code), "{sql}: {err}");
    }
    assert_eq!(count(&c, "SELECT count(*) FROM events").await, 510);
}

/// Reads `topic` from the start until the latest value per key (None = tombstone) satisfies
/// `done`; returns that state.
async fn consume_until(kafka: &Kafka, topic: &str, done: impl Fn(&BTreeMap<String, Option<String>>) -> bool) -> BTreeMap<String, Option<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap)
        .set("group.id", format!("test-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let meta = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in meta.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut state = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    tokio::task::block_in_place(|| loop {
        if done(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "sink topic {topic} never reached the view's state; it holds {state:?}");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            let key = String::from_utf8(m.key().expect("sink messages have keys").to_vec()).expect("utf-8 key");
            state.insert(key, m.payload().map(|p| String::from_utf8(p.to_vec()).expect("utf-8 value")));
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_source_is_exactly_once_across_sigkill() {
    const MESSAGES: i64 = 6000;
    let kafka = Kafka::start();
    let topic = kafka.topic("crash", 3).await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let mut server = TestServer::start_in(&dir);
    {
        let c = server.connect().await;
        c.batch_execute(&format!("CREATE TABLE events ({EVENTS}) WITH ({})", kafka.source(&topic, ""))).await.unwrap();
        c.batch_execute("CREATE MATERIALIZED VIEW per_user AS SELECT user_key, count(*) AS n, sum(amount) AS total FROM events GROUP BY user_key").await.unwrap();
    }
    // The producer streams while nowdb is killed and restarted.
    let producer = kafka.producer();
    let t = topic.clone();
    let streaming = tokio::spawn(async move {
        for chunk in 0..(MESSAGES / 100) {
            let sends = (chunk * 100..(chunk + 1) * 100).map(|id| {
                let (key, payload) = event(id);
                let (p, t) = (&producer, &t);
                async move { send(p, t, &key, &payload).await }
            });
            futures::future::join_all(sends).await;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    let mut kills = 0;
    while !streaming.is_finished() || kills < 3 {
        tokio::time::sleep(Duration::from_millis(300 + (kills as u64 * 337) % 600)).await;
        server.kill();
        kills += 1;
        server = TestServer::start_in(&dir);
    }
    streaming.await.unwrap();
    let c = server.connect().await;
    wait_for(&c, "SELECT count(*) FROM events", MESSAGES, "every message after the kills").await;
    // Exactly once: every source offset (one message each) is one row, once.
    assert_eq!(count(&c, "SELECT count(DISTINCT id) FROM events").await, MESSAGES);
    assert_eq!(count(&c, "SELECT sum(next_offset)::bigint FROM nowdb_catalog.sources").await, MESSAGES);
    // The view counts equal the distinct offsets, per key.
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for id in 0..MESSAGES {
        let e = expected.entry(format!("u{}", id % 13)).or_default();
        e.0 += 1;
        e.1 += id % 7;
    }
    let view = per_user(&c, "SELECT user_key, n, total FROM per_user ORDER BY user_key").await;
    assert_eq!(view, expected.into_iter().map(|(k, (n, t))| (k, n, t)).collect::<Vec<_>>(), "after {kills} kills");
    assert!(kills >= 3);
}

/// The partitions a node consumes now.
async fn owned(c: &Client) -> BTreeSet<i32> {
    c.query("SELECT partition FROM nowdb_catalog.sources WHERE owned", &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_shard_and_replica_modes_on_two_nodes() {
    const PARTITIONS: i32 = 4;
    let kafka = Kafka::start();
    let topic = kafka.topic("shard", PARTITIONS).await;
    let group = format!("nowdb-shard-{}", std::process::id());
    let http = nowdb_tests::free_port();
    let a = TestServer::start_env(&[("NOWDB_HTTP_LISTEN", &format!("127.0.0.1:{http}"))]);
    let b = TestServer::start();
    let (ca, cb) = (a.connect().await, b.connect().await);
    let shard = kafka.source(&topic, &format!(", mode = 'shard', group_id = '{group}'"));
    for c in [&ca, &cb] {
        c.batch_execute(&format!("CREATE TABLE events ({EVENTS}) WITH ({shard})")).await.unwrap();
        c.batch_execute("CREATE MATERIALIZED VIEW per_user AS SELECT user_key, count(*) AS n, sum(amount) AS total FROM events GROUP BY user_key").await.unwrap();
    }
    // Both nodes join the group and split the partitions.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (oa, ob) = (owned(&ca).await, owned(&cb).await);
        if !oa.is_empty() && !ob.is_empty() && oa.is_disjoint(&ob) && oa.len() + ob.len() == PARTITIONS as usize {
            break;
        }
        assert!(Instant::now() < deadline, "the group never split the partitions: a {oa:?}, b {ob:?}\nlog a:\n{}\nlog b:\n{}", a.log_text(), b.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (oa, ob) = (owned(&ca).await, owned(&cb).await);

    let producer = kafka.producer();
    let mut partition_of: BTreeMap<String, i32> = BTreeMap::new();
    let mut per_partition: BTreeMap<i32, i64> = BTreeMap::new();
    for id in 0..400 {
        let (key, payload) = event(id);
        let p = send(&producer, &topic, &key, &payload).await;
        assert_eq!(*partition_of.entry(key).or_insert(p), p, "a key always goes to one partition");
        *per_partition.entry(p).or_default() += 1;
    }
    let expect = |own: &BTreeSet<i32>| own.iter().map(|p| per_partition.get(p).copied().unwrap_or(0)).sum::<i64>();
    wait_for(&ca, "SELECT count(*) FROM events", expect(&oa), "node a's share").await;
    wait_for(&cb, "SELECT count(*) FROM events", expect(&ob), "node b's share").await;
    // Node a's Prometheus endpoint counts the messages of each partition it owns.
    let metrics = crate::operations::http_get(http, "/metrics");
    let scraped: f64 = metrics.lines().filter(|l| l.starts_with("nowdb_kafka_source_messages{source=\"events\"")).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum();
    assert_eq!(scraped as i64, expect(&oa), "{metrics}");

    // Each node holds exactly the keys of its partitions, and kafka_partition() is the
    // routing function: it names the partition the producer's partitioner chose.
    for (c, own) in [(&ca, &oa), (&cb, &ob)] {
        let rows = c.query(&format!("SELECT user_key, kafka_partition(user_key, {PARTITIONS}) FROM per_user"), &[]).await.unwrap();
        for r in rows {
            let (key, p): (String, i32) = (r.get(0), r.get(1));
            assert_eq!(partition_of.get(&key), Some(&p), "kafka_partition({key})");
            assert!(own.contains(&p), "{key} is on a node that does not own partition {p}");
        }
    }
    assert_eq!(count(&ca, "SELECT count(*) FROM per_user").await + count(&cb, "SELECT count(*) FROM per_user").await, partition_of.len() as i64);

    // Replica mode: each node consumes every partition and serves every key.
    let replica_topic = kafka.topic("replica", PARTITIONS).await;
    for id in 0..200 {
        let (key, payload) = event(id);
        send(&producer, &replica_topic, &key, &payload).await;
    }
    for c in [&ca, &cb] {
        c.batch_execute(&format!("CREATE TABLE replica_events ({EVENTS}) WITH ({})", kafka.source(&replica_topic, ", mode = 'replica'"))).await.unwrap();
    }
    for c in [&ca, &cb] {
        wait_for(c, "SELECT count(*) FROM replica_events", 200, "replica").await;
        assert_eq!(count(c, "SELECT count(*) FROM nowdb_catalog.sources WHERE source = 'replica_events' AND owned").await, PARTITIONS as i64);
    }
}
