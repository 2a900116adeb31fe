"""The inline stylesheet and script of ``report.html`` (no file, font or URL outside the page)."""

from __future__ import annotations

# The page may load nothing: styles and scripts only inline, images only as data: URIs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
)

CSS = """
:root { --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa;
  --pass: #1a7f37; --fail: #cf222e; --warn: #9a6700; --inconclusive: #8250df; --info: #57606a; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.4;
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 12px 20px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 6px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
nav { font-size: 13px; margin: 8px 0 0; }
nav a { margin-right: 12px; }
a { color: #0969da; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 6px; text-align: left;
  vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.reason, td.message { overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.status { font-weight: 700; white-space: nowrap; }
.s-pass { color: var(--pass); } .s-fail { color: var(--fail); } .s-warn { color: var(--warn); }
.s-inconclusive { color: var(--inconclusive); } .s-info, .s-skipped { color: var(--info); }
.s-error { color: var(--fail); } .s-ok { color: var(--pass); }
tr.row-fail td:first-child { border-left: 4px solid var(--fail); }
tr.row-warn td:first-child { border-left: 4px solid var(--warn); }
tr.row-inconclusive td:first-child { border-left: 4px solid var(--inconclusive); }
td.target { white-space: nowrap; }
table.compact { width: auto; min-width: 50%; }
#verdict { border: 2px solid var(--line); border-left-width: 10px; border-radius: 6px;
  padding: 10px 16px; margin: 0 0 8px; background: var(--soft); max-height: 860px;
  overflow: auto; }
#verdict[data-verdict="PASS"] { border-color: var(--pass); }
#verdict[data-verdict="WARN"] { border-color: var(--warn); }
#verdict[data-verdict="FAIL"] { border-color: var(--fail); }
#verdict .word { font-size: 30px; font-weight: 800; letter-spacing: 0.03em; margin-right: 12px; }
#verdict .where { font-size: 17px; }
#verdict .summary { margin: 6px 0 2px; overflow-wrap: anywhere; }
#verdict .facts { color: var(--muted); font-size: 13px; }
#verdict ul.reasons { margin: 6px 0 0; padding-left: 20px; }
#verdict ul.reasons li { margin: 2px 0; overflow-wrap: anywhere; }
.notice { border: 1px solid var(--fail); background: #ffebe9; padding: 6px 10px;
  border-radius: 4px; margin: 6px 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0;
  font-size: 13px; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
section.check { border-top: 1px solid var(--line); margin-top: 18px; }
h2 + section.check { border-top: none; margin-top: 0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart { margin: 6px 0; padding: 6px; border: 1px solid var(--line); border-radius: 4px;
  flex: 1 1 480px; max-width: 660px; background: #fff; }
figure.chart svg { width: 100%; height: auto; display: block; }
figure.chart figcaption { font-size: 12.5px; color: var(--muted); margin-top: 4px; }
figure.chart[data-status="fail"] { border-color: var(--fail); }
figure.chart[data-status="warn"] { border-color: var(--warn); }
.filters { display: flex; gap: 10px; align-items: center; margin: 4px 0; font-size: 13px; }
.filters input { min-width: 240px; }
tr[hidden] { display: none; }
"""

# Findings filters: a severity floor and a text match over each row. Without a script the
# controls stay hidden and every row is shown.
JS = """
(function () {
  function apply(block) {
    var floor = Number(block.querySelector('select').value);
    var words = block.querySelector('input').value.trim().toLowerCase();
    var shown = 0, rows = block.querySelectorAll('tbody tr[data-severity]');
    rows.forEach(function (row) {
      var keep = Number(row.getAttribute('data-rank')) >= floor &&
        (!words || row.textContent.toLowerCase().indexOf(words) !== -1);
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    block.querySelector('.count').textContent = shown + ' of ' + rows.length + ' shown';
  }
  document.querySelectorAll('.findings').forEach(function (block) {
    var controls = block.querySelector('.filters');
    if (!controls) { return; }
    controls.hidden = false;
    block.querySelector('select').addEventListener('change', function () { apply(block); });
    block.querySelector('input').addEventListener('input', function () { apply(block); });
    apply(block);
  });
})();
"""
