-- Nexmark q4, average price per category: the closing price of an auction is its highest
-- bid made between its start and its expiry; q4 is the average closing price per category.
-- ksqlDB has no subqueries, so the reference's inner query is a table of its own
-- (NEXMARK_Q4_CLOSING, keyed by auction and category, so its key is JSON) and the outer one aggregates that table (undoing an auction's old
-- closing price when a higher bid replaces it).
-- Deviation: the reference joins the two streams without bounds; here bids are joined to
-- the auction they were made on WITHIN (0 SECONDS, 10 SECONDS) of the auction's start — the
-- generator's auctions last at most ~0.35 s at 10,000 events/s, and the WHERE clause keeps
-- exactly the reference's bids. GRACE PERIOD 0: the join meets its sides in event-time
-- order and the generator writes events in time order, so nothing is late, and a bid leaves
-- the join's state as soon as no later auction can match it.
CREATE TABLE nexmark_q4_closing WITH (KEY_FORMAT = 'JSON') AS
  SELECT a.id AS id, a.category AS category, AS_VALUE(a.category) AS cat, MAX(b.price) AS final
  FROM auction a JOIN bid b WITHIN (0 SECONDS, 10 SECONDS) GRACE PERIOD 0 SECONDS
    ON a.id = b.auction
  WHERE b.date_time BETWEEN a.date_time AND a.expires
  GROUP BY a.id, a.category;

CREATE TABLE nexmark_q4 AS
  SELECT cat AS category, AS_VALUE(cat) AS category_id, AVG(final) AS avg_price
  FROM nexmark_q4_closing
  GROUP BY cat;
