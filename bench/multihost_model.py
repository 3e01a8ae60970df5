#!/usr/bin/env python3
"""The cost model of tensor parallelism across hosts (docs/MULTIHOST.md).

usage: multihost_model.py RUNS.LOG [CONFIG.JSON]   the measured table, predictions beside
       multihost_model.py --project                the projection for Llama-3-8B and 70B

Per forward pass of T tokens:
    compute per rank + (2L+1) x t_link(T x H x wire bytes) + 2 x latency
 - compute per rank: the one-machine runs (shared-memory all-reduce, its
   collectives taken out), the median over every one-machine run of the
   log: the runs beside each other spread by up to 19 % on this VM, and the
   median of eight is a steadier figure of the same compute than the one
   run just before.
 - t_link(B) = latency + B / bandwidth, with two bandwidths: a burst rate for
   messages up to the largest small probe (64 KB) and the rate TCP sustains
   beyond it, which through a token bucket is well under the link's rate.
   Both, and the latency, are fitted per link rate from the worker's
   ALLREDUCE probes (isolated f32 all-reduces of 8 KB, 64 KB and 4 MB) of
   every cross-host run at that rate: the line through the two small ones
   gives latency and burst rate, the 4 MB one the sustained rate.
 - The bf16 and q8 wires send a reduce-scatter and an all-gather (two
   latencies) of the encoded bytes (2 and 36/32 bytes a value, not 4).
Standard library only."""
import json
import re
import statistics
import sys
from collections import defaultdict

WIRE_BYTES = {"f32": 4.0, "bf16": 2.0, "q8": 36.0 / 32.0}


def parse(path):
    runs = defaultdict(dict)  # (label, rep) -> figures
    for line in open(path):
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        label, rep, rest = parts
        r = runs[(label, int(rep))]
        if rest.startswith("PREFILL"):
            f = rest.split()
            r["seq"], r["pp_ms"] = int(f[2]), float(f[3])
        elif rest.startswith("RANKTIMES"):
            f = [float(x) for x in rest.split()[2:]]
            r["work_ms"], r["coll_ms"] = max(f[0::2]), max(f[1::2])
        elif rest.startswith("DECODE") and "tokens/s" in rest and "paired" not in rest:
            r["tg"] = float(re.search(r"([\d.]+) tokens/s", rest).group(1))
        elif rest.startswith("ALLREDUCE"):
            m = re.search(r"(\d+) bytes: ([\d.]+) us", rest)
            r.setdefault("ar", {})[int(m.group(1))] = float(m.group(2)) * 1e-6
    return runs


class Link:
    """latency + bytes / rate, the rate a burst rate up to `knee` bytes and
    the sustained one beyond, fitted on probe medians {bytes: seconds}."""

    def __init__(self, probes):
        (b0, t0), (b1, t1), (b2, t2) = sorted(probes.items())[:3]
        self.burst = (b1 - b0) / max(t1 - t0, 1e-9)
        self.lat = max(t0 - b0 / self.burst, 0.0)
        self.knee, self.t_knee = b1, t1
        self.sustained = (b2 - b1) / max(t2 - t1, 1e-9)

    def time(self, nbytes, phases=1):
        extra = (phases - 1) * self.lat
        if nbytes <= self.knee:
            return extra + self.lat + nbytes / self.burst
        return extra + self.t_knee + (nbytes - self.knee) / self.sustained


def fit_links(runs):
    """rate name -> Link, from the probes of every cross-host run at that rate"""
    by_rate = defaultdict(lambda: defaultdict(list))
    for (label, _), r in runs.items():
        if label.startswith("cross-"):
            for b, t in r.get("ar", {}).items():
                by_rate[label.split("-")[1]][b].append(t)
    return {rate: Link({b: statistics.median(ts) for b, ts in p.items()}) for rate, p in by_rate.items()}


def compute(runs, n_coll):
    """(prefill seconds, decode seconds per token) per rank, one-machine medians"""
    singles = [r for (label, _), r in runs.items() if label.startswith("single-") and "work_ms" in r]
    pp = statistics.median(r["work_ms"] for r in singles) / 1e3
    tg = statistics.median(1 / r["tg"] - n_coll * r.get("ar", {}).get(min(r.get("ar", {0: 0})), 0) for r in singles)
    return pp, tg


