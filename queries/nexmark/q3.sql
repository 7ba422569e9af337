-- Nexmark q3, local item suggestion: who sells items in category 10 from Oregon, Idaho
-- or California — each auction in category 10 joined with its seller.
-- Deviations: the reference is an unbounded join of the two streams; a ksqlDB stream-stream
-- join needs a window, so this one is WITHIN 10 SECONDS. The generator picks a seller among
-- the last 1,000 persons or up to 10 ahead (at 10,000 events/s of event time: within 5 s),
-- so the window finds every pair the unbounded join finds (events come in time order:
-- no grace is needed). The crate writes states in lower
-- case ('or', not 'OR'). ksqlDB requires the join key in the projection (p.id).
CREATE STREAM nexmark_q3 AS
  SELECT p.id AS seller, p.name, p.city, p.state, a.id AS auction_id
  FROM auction a JOIN person p WITHIN 10 SECONDS GRACE PERIOD 0 SECONDS ON a.seller = p.id
  WHERE a.category = 10 AND (p.state = 'or' OR p.state = 'id' OR p.state = 'ca');
