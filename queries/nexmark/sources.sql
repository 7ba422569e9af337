-- Nexmark's three event streams, over the topics `sluice bench nexmark-gen` writes
-- (default prefix `nexmark`). Every record is one JSON object with snake_case fields, as
-- the `nexmark` crate names them; `date_time` (epoch milliseconds) is the event time and
-- also the record's timestamp. Run this once before any of q*.sql.
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM person (
  id BIGINT, name STRING, email_address STRING, credit_card STRING, city STRING,
  state STRING, date_time BIGINT, extra STRING
) WITH (KAFKA_TOPIC = 'nexmark-person', VALUE_FORMAT = 'JSON', TIMESTAMP = 'date_time');

CREATE STREAM auction (
  id BIGINT, item_name STRING, description STRING, initial_bid BIGINT, reserve BIGINT,
  date_time BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra STRING
) WITH (KAFKA_TOPIC = 'nexmark-auction', VALUE_FORMAT = 'JSON', TIMESTAMP = 'date_time');

CREATE STREAM bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  date_time BIGINT, extra STRING
) WITH (KAFKA_TOPIC = 'nexmark-bid', VALUE_FORMAT = 'JSON', TIMESTAMP = 'date_time');
