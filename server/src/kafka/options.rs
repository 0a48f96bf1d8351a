//! The `WITH (...)` options of Kafka sources (`CREATE TABLE ... WITH (connector = 'kafka')`)
//! and sinks (`CREATE SINK ... WITH (connector = 'kafka')`), checked when the statement runs
//! and again when a stored definition is started.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

use crate::error::{NowError, NowResult};

/// How messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per message; fields by column name.
    Json,
    /// One CSV record per message (PostgreSQL's CSV rules), columns in table order.
    Csv,
}

/// Where a partition with no stored position starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The oldest message the broker keeps.
    Earliest,
    /// Only messages produced after the partition is assigned.
    Latest,
}

/// How the nodes reading one topic share its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every node consumes every partition (any node serves any key).
    Replica,
    /// The nodes of one consumer group each consume a subset of the partitions.
    Shard,
}

impl Mode {
    /// The option's value.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Replica => "replica",
            Mode::Shard => "shard",
        }
    }
}

/// A Kafka source's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOptions {
    /// The topic consumed.
    pub topic: String,
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// Message encoding.
    pub format: Format,
    /// Start of partitions without a stored position.
    pub start_offset: StartOffset,
    /// Replica or shard.
    pub mode: Mode,
    /// The consumer group (shard mode; reported to the broker for monitoring in both).
    pub group_id: String,
    /// `properties.<name> = value`: librdkafka settings passed through (security, timeouts).
    pub properties: BTreeMap<String, String>,
}

/// A Kafka sink's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOptions {
    /// The topic written.
    pub topic: String,
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// `properties.<name> = value`: librdkafka settings passed through.
    pub properties: BTreeMap<String, String>,
}

/// Whether `key` is one of a Kafka source's `WITH` options.
pub fn is_source_option(key: &str) -> bool {
    matches!(key, "connector" | "topic" | "bootstrap_servers" | "format" | "start_offset" | "mode" | "group_id") || key.starts_with("properties.")
}

fn invalid(message: impl Into<String>) -> NowError {
    NowError::coded("22023", message)
}

/// Takes option `key` out of `options`, or fails naming it.
fn required(options: &mut BTreeMap<String, String>, key: &str, what: &str) -> NowResult<String> {
    match options.remove(key) {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(invalid(format!("{what} needs the option {key}"))),
    }
}

/// Splits `properties.*` off `options`.
fn properties(options: &mut BTreeMap<String, String>) -> BTreeMap<String, String> {
    let keys: Vec<String> = options.keys().filter(|k| k.starts_with("properties.")).cloned().collect();
    keys.into_iter()
        .filter_map(|k| options.remove(&k).map(|v| (k["properties.".len()..].to_string(), v)))
        .collect()
}

fn no_leftovers(options: BTreeMap<String, String>) -> NowResult<()> {
    match options.keys().next() {
        Some(k) => Err(invalid(format!("unrecognized parameter \"{k}\""))),
        None => Ok(()),
    }
}

fn connector(options: &mut BTreeMap<String, String>) -> NowResult<()> {
    match options.remove("connector").as_deref() {
        Some("kafka") => Ok(()),
        Some(other) => Err(NowError::Unsupported(format!("connector \"{other}\" (nowdb knows \"kafka\")"))),
        None => Err(invalid("missing option connector")),
    }
}

impl SourceOptions {
    /// Parses a source's options (`connector` included); `table` names the default group.
    pub fn parse(table: &str, options: &BTreeMap<String, String>) -> NowResult<Self> {
        let mut o = options.clone();
        connector(&mut o)?;
        let what = "a Kafka source";
        let topic = required(&mut o, "topic", what)?;
        let bootstrap_servers = required(&mut o, "bootstrap_servers", what)?;
        let format = match o.remove("format").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some(other) => return Err(invalid(format!("format \"{other}\": expected 'json' or 'csv'"))),
        };
        let start_offset = match o.remove("start_offset").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("earliest") => StartOffset::Earliest,
            Some("latest") => StartOffset::Latest,
            Some(other) => return Err(invalid(format!("start_offset \"{other}\": expected 'earliest' or 'latest'"))),
        };
        let mode = match o.remove("mode").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("replica") => Mode::Replica,
            Some("shard") => Mode::Shard,
            Some(other) => return Err(invalid(format!("mode \"{other}\": expected 'replica' or 'shard'"))),
        };
        let group_id = o.remove("group_id").unwrap_or_else(|| format!("nowdb-{table}"));
        let properties = properties(&mut o);
        no_leftovers(o)?;
        let parsed = Self { topic, bootstrap_servers, format, start_offset, mode, group_id, properties };
        parsed.client_config().create::<rdkafka::consumer::BaseConsumer>().map_err(|e| invalid(format!("Kafka source options: {e}")))?;
        Ok(parsed)
    }

    /// The consumer's librdkafka configuration. nowdb stores its own positions, so the
    /// broker's committed offsets never decide where reading starts.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", match self.start_offset {
                StartOffset::Earliest => "earliest",
                StartOffset::Latest => "latest",
            })
            .set("client.id", "nowdb")
            // A node that dies hands its partitions over within seconds, not Kafka's default
            // 45 s: a feature store's keys should not go unserved for long.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

impl SinkOptions {
    /// Parses a sink's options (`connector` included).
    pub fn parse(options: &BTreeMap<String, String>) -> NowResult<Self> {
        let mut o = options.clone();
        connector(&mut o)?;
        let what = "a Kafka sink";
        let topic = required(&mut o, "topic", what)?;
        let bootstrap_servers = required(&mut o, "bootstrap_servers", what)?;
        match o.remove("format").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("json") => {}
            Some(other) => return Err(invalid(format!("sink format \"{other}\": expected 'json'"))),
        }
        let properties = properties(&mut o);
        no_leftovers(o)?;
        let parsed = Self { topic, bootstrap_servers, properties };
        parsed.client_config().create::<rdkafka::producer::BaseProducer>().map_err(|e| invalid(format!("Kafka sink options: {e}")))?;
        Ok(parsed)
    }

    /// The producer's librdkafka configuration: idempotent, acknowledged by all in-sync
    /// replicas, and Java's key partitioner (murmur2), so a key lands on the partition
    /// Kafka's own clients would choose.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("client.id", "nowdb");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn source_options_default_and_refuse() {
        let o = SourceOptions::parse("events", &opts(&[("connector", "kafka"), ("topic", "t"), ("bootstrap_servers", "127.0.0.1:9")])).unwrap();
        assert_eq!((o.format, o.start_offset, o.mode, o.group_id.as_str()), (Format::Json, StartOffset::Earliest, Mode::Replica, "nowdb-events"));
        let err = |pairs: &[(&str, &str)]| SourceOptions::parse("e", &opts(pairs)).unwrap_err().to_string();
        assert!(err(&[("connector", "kafka"), ("topic", "t")]).contains("bootstrap_servers"));
        assert!(err(&[("connector", "kafka"), ("topic", "t"), ("bootstrap_servers", "h:1"), ("format", "xml")]).contains("xml"));
        assert!(err(&[("connector", "kafka"), ("topic", "t"), ("bootstrap_servers", "h:1"), ("colour", "red")]).contains("colour"));
        assert!(err(&[("connector", "kafka"), ("topic", "t"), ("bootstrap_servers", "h:1"), ("properties.no.such.setting", "1")]).contains("no.such.setting"));
        assert!(err(&[("connector", "s3"), ("topic", "t")]).contains("s3"));
    }
}
