#!/usr/bin/env python3
"""Nexmark on DuckDB, as a batch: the lower bound an engine that sees the whole input at
once sets. Same queries and deviations as queries/nexmark/*.sql (windows computed from the
epoch-millisecond `date_time`), over the JSON lines `sluice bench nexmark --export` writes,
results to a CSV file in the column order compare.py expects.

usage: nexmark_duckdb.py QUERY EVENTS.jsonl OUT.csv [THREADS]
"""
import sys, time

import duckdb

q, inp, out = sys.argv[1], sys.argv[2], sys.argv[3]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
t0 = time.time()
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
PERSON = "id BIGINT, name VARCHAR, email_address VARCHAR, credit_card VARCHAR, city VARCHAR, state VARCHAR, date_time BIGINT, extra VARCHAR"
AUCTION = "id BIGINT, item_name VARCHAR, description VARCHAR, initial_bid BIGINT, reserve BIGINT, date_time BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra VARCHAR"
BID = "auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, date_time BIGINT, extra VARCHAR"
con.execute(f"""CREATE VIEW events AS SELECT * FROM read_json('{inp}', format = 'newline_delimited',
  columns = {{event_type: 'INTEGER', person: 'STRUCT({PERSON})', auction: 'STRUCT({AUCTION})', bid: 'STRUCT({BID})'}})""")
for name, kind in (("person", 0), ("auction", 1), ("bid", 2)):
    con.execute(f"CREATE VIEW {name} AS SELECT unnest({name}) FROM events WHERE event_type = {kind}")

TS = "make_timestamp(({x}) * 1000)"  # epoch ms -> TIMESTAMP, printed as Flink prints it
QUERIES = {
    "q0": "SELECT auction, bidder, price, date_time, extra FROM bid",
    "q1": "SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE auction % 123 = 0",
    "q3": """SELECT P.id, P.name, P.city, P.state, A.id FROM auction A JOIN person P ON A.seller = P.id
             WHERE A.category = 10 AND P.state IN ('or', 'id', 'ca')""",
    "q4": """SELECT category, avg(final) FROM (
               SELECT A.id, A.category, max(B.price) AS final FROM auction A JOIN bid B
               ON A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
               GROUP BY A.id, A.category) GROUP BY category""",
    # Every bid is in the five 10 s windows, sliding by 2 s, that start at or before it.
    "q5": f"""WITH counts AS (
               SELECT auction, s, count(*) AS num FROM (
                 SELECT auction, date_time - date_time % 2000 - k * 2000 AS s
                 FROM bid, range(0, 5) r(k)) GROUP BY auction, s)
             SELECT {TS.format(x='s')}, max(num * 4294967296 + auction) // 4294967296,
                    max(num * 4294967296 + auction) % 4294967296
             FROM counts GROUP BY s""",
    "q7": """WITH w AS (SELECT date_time - date_time % 10000 AS s, max(price) AS maxprice FROM bid GROUP BY 1)
             SELECT w.s, B.auction, B.price, B.bidder, B.date_time, B.extra
             FROM bid B JOIN w ON B.date_time - B.date_time % 10000 = w.s AND B.price = w.maxprice""",
    "q8": f"""SELECT P.id, P.name, {TS.format(x='P.s')} FROM
               (SELECT DISTINCT id, name, date_time - date_time % 10000 AS s FROM person) P
             JOIN (SELECT DISTINCT seller, date_time - date_time % 10000 AS s FROM auction) A
             ON P.id = A.seller AND P.s = A.s""",
}
con.execute(f"COPY ({QUERIES[q]}) TO '{out}' (HEADER false)")
print(f"duckdb {q}: {time.time() - t0:.2f}s", file=sys.stderr)
