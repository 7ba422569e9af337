#!/usr/bin/env python3
"""Nexmark on Apache Flink SQL (PyFlink, streaming mode, local mini-cluster; pure SQL, so
every record is processed in the JVM), over the JSON lines `sluice bench nexmark --export`
writes. The queries are Flink's Nexmark queries with the same deviations as Sluice's
queries/nexmark/*.sql, so the two results can be compared row for row.

usage: nexmark_flink.py QUERY EVENTS.jsonl OUTDIR [PARALLELISM]

Append-only results go to a CSV filesystem sink in OUTDIR; q4's result is a changelog
(a GROUP BY over a GROUP BY), printed by Flink's print sink as +I/-U/+U/-D lines on stdout,
which compare.py folds into the final table.
"""
import os, shutil, sys, time

from pyflink.table import EnvironmentSettings, TableEnvironment

q, inp, outdir = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
par = sys.argv[4] if len(sys.argv) > 4 else "1"
shutil.rmtree(outdir, ignore_errors=True)

t0 = time.time()
tenv = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
c = tenv.get_config()
c.set("parallelism.default", par)
c.set("table.local-time-zone", "UTC")
c.set("pipeline.name", f"nexmark-{q}")
t_env = time.time()

PERSON = "id BIGINT, name STRING, email_address STRING, credit_card STRING, city STRING, state STRING, date_time BIGINT, extra STRING"
AUCTION = "id BIGINT, item_name STRING, description STRING, initial_bid BIGINT, reserve BIGINT, date_time BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra STRING"
BID = "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, date_time BIGINT, extra STRING"
TIME = "CASE WHEN event_type = 0 THEN person.date_time WHEN event_type = 1 THEN auction.date_time ELSE bid.date_time END"
tenv.execute_sql(f"""
CREATE TABLE events (
  event_type INT, person ROW<{PERSON}>, auction ROW<{AUCTION}>, bid ROW<{BID}>,
  rowtime AS TO_TIMESTAMP_LTZ({TIME}, 3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '0.1' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'file://{inp}', 'format' = 'json')""")


def view(name, cols):
    fields = ", ".join(f"{name}.{c.split()[0]} AS {c.split()[0]}" for c in cols.split(", "))
    kind = {"person": 0, "auction": 1, "bid": 2}[name]
    tenv.execute_sql(f"CREATE TEMPORARY VIEW {name} AS SELECT {fields}, rowtime FROM events WHERE event_type = {kind}")


view("person", PERSON)
view("auction", AUCTION)
view("bid", BID)


def sink(cols, connector="filesystem"):
    opts = f"'connector' = 'filesystem', 'path' = 'file://{outdir}', 'format' = 'csv'" \
        if connector == "filesystem" else "'connector' = 'print'"
    tenv.execute_sql(f"CREATE TABLE sink ({cols}) WITH ({opts})")


if q == "q0":
    sink("auction BIGINT, bidder BIGINT, price BIGINT, date_time BIGINT, extra STRING")
    stmt = "INSERT INTO sink SELECT auction, bidder, price, date_time, extra FROM bid"
elif q == "q1":
    sink("auction BIGINT, bidder BIGINT, price DECIMAL(23, 3), date_time BIGINT, extra STRING")
    stmt = "INSERT INTO sink SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid"
elif q == "q2":
    sink("auction BIGINT, price BIGINT")
    stmt = "INSERT INTO sink SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0"
elif q == "q3":
    sink("seller BIGINT, name STRING, city STRING, state STRING, auction_id BIGINT")
    stmt = """INSERT INTO sink
      SELECT P.id, P.name, P.city, P.state, A.id
      FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
      WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')"""
elif q == "q4":
    sink("category BIGINT, avg_price DOUBLE", connector="print")
    stmt = """INSERT INTO sink
      SELECT Q.category, AVG(CAST(Q.final AS DOUBLE))
      FROM (SELECT MAX(B.price) AS final, A.category
            FROM auction A, bid B
            WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
            GROUP BY A.id, A.category) Q
      GROUP BY Q.category"""
elif q == "q5":
    sink("window_start TIMESTAMP(3), num BIGINT, auction BIGINT")
    tenv.execute_sql("""CREATE TEMPORARY VIEW counts AS
      SELECT auction, window_start AS starttime, window_time AS wtime, COUNT(*) AS num
      FROM TABLE(HOP(TABLE bid, DESCRIPTOR(rowtime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
      GROUP BY auction, window_start, window_end, window_time""")
    # One hop window per 2-second tumbling window of its window_time: a window aggregate
    # over a window aggregate, append-only.
    stmt = """INSERT INTO sink
      SELECT starttime, MAX(num * 4294967296 + auction) / 4294967296,
             MOD(MAX(num * 4294967296 + auction), 4294967296)
      FROM TABLE(TUMBLE(TABLE counts, DESCRIPTOR(wtime), INTERVAL '2' SECOND))
      GROUP BY window_start, window_end, starttime"""
elif q == "q7":
    sink("starttime BIGINT, auction BIGINT, price BIGINT, bidder BIGINT, date_time BIGINT, extra STRING")
    stmt = """INSERT INTO sink
      SELECT B1.startms, B.auction, B.price, B.bidder, B.date_time, B.extra
      FROM bid B
      JOIN (SELECT MAX(price) AS maxprice, MIN(date_time - MOD(date_time, 10000)) AS startms
            FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
            GROUP BY window_start, window_end) B1
      ON B.price = B1.maxprice AND B.date_time - MOD(B.date_time, 10000) = B1.startms"""
elif q == "q8":
    sink("id BIGINT, name STRING, starttime TIMESTAMP(3)")
    stmt = """INSERT INTO sink
      SELECT P.id, P.name, P.starttime
      FROM (SELECT id, name, window_start AS starttime, window_end AS endtime
            FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
            GROUP BY id, name, window_start, window_end) P
      JOIN (SELECT seller, window_start AS starttime, window_end AS endtime
            FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
            GROUP BY seller, window_start, window_end) A
      ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime"""
else:
    sys.exit(f"unknown query {q}")

t_sub = time.time()
res = tenv.execute_sql(stmt)
res.wait()
t_end = time.time()
try:  # the job's own net runtime (RUNNING -> FINISHED inside the mini-cluster)
    net = res.get_job_client().get_job_execution_result().result().get_net_runtime() / 1000.0
except Exception as e:  # noqa: BLE001
    net = float("nan")
    print(f"(net runtime unavailable: {e})", file=sys.stderr)
print(f"flink {q} par={par}: env {t_env-t0:.2f}s, submit+run {t_end-t_sub:.2f}s, "
      f"job net runtime {net:.2f}s, total in-process {t_end-t0:.2f}s", file=sys.stderr)
print(f"PB_METRIC flink_job_net_s={net:.3f}", file=sys.stderr)
