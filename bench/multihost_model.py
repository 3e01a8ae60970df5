#!/usr/bin/env python3
"""The cost model of tensor parallelism across hosts (docs/MULTIHOST.md).

usage: multihost_model.py RUNS.LOG [CONFIG.JSON]   the measured table, predictions beside
       multihost_model.py --project                the projection for Llama-3-8B and 70B

Per forward pass: compute per rank (from the one-machine run of the same
repeat, its shared-memory collectives taken out) plus, for each of the
2L+1 all-reduces (attention, MLP, embeddings) and 2 small collectives
(argmax, status), latency + bytes / bandwidth, where bytes = 2(N-1)/N x the
message (a ring; 1x at N = 2) and bandwidth = min(link rate, the stack's
own rate measured across hosts unthrottled). Latency and the stack's rate
come from the worker's ALLREDUCE probes in the unthrottled cross-host run.
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


def rate_of(label):
    """cross-RATE-WIRE -> (bytes/s or None, wire)"""
    _, rate, wire = label.split("-")
    if rate == "none":
        return None, wire
    m = re.match(r"([\d.]+)([kmg])bit$", rate.lower())
    num, unit = float(m.group(1)), {"k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]
    return num * unit / 8, wire


def measured_table(path, cfg_path):
    cfg = json.load(open(cfg_path)) if cfg_path else {"hidden_size": 2048, "num_hidden_layers": 22}
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    n_ar, n_small = 2 * L + 1, 2
    runs = parse(path)
    reps = sorted({rep for _, rep in runs})
    rows = defaultdict(list)  # label -> [(pp, pp_pred, tg, tg_pred)]
    for rep in reps:
        free = runs.get(("cross-none-f32", rep))
        stack_bw = None
        if free and "ar" in free:
            small, big = min(free["ar"]), max(free["ar"])
            stack_bw = big / max(free["ar"][big] - free["ar"][small], 1e-9)
        slow = None
        for (label, r2), r in sorted(runs.items()):
            if r2 != rep or not label.startswith("cross-") or "pp_ms" not in r or "ar" not in r:
                continue
            rate, wire = rate_of(label)
            rate_name = label.split("-")[1]
            single = runs.get(("single-" + rate_name, rep))
            if not single or "work_ms" not in single:
                continue
            seq = single["seq"]
            bw = min(x for x in (rate, stack_bw) if x) if (rate or stack_bw) else 1e12
            per = WIRE_BYTES[wire] / 4.0
            small = min(r["ar"])
            # latency: this run's own one-token all-reduce (f32 probe) less its bytes' time
            lat = max(r["ar"][small] - small / bw, 0.0)
            shm_lat = single.get("ar", {}).get(small, 0.0)
            pp_comp = single["work_ms"] / 1e3
            tg_comp = 1.0 / single["tg"] - (n_ar + n_small) * shm_lat
            pp_t = pp_comp + n_ar * (lat + seq * H * 4 * per / bw) + n_small * lat
            tg_t = tg_comp + n_ar * (lat + H * 4 * per / bw) + n_small * lat
            rows[label].append((seq / (r["pp_ms"] / 1e3), seq / pp_t, r.get("tg", 0), 1 / tg_t))
            rows["single-" + rate_name].append((seq / (single["pp_ms"] / 1e3), None, single["tg"], None))
    rows = {k: (v if k.startswith("cross") else v[: len({x for x in v})]) for k, v in rows.items()}
    seq = next(iter(runs.values())).get("seq", 0)
    out = ["| run | pp%d tokens/s (model) | decode ctx 128 tokens/s (model) | runs |" % seq, "|---|---|---|---|"]

    def fmt(vals):
        if len(vals) > 1:
            return "%.2f (%.2f-%.2f)" % (statistics.mean(vals), min(vals), max(vals))
        return "%.2f" % vals[0]

    for label in sorted(rows, key=lambda s: (s.split("-")[1], s.startswith("cross"), s)):
        v = rows[label]
        pp, tg = [x[0] for x in v], [x[2] for x in v]
        if v[0][1] is None:
            out.append("| %s | %s | %s | %d |" % (label, fmt(pp), fmt(tg), len(v)))
            continue
        ppp, tgp = [x[1] for x in v], [x[3] for x in v]
        err = lambda m, p: 100 * (statistics.mean(p) - statistics.mean(m)) / statistics.mean(m)
        out.append("| %s | %s (%.2f, %+.0f %%) | %s (%.2f, %+.0f %%) | %d |" % (
            label, fmt(pp), statistics.mean(ppp), err(pp, ppp), fmt(tg), statistics.mean(tgp), err(tg, tgp), len(v)))
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
