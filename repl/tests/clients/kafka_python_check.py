"""kafka-python (Debian's python3-kafka 2.0.2) against a running `sluice server`.

Usage: kafka_python_check.py HOST:PORT
Admin create/describe/delete of topics, a producer per compression codec (gzip, snappy,
lz4, zstd) read back whole, and a consumer group of two members that split a topic's
partitions, commit, close, and a restarted member that continues where they committed.
Exits non-zero with a message on the first mismatch.
"""

import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

ADDR = sys.argv[1]
DEADLINE_S = 90


def check(cond, what):
    if not cond:
        print("FAILED: " + what, file=sys.stderr)
        sys.exit(1)


def admin_topics(admin):
    admin.create_topics(
        [NewTopic("admin-made", 3, 1, topic_configs={"retention.ms": "3600000"})]
    )
    check("admin-made" in admin.list_topics(), "created topic listed")
    configs = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, "admin-made")]
    )
    entries = {c[0]: c[1] for c in configs[0].resources[0][4]}
    check(entries.get("retention.ms") == "3600000", "retention.ms described: %r" % entries)
    # AlterConfigs replaces the topic's overrides: retention.ms goes back to its default.
    admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, "admin-made",
                        configs={"cleanup.policy": "compact", "min.insync.replicas": "1"})]
    )
    configs = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, "admin-made")]
    )
    entries = {c[0]: c[1] for c in configs[0].resources[0][4]}
    check(entries.get("cleanup.policy") == "compact", "cleanup.policy altered: %r" % entries)
    check(entries.get("min.insync.replicas") == "1", "a Kafka-only config kept: %r" % entries)
    check(entries.get("retention.ms") == "604800000", "retention.ms reset: %r" % entries)
    refused = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, "admin-made", configs={"no.such": "1"})]
    )
    check(refused.resources[0][0] == 40, "an unknown config is INVALID_CONFIG: %r" % (refused,))
    from kafka.admin import NewPartitions
    admin.create_partitions({"admin-made": NewPartitions(5)})
    partitions = admin.describe_topics(["admin-made"])[0]["partitions"]
    check(len(partitions) == 5, "grown to 5 partitions: %r" % partitions)
    admin.delete_topics(["admin-made"])
    check("admin-made" not in admin.list_topics(), "deleted topic gone")
    print("admin: create, describe and alter configs, add partitions, delete: ok")


def read_all(topic, expected):
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=ADDR,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    got = []
    deadline = time.time() + DEADLINE_S
    while len(got) < expected and time.time() < deadline:
        for record in consumer:
            got.append((record.key, record.value))
    consumer.close()
    return got


def codecs():
    for codec in ["gzip", "snappy", "lz4", "zstd"]:
        topic = "codec-" + codec
        producer = KafkaProducer(bootstrap_servers=ADDR, compression_type=codec, linger_ms=20)
        sent = [(b"k%d" % i, (b"%s value %d " % (codec.encode(), i)) * 5) for i in range(500)]
        for key, value in sent:
            producer.send(topic, key=key, value=value)
        producer.flush()
        producer.close()
        got = read_all(topic, len(sent))
        check(sorted(got) == sorted(sent), "%s: read back %d of %d" % (codec, len(got), len(sent)))
        print("producer with %s: %d records read back: ok" % (codec, len(got)))


def member(group):
    return KafkaConsumer(
        "grouped",
        bootstrap_servers=ADDR,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=300,
    )


def caught_up(consumer):
    assignment = consumer.assignment()
    if not assignment:
        return False
    ends = consumer.end_offsets(list(assignment))
    return all(consumer.position(tp) >= ends[tp] for tp in assignment)


class Member(threading.Thread):
    """A group member polling in its own thread until stopped; it commits and closes."""

    def __init__(self, group_id):
        super().__init__(daemon=True)
        self.consumer = member(group_id)
        self.lock = threading.Lock()
        self.assignment = set()
        self.done = False
        self.values = set()
        self.stopping = threading.Event()
        self.start()

    def run(self):
        while not self.stopping.is_set():
            batch = self.consumer.poll(timeout_ms=100)
            assignment = set(self.consumer.assignment())
            done = caught_up(self.consumer)
            with self.lock:
                for records in batch.values():
                    self.values.update(r.value for r in records)
                self.assignment, self.done = assignment, done
        self.consumer.commit()
        self.consumer.close()

    def state(self):
        with self.lock:
            return set(self.assignment), self.done, set(self.values)

    def stop(self):
        self.stopping.set()
        self.join()


def group(admin):
    admin.create_topics([NewTopic("grouped", 4, 1)])
    producer = KafkaProducer(bootstrap_servers=ADDR)
    for i in range(400):
        producer.send("grouped", key=b"k%d" % i, value=b"first %d" % i)
    producer.flush()

    # Each member polls in its own thread: a member's poll blocks while it rejoins, so
    # one thread polling both would never let the rebalance finish (nor would Kafka's).
    members = [Member("g"), Member("g")]
    deadline = time.time() + DEADLINE_S
    while True:
        states = [m.state() for m in members]
        seen = set().union(*(s[2] for s in states))
        split = all(len(s[0]) == 2 for s in states)
        if split and len(seen) == 400 and all(s[1] for s in states):
            break
        check(time.time() < deadline, "two members split 4 partitions and read 400 records "
              "(assignments %r, %d read)" % ([s[0] for s in states], len(seen)))
        time.sleep(0.05)
    check(not (states[0][0] & states[1][0]), "members own disjoint partitions")
    described = admin.describe_consumer_groups(["g"])[0]
    check(described.state == "Stable", "group state %r" % described.state)
    check(len(described.members) == 2, "two members described")
    check(described.protocol in ("range", "roundrobin"), "assignor %r" % described.protocol)
    listed = [g[0] for g in admin.list_consumer_groups()]
    check("g" in listed, "group listed: %r" % listed)
    for m in members:
        m.stop()
    print("group of two: split 2+2, read 400, committed: ok")

    for i in range(100):
        producer.send("grouped", key=b"k%d" % i, value=b"second %d" % i)
    producer.flush()
    producer.close()
    again = member("g")
    later = set()
    deadline = time.time() + DEADLINE_S
    while len(later) < 100 or not caught_up(again):
        for records in again.poll(timeout_ms=100).values():
            later.update(r.value for r in records)
        check(time.time() < deadline, "restarted member read %d of 100" % len(later))
    check(all(v.startswith(b"second") for v in later),
          "restarted member continued from the commits, read %d old records"
          % sum(1 for v in later if not v.startswith(b"second")))
    again.close()
    print("restarted member continued from the committed offsets: ok")


admin = KafkaAdminClient(bootstrap_servers=ADDR)
admin_topics(admin)
codecs()
group(admin)
admin.close()
print("kafka-python: all ok")
