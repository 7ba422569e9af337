-- Nexmark q8, monitor new users: the persons who opened an auction in the same 10-second
-- tumbling window in which they joined.
-- The reference groups both streams by tumbling window and joins the groups; here each
-- person is joined with their auctions WITHIN 10 SECONDS, the pairs in the same window are
-- kept, and grouping by person and window start gives one row each, as the reference does (a
-- two-column key, so the key format is JSON).
CREATE TABLE nexmark_q8 WITH (KEY_FORMAT = 'JSON') AS
  SELECT p.id AS id, p.date_time - p.date_time % 10000 AS starttime,
         AS_VALUE(p.id) AS person_id, AS_VALUE(p.date_time - p.date_time % 10000) AS window_start,
         LATEST_BY_OFFSET(p.name) AS name, COUNT(*) AS auctions
  FROM person p JOIN auction a WITHIN 10 SECONDS GRACE PERIOD 0 SECONDS ON p.id = a.seller
  WHERE p.date_time - p.date_time % 10000 = a.date_time - a.date_time % 10000
  GROUP BY p.id, p.date_time - p.date_time % 10000;
