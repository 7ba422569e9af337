#!/usr/bin/env python3
"""Sets Sluice's Nexmark figures beside Flink's (and DuckDB's) from the same run, and checks
that each query's final result agrees: the same row count and the same column sums. A
mismatch is a failure (exit status 1), not a footnote.

usage: compare.py WORK   (WORK holds sluice.json from `sluice bench nexmark --json`, and per
query flink-QUERY.json from measure.py, flink-out-QUERY/ (CSV part files) or
flink-QUERY.log (print sink lines), and duckdb-QUERY.json / duckdb-out-QUERY.csv)

Sluice's windowed queries emit a window when event time passes its end (ksqlDB's EMIT FINAL
with no grace), so the windows still open at the end of the input are not in its result;
Flink closes every window at the end of a bounded input. Those windows are left out of the
peers' results before comparing (`open_windows` below).
"""
import csv, datetime, glob, json, math, os, re, sys

# Per query: the peer's columns in order (name, Sluice's value column or None: key columns
# are in the record key, which the summary does not read; kind) and how the result is read. kind: "n" number, "ts" a timestamp string (compared as epoch ms), "s" text.
SPECS = {
    "q0": dict(cols=[("auction", "auction", "n"), ("bidder", "bidder", "n"), ("price", "price", "n"),
                     ("date_time", "date_time", "n"), ("extra", None, "s")]),
    "q1": dict(cols=[("auction", "auction", "n"), ("bidder", "bidder", "n"), ("price", "price", "n"),
                     ("date_time", "date_time", "n"), ("extra", None, "s")]),
    "q2": dict(cols=[("auction", "auction", "n"), ("price", "price", "n")]),
    "q3": dict(cols=[("seller", None, "n"), ("name", None, "s"), ("city", None, "s"), ("state", None, "s"),
                     ("auction_id", "auction_id", "n")]),
    "q4": dict(cols=[("category", "category_id", "n"), ("avg_price", "avg_price", "n")], changelog=True),
    "q5": dict(cols=[("window_start", "window_start", "ts"), ("num", "num", "n"), ("auction", "auction", "n")],
               open_windows=("window_start", 10_000)),
    "q7": dict(cols=[("starttime", None, "n"), ("auction", "auction", "n"), ("price", "price", "n"),
                     ("bidder", "bidder", "n"), ("date_time", "date_time", "n"), ("extra", None, "s")],
               open_windows=("starttime", 10_000)),
    "q8": dict(cols=[("id", "person_id", "n"), ("name", None, "s"), ("starttime", "window_start", "ts")]),
}


def to_ms(text):
    t = datetime.datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=datetime.timezone.utc)
    return round(t.timestamp() * 1000)


def value(text, kind):
    if text in ("", "null", "NULL", None):
        return None
    return to_ms(text) if kind == "ts" else float(text) if kind == "n" else text


def csv_rows(paths):
    for path in paths:
        with open(path, newline="") as f:
            yield from csv.reader(f)


def changelog_rows(path):
    """Final table of Flink print-sink lines (+I/+U add, -U/-D remove), keyed by column 0."""
    table = {}
    with open(path) as f:
        for line in f:
            m = re.search(r"([+-][IUD])\[(.*)\]\s*$", line)
            if not m:
                continue
            row = [x.strip() for x in m.group(2).split(",")]
            if m.group(1) in ("+I", "+U"):
                table[row[0]] = row
            else:
                table.pop(row[0], None)
    return list(table.values())


def summarize(rows, spec, max_time):
    cols = spec["cols"]
    n, sums = 0, {}
    win = spec.get("open_windows")
    for raw in rows:
        vals = {name: value(raw[i] if i < len(raw) else None, kind) for i, (name, _, kind) in enumerate(cols)}
        if win and vals[win[0]] is not None and vals[win[0]] + win[1] > max_time:
            continue  # a window Sluice has not closed yet
        n += 1
        for name, sluice_col, kind in cols:
            if sluice_col and kind in ("n", "ts") and vals[name] is not None:
                sums[sluice_col] = sums.get(sluice_col, 0.0) + vals[name]
    return n, sums


