-- Nexmark q5, hot items: for every 10-second window sliding by 2 seconds, the auction with
-- the most bids.
-- ksqlDB has neither subqueries nor joins on non-key inequalities, so the reference's
-- self-join (auction counts joined with the per-window maximum, `num >= maxn`) is written
-- as two queries: bid counts per auction and hopping window (emitted once, when the window
-- closes), then, per window start, the largest count together with its auction, packed into
-- one BIGINT (count * 2^32 + auction) so MAX keeps them together.
-- Deviation: where several auctions tie for the most bids the reference returns all of
-- them; this returns the one with the highest id. Windows close when event time passes
-- their end (GRACE PERIOD 0: the generator writes events in time order); the last windows
-- of a finite input never close, as in ksqlDB.
CREATE TABLE nexmark_q5_counts AS
  SELECT auction, AS_VALUE(auction) AS auction_id, AS_VALUE(WINDOWSTART) AS starttime,
         COUNT(*) AS num
  FROM bid WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 2 SECONDS, GRACE PERIOD 0 SECONDS)
  GROUP BY auction
  EMIT FINAL;

CREATE STREAM nexmark_q5_windows (auction BIGINT KEY, auction_id BIGINT, starttime BIGINT, num BIGINT)
  WITH (KAFKA_TOPIC = 'NEXMARK_Q5_COUNTS', VALUE_FORMAT = 'JSON',
        WINDOW_TYPE = 'HOPPING', WINDOW_SIZE = '10 SECONDS');

CREATE TABLE nexmark_q5 AS
  SELECT starttime, AS_VALUE(starttime) AS window_start,
         MAX(num * 4294967296 + auction_id) / 4294967296 AS num,
         MAX(num * 4294967296 + auction_id) % 4294967296 AS auction
  FROM nexmark_q5_windows
  GROUP BY starttime;
