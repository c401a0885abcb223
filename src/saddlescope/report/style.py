"""The report page's stylesheet (inline: the page loads nothing), including the CSS-only switch.

The density section holds two radio buttons followed by two figures; ``:checked ~`` shows the
figure of the checked button, so the linear/log choice works with scripts forbidden. The kind
colours follow :data:`saddlescope.plots.common.KIND_STYLE`.
"""

from __future__ import annotations

__all__ = ["CSS"]

CSS = """
:root { --ink: #1d2733; --muted: #5b6775; --rule: #d9dee4; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 20px 28px 40px; }
header h1 { font-size: 1.5em; margin: 0 0 2px; }
h2 { font-size: 1.15em; margin: 0 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--rule); }
h3 { font-size: 1em; margin: 6px 0; color: var(--muted); text-transform: capitalize; }
section { margin: 22px 0; }
code { font: 0.92em ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
.meta, .caption, footer, .how { color: var(--muted); font-size: 0.9em; }
footer { margin-top: 36px; border-top: 1px solid var(--rule); padding-top: 8px; }
.missing { color: var(--muted); font-style: italic; }
.problem, .invalid { color: #a4262c; }
.na { color: var(--muted); }
.ok { color: #1e7b34; font-weight: 600; }
.bad { color: #a4262c; font-weight: 600; }
#verdict { background: var(--panel); border: 1px solid var(--rule); border-radius: 8px;
  padding: 14px 18px; }
.kind { display: flex; align-items: baseline; gap: 12px; }
.kind .label { font-size: 2em; font-weight: 700; letter-spacing: 0.01em; }
.kind .strict { color: var(--muted); }
.kind-minimum .label { color: #2ca02c; } .kind-saddle .label { color: #d62728; }
.kind-maximum .label { color: #9467bd; } .kind-degenerate .label { color: #e07b00; }
.kind-on-kink .label { color: #8c564b; }
.kind-not-critical .label, .kind-other .label { color: #6b6b6b; }
.resolution { margin: 2px 0 10px; font-size: 1.02em; }
table { border-collapse: collapse; }
table.kv th { text-align: left; font-weight: 600; padding: 3px 18px 3px 0; vertical-align: top;
  white-space: nowrap; }
table.kv td { padding: 3px 0; overflow-wrap: anywhere; }
table.grid th, table.grid td { padding: 3px 14px 3px 0; text-align: left; }
table.grid th { border-bottom: 1px solid var(--rule); }
table.grid td:nth-child(2), table.grid td:nth-child(3) { font-variant-numeric: tabular-nums; }
.sign-negative { color: #c0392b; } .sign-positive { color: #1f5fa8; } .sign-zero { color: #777; }
.val { display: inline-block; min-width: 7.5em; }
.meter { display: inline-block; position: relative; width: 160px; height: 10px; margin: 0 8px;
  vertical-align: middle; background: #e4e8ec; border-radius: 5px; }
.meter .band { position: absolute; top: 0; bottom: 0; background: #8fb3d9; border-radius: 5px; }
.meter .mark { position: absolute; top: -3px; width: 3px; height: 16px; margin-left: -1px;
  background: var(--ink); }
.share { display: inline-block; width: 200px; height: 9px; background: #e4e8ec; }
.share span { display: block; height: 100%; background: #8fb3d9; }
tr.total td { border-top: 1px solid var(--rule); font-weight: 600; }
.fig svg { display: block; width: 100%; max-width: 900px; height: auto; }
.fig svg * { stroke-linejoin: round; stroke-linecap: butt; }
.switch input { margin: 0 4px 10px 0; } .switch label { margin-right: 16px; cursor: pointer; }
.switch .fig-log { display: none; }
#density-log:checked ~ .fig-linear { display: none; }
#density-log:checked ~ .fig-log { display: block; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 18px; }
"""
