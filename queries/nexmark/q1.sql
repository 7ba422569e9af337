-- Nexmark q1, currency conversion: every bid with its price in euros.
-- Deviation: `0.908 * price` is a DOUBLE here (Sluice reads decimal literals as DOUBLE);
-- the reference, and ksqlDB, compute a DECIMAL.
CREATE STREAM nexmark_q1 AS
  SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid;