def rate_order(rate):
    """unthrottled first, then the fastest rate"""
    m = re.match(r"([\d.]+)([kmg])bit$", rate.lower())
    return -float(m.group(1)) * {"k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)] if m else -1e30


def fmt(vals):
    if len(vals) > 1:
        return "%.2f (%.2f-%.2f)" % (statistics.mean(vals), min(vals), max(vals))
    return "%.2f" % vals[0]


def measured_table(path, cfg_path):
    cfg = json.load(open(cfg_path)) if cfg_path else {"hidden_size": 2048, "num_hidden_layers": 22}
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    n_ar, n_small = 2 * L + 1, 2
    runs = parse(path)
    links = fit_links(runs)
    pp_comp, tg_comp = compute(runs, n_ar + n_small)
    seq = next(r["seq"] for r in runs.values() if "seq" in r)
    out = ["compute per rank (median of %d one-machine runs): prefill %.3f s, decode %.2f ms a token" % (
        sum(1 for k in runs if k[0].startswith("single-")), pp_comp, tg_comp * 1e3), "",
        "| link | latency | burst rate | sustained rate (4 MB) |", "|---|---|---|---|"]
    for rate, k in sorted(links.items(), key=lambda kv: rate_order(kv[0])):
        out.append("| %s | %.0f us | %.2f Gbit/s | %.2f Gbit/s |" % (rate, k.lat * 1e6, k.burst * 8e-9, k.sustained * 8e-9))
    out += ["", "| run | pp%d tokens/s (model) | decode ctx 128 tokens/s (model) | runs |" % seq, "|---|---|---|---|"]
    labels = sorted({label for label, _ in runs if "seq" in runs[(label, _)]},
                    key=lambda s: (rate_order(s.split("-")[1]), s.startswith("cross"), s))
    for label in labels:
        rs = [r for (lb, _), r in sorted(runs.items()) if lb == label and "pp_ms" in r]
        pp, tg = [r["seq"] / (r["pp_ms"] / 1e3) for r in rs], [r.get("tg", 0) for r in rs]
        if not label.startswith("cross-"):
            out.append("| %s | %s | %s | %d |" % (label, fmt(pp), fmt(tg), len(rs)))
            continue
        _, rate, wire = label.split("-")
        link, per, phases = links[rate], WIRE_BYTES[wire], 1 if wire == "f32" else 2
        pp_t = pp_comp + n_ar * link.time(seq * H * per, phases) + n_small * link.lat
        tg_t = tg_comp + n_ar * link.time(H * per, phases) + n_small * link.lat
        err = lambda m, p: 100 * (p - statistics.mean(m)) / statistics.mean(m)
        out.append("| %s | %s (%.2f, %+.0f %%) | %s (%.2f, %+.0f %%) | %d |" % (
            label, fmt(pp), seq / pp_t, err(pp, seq / pp_t), fmt(tg), 1 / tg_t, err(tg, 1 / tg_t), len(rs)))
    return "\n".join(out)


# ---- projection for larger shapes ----

SHAPES = {  # hidden, layers, intermediate, heads, kv heads, vocab
    "Llama-3-8B": (4096, 32, 14336, 32, 8, 128256),
    "Llama-3-70B": (8192, 80, 28672, 64, 8, 128256),
}
# A host: 16 cores, 60 GB/s of weights streamed in decode, 1.5 TFLOP/s bf16
# in prefill (a desktop/server CPU node; scale both for yours).
HOST_BW, HOST_FLOPS = 60e9, 1.5e12


def params(s):
    H, L, F, nh, nkv, V = s
    hd = H // nh
    return L * (H * (nh * hd + 2 * nkv * hd) + nh * hd * H + 3 * H * F) + 2 * V * H


def project():
    out = []
    for name, s in SHAPES.items():
        H, L = s[0], s[1]
        w = params(s) * 2  # bf16 bytes
        out.append("\n### %s (bf16 weights %.0f GB): decode tokens/s, N hosts\n" % (name, w / 1e9))
        out.append("| link | latency | " + " | ".join("N=%d" % n for n in range(1, 9)) + " | best N |")
        out.append("|---|---|" + "---|" * 9)
        for gbit in (1, 10, 25, 100):
            for lat in (50e-6, 500e-6):
                bw = gbit * 1e9 / 8
                tps = []
                for n in range(1, 9):
                    comm = 0 if n == 1 else (2 * L + 3) * lat + (2 * L + 1) * 2 * (n - 1) / n * H * 4 / bw
                    tps.append(1 / (w / n / HOST_BW + comm))
                best = max(range(8), key=lambda i: tps[i]) + 1
                out.append("| %d Gbit/s | %d us | %s | %d |" % (gbit, lat * 1e6, " | ".join("%.2f" % t for t in tps), best))
        out.append("\n%s prefill of 512 tokens, tokens/s (f32 all-reduces of 512 x %d floats):\n" % (name, H))
        out.append("| link | latency | " + " | ".join("N=%d" % n for n in range(1, 9)) + " |")
        out.append("|---|---|" + "---|" * 8)
        for gbit in (1, 10, 25, 100):
            lat = 50e-6
            bw = gbit * 1e9 / 8
            row = []
            for n in range(1, 9):
                comp = 2 * params(s) * 512 / n / HOST_FLOPS
                comm = 0 if n == 1 else (2 * L + 3) * lat + (2 * L + 1) * 2 * (n - 1) / n * 512 * H * 4 / bw
                row.append(512 / (comp + comm))
            out.append("| %d Gbit/s | 50 us | %s |" % (gbit, " | ".join("%.0f" % t for t in row)))
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--project":
        print(project())
    elif len(sys.argv) > 1:
        print(measured_table(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
    else:
        print(__doc__)
        sys.exit(2)
