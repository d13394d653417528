"""The page ``conflict-ie serve`` shows at ``/``: paste an article, see what the model finds.

One self-contained HTML document (no external scripts, styles or fonts: it works
offline and behind a firewall). The schema's labels and colours are written into it;
the script posts the text to ``/predict`` and draws the entities highlighted in those
colours, the relations and the casualty table. It builds every element with
``textContent``, never ``innerHTML``, so an article cannot inject markup.
``/?text=...`` fills the box and runs at once (a link to share, and what the
screenshot test opens).
"""

from __future__ import annotations

import html
import json

from conflict_ie.schema import LabelSchema

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>conflict-ie: __VERSION__</title>
<style>
  body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #fafafa; }
  header { background: #263238; color: #fff; padding: 10px 24px; }
  header h1 { font-size: 18px; margin: 0; display: inline; }
  header .version { opacity: .75; margin-left: 12px; font-size: 13px; }
  main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; }
  textarea { width: 100%; box-sizing: border-box; min-height: 150px; font: inherit; padding: 8px; }
  button { font: inherit; padding: 6px 18px; margin: 8px 8px 8px 0; cursor: pointer; }
  .legend span { display: inline-block; margin: 2px 6px 2px 0; padding: 0 8px; border-radius: 3px; color: #fff;
                 font-size: 12px; font-weight: 600; }
  #article { background: #fff; border: 1px solid #ddd; padding: 14px 18px; white-space: pre-wrap; line-height: 2.1; }
  mark.ent { padding: 2px 3px; border-radius: 3px; border-bottom: 3px solid; color: inherit; }
  mark.ent .tag { font-size: 10px; font-weight: 700; color: #fff; border-radius: 2px; padding: 0 3px; margin-left: 4px;
                  vertical-align: 1px; }
  table { border-collapse: collapse; margin: 6px 0 18px; background: #fff; }
  th, td { border: 1px solid #ddd; padding: 3px 10px; text-align: left; font-size: 14px; }
  th { background: #eceff1; }
  .error { color: #b71c1c; font-weight: 600; }
  .muted { color: #777; }
  h2 { font-size: 16px; margin: 22px 0 4px; }
</style>
</head>
<body>
<header><h1>conflict-ie</h1><span class="version">model __VERSION__</span></header>
<main>
  <textarea id="text" placeholder="Paste a news article here"></textarea>
  <div><button id="go">Extract</button>
    <label id="keybox" hidden>API key <input id="key" type="password" size="30"></label>
    <span id="status" class="muted"></span></div>
  <div class="legend" id="legend"></div>
  <div id="out" hidden>
    <h2>Entities</h2><div id="article"></div>
    <h2>Relations</h2><div id="relations"></div>
    <h2>Casualties</h2><div id="casualties"></div>
  </div>
</main>
<script>
"use strict";
const LABELS = __LABELS__;
const AUTH = __AUTH__;
const $ = (id) => document.getElementById(id);
function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
function colour(label) { return (LABELS[label] || {}).color || "#888888"; }
for (const [name, info] of Object.entries(LABELS)) {
  const s = el("span", name, {title: info.description || ""}); s.style.background = info.color; $("legend").append(s);
}
if (AUTH) { $("keybox").hidden = false; $("key").value = sessionStorage.getItem("conflict-ie-key") || ""; }
function table(headers, rows) {
  if (!rows.length) return el("p", "none found", {class: "muted"});
  const t = el("table"), head = el("tr");
  headers.forEach((h) => head.append(el("th", h)));
  t.append(head);
  rows.forEach((r) => {
    const tr = el("tr"); r.forEach((c) => tr.append(el("td", c === null ? "–" : c))); t.append(tr);
  });
  return t;
}
function draw(pred) {
  const art = $("article"); art.replaceChildren();
  let at = 0;
  const ents = [...pred.entities].sort((a, b) => a.start - b.start);
  for (const e of ents) {
    if (e.start < at) continue;  // entities never overlap; be safe anyway
    art.append(document.createTextNode(pred.text.slice(at, e.start)));
    const m = el("mark", pred.text.slice(e.start, e.end), {class: "ent", "data-label": e.label,
      title: `${e.label} ${e.score.toFixed(2)}` +
        Object.entries(e.attributes || {}).map(([k, v]) => `, ${k}: ${v}`).join("")});
    m.style.background = colour(e.label) + "33"; m.style.borderColor = colour(e.label);
    const tag = el("span", e.label, {class: "tag"}); tag.style.background = colour(e.label);
    m.append(tag); art.append(m); at = e.end;
  }
  art.append(document.createTextNode(pred.text.slice(at)));
  $("relations").replaceChildren(table(["head", "relation", "tail", "score"], pred.relations.map((r) =>
    [r.head_text, r.symmetric ? r.label + " (both ways)" : r.label, r.tail_text, r.score.toFixed(2)])));
  $("casualties").replaceChildren(table(["figure", "count", "type", "location", "perpetrator"],
    pred.casualties.map((c) => [c.text, c.count_min === c.count_max ? c.count_min :
      `${c.count_min ?? "?"}–${c.count_max ?? "?"}${c.approximate ? " (approx.)" : ""}`, c.casualty_type, c.location,
      c.perpetrator])));
  $("out").hidden = false;
  const n = (k, one, many) => `${k} ${k === 1 ? one : many}`;
  $("status").textContent = [n(pred.entities.length, "entity", "entities"), n(pred.relations.length, "relation",
    "relations"), n(pred.casualties.length, "casualty record", "casualty records")].join(", ");
  document.body.setAttribute("data-done", "1");
}
async function run() {
  const text = $("text").value;
  if (!text.trim()) { $("status").textContent = "paste an article first"; return; }
  $("status").className = "muted"; $("status").textContent = "working…";
  const headers = {"Content-Type": "application/json"};
  if (AUTH && $("key").value) { headers["Authorization"] = "Bearer " + $("key").value;
    sessionStorage.setItem("conflict-ie-key", $("key").value); }
  try {
    const r = await fetch("predict", {method: "POST", headers, body: JSON.stringify({text})});
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    $("status").className = "muted"; draw(body);
  } catch (err) {
    $("status").className = "error"; $("status").textContent = "error: " + err.message;
    document.body.setAttribute("data-done", "error");
  }
}
$("go").addEventListener("click", run);
const given = new URLSearchParams(location.search).get("text");
if (given) { $("text").value = given; run(); }
</script>
</body>
</html>
"""


def render_page(schema: LabelSchema, version: str, *, auth: bool = False) -> str:
    """The page's HTML for a model of ``schema`` named ``version``.

    Example:
        >>> page = render_page(LabelSchema.load("conflict"), "demo-1234abcd")
        >>> '"LOCATION": {"color": "#2ca02c"' in page, "<title>conflict-ie: demo-1234abcd</title>" in page
        (True, True)
    """
    labels = {e.label: {"color": e.color or "#888888", "description": e.description or ""} for e in schema.entities}
    # JSON inside <script>: escape "<" so that no label text can close the script element.
    as_js = json.dumps(labels, ensure_ascii=False).replace("<", "\\u003c")
    return (_PAGE.replace("__LABELS__", as_js).replace("__AUTH__", "true" if auth else "false")
            .replace("__VERSION__", html.escape(version)))
