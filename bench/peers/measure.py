#!/usr/bin/env python3
"""Run a command and measure its whole process tree: CPU seconds (user + sys, every
descendant counted, also the JVM a PyFlink process starts and never waits for), peak memory
(the sum of the tree's RSS, sampled every 50 ms) and wall time. Lines "PB_METRIC k=v" the
program prints (stdout or stderr) are kept as extra figures.

usage: measure.py OUT.json LOG -- cmd args...   (exit status: the command's)
"""
import json, os, re, subprocess, sys, time

TICK = os.sysconf("SC_CLK_TCK")


def children_map():
    kids = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
            ppid = int(st[st.rfind(")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(pid))
        except (OSError, ValueError, IndexError):
            pass
    return kids


def sample(root, cpu_seen):
    """Sums the tree's RSS (kB) and records each process's CPU ticks (user + sys)."""
    kids, todo, rss = children_map(), [root], 0
    while todo:
        p = todo.pop()
        todo.extend(kids.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                        break
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
            fl = st[st.rfind(")") + 2:].split()
            cpu_seen[p] = int(fl[11]) + int(fl[12])  # utime + stime (not cutime: no double count)
        except (OSError, ValueError, IndexError):
            pass
    return rss


def main():
    out, logpath = sys.argv[1], sys.argv[2]
    assert sys.argv[3] == "--"
    cmd = sys.argv[4:]
    # As the Sluice harness does: the run is measured from a quiet disk, not beside the
    # write-back of what ran before it.
    os.sync()
    with open(logpath, "w") as log:
        t0 = time.time()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        peak, cpu_seen = 0, {}
        while p.poll() is None:
            peak = max(peak, sample(p.pid, cpu_seen))
            time.sleep(0.05)
        wall = time.time() - t0
    metrics = {}
    with open(logpath) as f:
        for m in re.finditer(r"PB_METRIC (\w+)=(\S+)", f.read()):
            metrics[m.group(1)] = float(m.group(2))
    res = {"rc": p.returncode, "wall_s": wall, "tree_cpu_s": sum(cpu_seen.values()) / TICK,
           "tree_peak_rss_mb": peak / 1024, "metrics": metrics, "cmd": cmd}
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    sys.exit(p.returncode)


if __name__ == "__main__":
    main()
