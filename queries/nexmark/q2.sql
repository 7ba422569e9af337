-- Nexmark q2, selection: the bids on every 123rd auction.
-- The reference writes MOD(auction, 123); ksqlDB spells it with `%`.
CREATE STREAM nexmark_q2 AS
  SELECT auction, price FROM bid WHERE auction % 123 = 0;
