#!/usr/bin/env python3
"""Plots end-to-end and send latency percentiles against throughput from `strata bench
--output json` files, as an SVG (no plotting library needed):

    python3 infra/bench/plot.py OUT.svg LABEL=DIR [LABEL=DIR ...]

Each DIR holds the JSON files infra/bench/run.sh wrote; every phase that both sent
and received becomes a point (x: messages/s received, y: latency in ms, log scale), joined
in the order of the offered load."""

import json
import math
import sys
from pathlib import Path

W, H, L, R, T, B = 760, 440, 70, 190, 30, 50
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def points(directory):
    out = []
    for f in Path(directory).glob("*.json"):
        r = json.loads(f.read_text())
        for p in r["phases"]:
            if p["sent"] and p["received"]:
                out.append((r["settings"]["rate"], p["received_per_s"], p["end_to_end_ms"], p["send_latency_ms"]))
    # In the order of the offered load: past saturation, more load consumes no more.
    return [x[1:] for x in sorted(out, key=lambda x: x[0])]


def main():
    target, series = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    data = [(label, points(d)) for label, d in series]
    xs = [x for _, pts in data for x, _, _ in pts] or [1]
    ys = [v for _, pts in data for _, e, s in pts for v in (e["p50"], e["p99"], s["p99"]) if v > 0] or [1]
    xmax = max(xs) * 1.1
    ylo, yhi = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    sx = lambda x: L + (W - L - R) * x / xmax
    sy = lambda y: T + (H - T - B) * (1 - (math.log10(max(y, 10 ** ylo)) - ylo) / max(yhi - ylo, 1))
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>',
           f'<text x="{(L+W-R)/2}" y="{H-12}" text-anchor="middle">messages/s consumed (1 KiB)</text>',
           f'<text x="16" y="{(T+H-B)/2}" transform="rotate(-90 16 {(T+H-B)/2})" text-anchor="middle">latency, ms (log)</text>']
    for e in range(ylo, yhi + 1):
        y = sy(10 ** e)
        svg.append(f'<line x1="{L}" y1="{y}" x2="{W-R}" y2="{y}" stroke="#ddd"/>')
        svg.append(f'<text x="{L-6}" y="{y+4}" text-anchor="end">{10 ** e:g}</text>')
    for i in range(6):
        x = xmax * i / 5
        svg.append(f'<text x="{sx(x)}" y="{H-B+16}" text-anchor="middle">{x:,.0f}</text>')
    legend = T
    for n, (label, pts) in enumerate(data):
        c = COLORS[n % len(COLORS)]
        for key, dash, name in (("e2e50", "", "e2e p50"), ("e2e99", "6,3", "e2e p99"), ("send99", "2,3", "send p99")):
            vals = [(x, {"e2e50": e["p50"], "e2e99": e["p99"], "send99": s["p99"]}[key]) for x, e, s in pts]
            path = " ".join(f"{sx(x):.1f},{sy(v):.1f}" for x, v in vals)
            svg.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2" stroke-dasharray="{dash}"/>')
            svg += [f'<circle cx="{sx(x):.1f}" cy="{sy(v):.1f}" r="3" fill="{c}"/>' for x, v in vals]
            svg.append(f'<line x1="{W-R+10}" y1="{legend}" x2="{W-R+40}" y2="{legend}" stroke="{c}" stroke-width="2" stroke-dasharray="{dash}"/>')
            svg.append(f'<text x="{W-R+46}" y="{legend+4}">{label} {name}</text>')
            legend += 18
    svg.append("</svg>")
    Path(target).write_text("\n".join(svg))


if __name__ == "__main__":
    main()
