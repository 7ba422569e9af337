-- Nexmark q7, highest bid: the bids with the highest price in each 10-second tumbling
-- window.
-- Written as two queries: the highest price per window (emitted once, when the window
-- closes), then every bid joined with the maximum of its own window and kept when its price
-- equals it. The first groups all bids into one group per window (GROUP BY a constant
-- expression of the bid).
-- Deviation: the reference keeps bids whose time lies in [window end - 10 s, window end],
-- both ends included; here a bid belongs to its own window only (end excluded). Windows
-- close when event time passes their end (GRACE PERIOD 0); the last window of a finite input
-- never closes, as in ksqlDB. The join keeps ksqlDB's default grace (24 hours): its
-- maxima are written by the first query while this one runs, and a side with nothing to
-- read yet does not hold the other back (as in Kafka Streams), so a maximum can arrive
-- well after the bids of its window. The price is memory: the bids stay in the join's state.
CREATE TABLE nexmark_q7_max AS
  SELECT auction * 0 AS all_bids, AS_VALUE(WINDOWSTART) AS starttime, MAX(price) AS maxprice
  FROM bid WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 0 SECONDS)
  GROUP BY auction * 0
  EMIT FINAL;

-- The maxima as a plain stream (ksqlDB joins no windowed source with a non-windowed one;
-- the window start is in the value, so the windowed key is not needed).
CREATE STREAM nexmark_q7_windows (starttime BIGINT, maxprice BIGINT)
  WITH (KAFKA_TOPIC = 'NEXMARK_Q7_MAX', VALUE_FORMAT = 'JSON');

CREATE STREAM nexmark_q7 AS
  SELECT m.starttime, b.auction, b.price, b.bidder, b.date_time, b.extra
  FROM bid b JOIN nexmark_q7_windows m WITHIN 20 SECONDS
    ON b.date_time - b.date_time % 10000 = m.starttime
  WHERE b.price = m.maxprice;
