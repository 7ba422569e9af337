"""confluent-kafka (librdkafka, from PyPI) against a running `sluice server`.

Usage: confluent_kafka_check.py HOST:PORT [RECORDS] [idempotent]
Produces RECORDS (default 100,000) keyed records into a 3-partition topic (idempotence off,
or on with `idempotent`: InitProducerId and sequence-numbered batches), reads them all back
with a group consumer, and compares contents exactly (a record read twice is a failure).
Exits non-zero with a message on a mismatch.
"""

import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ADDR = sys.argv[1]
COUNT = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
IDEMPOTENT = len(sys.argv) > 3 and sys.argv[3] == "idempotent"
TOPIC = "confluent-check-idempotent" if IDEMPOTENT else "confluent-check"


def fail(what):
    print("FAILED: " + what, file=sys.stderr)
    sys.exit(1)


admin = AdminClient({"bootstrap.servers": ADDR})
for future in admin.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=1)]).values():
    future.result(30)

errors = []


def delivered(err, _msg):
    if err is not None:
        errors.append(str(err))


producer = Producer({
    "bootstrap.servers": ADDR,
    "enable.idempotence": IDEMPOTENT,
    "linger.ms": 5,
    "partitioner": "murmur2_random",
})
sent = {}
for i in range(COUNT):
    key = b"key-%d" % (i % 997)
    value = b"record %d of %d" % (i, COUNT)
    sent[value] = key
    while True:
        try:
            producer.produce(TOPIC, key=key, value=value, on_delivery=delivered)
            break
        except BufferError:
            producer.poll(0.1)
    producer.poll(0)
left = producer.flush(60)
if left or errors:
    fail("%d undelivered, errors: %r" % (left, errors[:5]))
print("produced %d records" % COUNT)

consumer = Consumer({
    "bootstrap.servers": ADDR,
    "group.id": TOPIC,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
})
consumer.subscribe([TOPIC])
got = {}
deadline = time.time() + 120
while len(got) < COUNT and time.time() < deadline:
    for msg in consumer.consume(num_messages=10_000, timeout=0.5):
        if msg.error():
            fail("consume error: %s" % msg.error())
        if msg.value() in got:
            fail("record read twice: %r" % msg.value())
        got[msg.value()] = msg.key()
consumer.close()
if got != sent:
    missing = len(set(sent) - set(got))
    fail("read %d of %d records (%d missing, or keys differ)" % (len(got), COUNT, missing))
print("consumed %d records, contents equal: ok" % len(got))
