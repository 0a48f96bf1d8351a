#!/usr/bin/env bash
# A single-node Apache Kafka 4.x broker (KRaft mode) on loopback, for the Kafka tests.
#
#   scripts/kafka.sh fetch       Kafka's jars from Maven Central (org.apache.kafka:kafka_2.13 and
#                                its dependencies, with Maven) into .kafka/<version>/libs
#   scripts/kafka.sh start DIR   formats a storage directory under DIR, starts the broker on a
#                                free 127.0.0.1 port with the machine's Java 17, waits until it
#                                accepts connections and prints its bootstrap address
#   scripts/kafka.sh stop DIR    stops the broker started in DIR
#
# The tests use the broker named by NOWDB_TEST_KAFKA (scripts/test.sh sets it from `start`).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${KAFKA_VERSION:-4.1.1}"
LIBS="$ROOT/.kafka/$VERSION/libs"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

fetch() {
    [ -f "$LIBS/.complete" ] && return 0
    if ! command -v mvn >/dev/null || ! command -v java >/dev/null; then
        apt-get install -y -q maven openjdk-17-jre-headless >/dev/null
    fi
    local pom
    pom="$(mktemp -d)"
    cat > "$pom/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>nowdb.test</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
    mkdir -p "$LIBS"
    (cd "$pom" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS")
    rm -rf "$pom"
    touch "$LIBS/.complete"
}

start() {
    local dir="$1" port cport id
    [ -f "$LIBS/.complete" ] || { echo "run scripts/kafka.sh fetch first" >&2; exit 1; }
    mkdir -p "$dir"
    port="$(free_port)"
    cport="$(free_port)"
    cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/logs
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
    cat > "$dir/log4j2.properties" <<LOG
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$dir/broker.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
LOG
    local java=(java -Xmx512m -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$LIBS/*")
    id="$("${java[@]}" kafka.tools.StorageTool random-uuid)"
    "${java[@]}" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >"$dir/format.log" 2>&1
    nohup "${java[@]}" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
    echo $! > "$dir/pid"
    for _ in $(seq 1 240); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "127.0.0.1:$port"
            return 0
        fi
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            echo "the Kafka broker exited; see $dir/stdout.log" >&2
            tail -20 "$dir/stdout.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "the Kafka broker did not start within 120 s" >&2
    stop "$dir"
    exit 1
}

stop() {
    local dir="$1"
    [ -f "$dir/pid" ] || return 0
    local pid
    pid="$(cat "$dir/pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
}

case "${1:-}" in
    fetch) fetch ;;
    start) start "${2:?usage: scripts/kafka.sh start DIR}" ;;
    stop) stop "${2:?usage: scripts/kafka.sh stop DIR}" ;;
    *) echo "usage: scripts/kafka.sh fetch | start DIR | stop DIR" >&2; exit 2 ;;
esac