def agree(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def check(query, sluice_out, peer):
    """Mismatch descriptions (empty when the results agree)."""
    problems = []
    if peer[0] != sluice_out["rows"]:
        problems.append(f"rows {sluice_out['rows']} vs {peer[0]}")
    for col, s in sorted(peer[1].items()):
        mine = sluice_out["sums"].get(col)
        if mine is None or not agree(mine, s):
            problems.append(f"sum({col}) {mine} vs {s}")
    return problems


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def peer_result(work, engine, q, spec, max_time):
    if spec.get("changelog") and engine == "flink":
        log = os.path.join(work, f"{engine}-{q}.log")
        return summarize(changelog_rows(log), spec, max_time) if os.path.exists(log) else None
    files = sorted(glob.glob(os.path.join(work, f"{engine}-out-{q}", "*"))) or \
        sorted(glob.glob(os.path.join(work, f"{engine}-out-{q}.csv")))
    files = [f for f in files if not os.path.basename(f).startswith(".")]
    return summarize(csv_rows(files), spec, max_time) if files else None


def fmt_rate(x):
    return "-" if x is None else f"{x/1e6:.2f} M" if x >= 1e6 else f"{x/1e3:.0f} k"


def ratio(a, b):
    return "-" if not a or not b else f"{a/b:.1f}x"


def main():
    work = sys.argv[1]
    sluice = load(os.path.join(work, "sluice.json"))
    if not sluice:
        sys.exit(f"no sluice.json in {work}")
    events, max_time = sluice["events"], sluice["generated"]["max_event_time_ms"]
    failures = []
    print(f"Nexmark, {events} events; per core = events per CPU-second of the whole process tree "
          f"(start-up included); steady = events per second of Flink's own job runtime; memory = peak RSS.\n")
    print("| query | Sluice /core | Flink /core | ratio | Sluice wall | Flink steady | ratio | Sluice MB | Flink MB | ratio | DuckDB /core | rows Sluice / Flink | result |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in sluice["queries"]:
        q = run["query"]
        spec = SPECS[q]
        s_core, s_wall, s_mb = run["events_per_cpu_s"], run["events_per_wall_s"], run["peak_rss_mb"]
        fl = load(os.path.join(work, f"flink-{q}.json"))
        f_core = f_steady = f_mb = None
        verdict, f_rows = "Flink not run", "-"
        if fl and fl["rc"] == 0:
            f_core = events / fl["tree_cpu_s"] if fl["tree_cpu_s"] else None
            net = fl["metrics"].get("flink_job_net_s")
            f_steady = events / net if net and net == net and net > 0 else None
            f_mb = fl["tree_peak_rss_mb"]
            res = peer_result(work, "flink", q, spec, max_time)
            if res is None:
                verdict = "FAIL: no Flink output"
                failures.append(q)
            else:
                f_rows = str(res[0])
                problems = check(q, run["output"], res)
                verdict = "agree" if not problems else "FAIL: " + "; ".join(problems)
                if problems:
                    failures.append(q)
        elif fl:
            verdict = f"FAIL: Flink exited {fl['rc']}"
            failures.append(q)
        dk = load(os.path.join(work, f"duckdb-{q}.json"))
        d_core = events / dk["tree_cpu_s"] if dk and dk["rc"] == 0 and dk["tree_cpu_s"] else None
        if dk and dk["rc"] == 0:
            res = peer_result(work, "duckdb", q, spec, max_time)
            problems = ["no DuckDB output"] if res is None else check(q, run["output"], res)
            if problems:
                verdict += "; DuckDB FAIL: " + "; ".join(problems)
                failures.append(q)
        print(f"| {q} | {fmt_rate(s_core)} | {fmt_rate(f_core)} | {ratio(s_core, f_core)} | {fmt_rate(s_wall)} | "
              f"{fmt_rate(f_steady)} | {ratio(s_wall, f_steady)} | {s_mb:.0f} | "
              f"{'-' if f_mb is None else f'{f_mb:.0f}'} | {ratio(f_mb, s_mb)} | {fmt_rate(d_core)} | "
              f"{run['output']['rows']} / {f_rows} | {verdict} |")
    if failures:
        print(f"\nresults differ for: {', '.join(sorted(set(failures)))}")
        sys.exit(1)


if __name__ == "__main__":
    main()
