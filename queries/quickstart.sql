-- Sluice quickstart: streams, a persistent query and a push query.
-- Run it in the REPL with   RUN SCRIPT 'queries/quickstart.sql';
-- or without the REPL with  sluice sql --file queries/quickstart.sql

-- 1. A stream over a topic. PARTITIONS creates the topic if it does not exist yet.
CREATE STREAM IF NOT EXISTS pageviews (
    user_id STRING KEY,
    page    STRING,
    ms_on_page INT
) WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON', PARTITIONS=2);

-- 2. Some events. (Kafka clients or `sluice produce pageviews` write them just as well.)
INSERT INTO pageviews (user_id, page, ms_on_page) VALUES ('alice', '/home', 1200);
INSERT INTO pageviews (user_id, page, ms_on_page) VALUES ('bob', '/pricing', 45000);
INSERT INTO pageviews (user_id, page, ms_on_page) VALUES ('carol', '/docs/sql', 98000);
INSERT INTO pageviews (user_id, page, ms_on_page) VALUES ('alice', '/pricing', 30500);

-- 3. Queries read from the start of their topics, not just new events.
SET 'auto.offset.reset'='earliest';

-- 4. A persistent query: runs for as long as an engine runs (REPL, sluice sql, server),
--    and resumes where it stopped after a restart. Its output is the topic LONG_VIEWS.
CREATE STREAM IF NOT EXISTS long_views AS
    SELECT user_id, UCASE(page) AS page, ms_on_page / 1000 AS seconds
    FROM pageviews
    WHERE ms_on_page > 30000;

SHOW QUERIES;

-- 5. A push query: rows as they arrive. LIMIT ends it here; without LIMIT, Ctrl-C does.
SELECT * FROM long_views EMIT CHANGES LIMIT 3;
