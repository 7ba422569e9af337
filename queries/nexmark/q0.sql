-- Nexmark q0, pass-through: every bid, unchanged. Measures the cost of reading, decoding,
-- encoding and writing a record with no work in between. Same as the reference SQL.
CREATE STREAM nexmark_q0 AS
  SELECT auction, bidder, price, date_time, extra FROM bid;
