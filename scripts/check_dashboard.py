"""Sanity checks of the Grafana dashboard and of the metric names in PromQL expressions.

Usage: check_dashboard.py DASHBOARD.json ALERTS.yml SOURCE_DIR [RUNBOOKS.md]

Fails (exit 1, one line per problem) when the dashboard is not a loadable Grafana dashboard
(JSON, uid, title, schemaVersion, panels with unique ids inside the 24-column grid, not
overlapping, each query with an expression and a refId) or when an expression of the
dashboard or of an alert names a metric that no `metrics::counter!/gauge!/histogram!` call
in SOURCE_DIR emits. With RUNBOOKS.md, also when an alert rule lacks `severity: page` or
`severity: warning`, or a `runbook_url` of the form RUNBOOKS.md#anchor whose anchor is the id
of one of the file's headings (as GitHub and mdBook make it).
"""

import json
import pathlib
import re
import sys

# Metrics Prometheus itself attaches to every target.
SCRAPE_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and",
    "or", "unless", "inf", "nan",
}
PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "bargauge", "table", "state-timeline", "text", "heatmap"}


def emitted_metrics(source_dir):
    names = set()
    pattern = re.compile(r'metrics::(counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
    for path in pathlib.Path(source_dir).rglob("*.rs"):
        if "/tests/" in str(path) or "/target/" in str(path):
            continue
        for kind, name in pattern.findall(path.read_text(encoding="utf-8")):
            names.add(name)
            if kind == "histogram":
                names.update({name + "_bucket", name + "_sum", name + "_count"})
    return names


def metric_names(expr):
    """The metric names an expression selects (label matchers, ranges, groupings removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        word = match.group(0)
        following = expr[match.end():].lstrip()
        if following.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if match.start() > 0 and expr[match.start() - 1] in "$0123456789.":
            continue
        names.add(word)
    return names


def alert_expressions(path):
    """`expr:` values of a rules file (plain or folded YAML scalars), without a YAML library."""
    lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    exprs, index = [], 0
    while index < len(lines):
        line = lines[index]
        match = re.match(r"^(\s*)expr:\s*(.*)$", line)
        index += 1
        if not match:
            continue
        indent, value = len(match.group(1)), match.group(2).strip()
        if value in (">-", ">", "|", "|-"):
            parts = []
            while index < len(lines) and (not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent):
                parts.append(lines[index].strip())
                index += 1
            value = " ".join(parts)
        exprs.append(value)
    return exprs


def check_dashboard(dashboard, problems):
    for key, kind in (("uid", str), ("title", str), ("schemaVersion", int), ("panels", list)):
        if not isinstance(dashboard.get(key), kind):
            problems.append(f"dashboard: `{key}` missing or not a {kind.__name__}")
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    ids, cells, exprs = set(), {}, []
    for panel in dashboard.get("panels", []):
        title = panel.get("title", "?")
        where = f"panel {panel.get('id')} ({title})"
        if not isinstance(panel.get("id"), int) or panel["id"] in ids:
            problems.append(f"{where}: id missing or not unique")
        ids.add(panel.get("id"))
        if panel.get("type") not in PANEL_TYPES:
            problems.append(f"{where}: unknown type {panel.get('type')!r}")
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "xywh"):
            problems.append(f"{where}: gridPos needs integer x, y, w, h")
            continue
        if grid["x"] < 0 or grid["w"] < 1 or grid["h"] < 1 or grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: gridPos {grid} leaves the 24-column grid")
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in cells:
                    problems.append(f"{where}: overlaps {cells[(x, y)]}")
                    break
                cells[(x, y)] = where
            else:
                continue
            break
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no queries")
        ref_ids = [t.get("refId") for t in targets]
        if None in ref_ids or len(set(ref_ids)) != len(ref_ids):
            problems.append(f"{where}: every query needs its own refId")
        for target in targets:
            if not target.get("expr", "").strip():
                problems.append(f"{where}: a query has no expression")
            exprs.append((where, target.get("expr", "")))
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid", "")
            if uid.startswith("$") and uid.strip("${}") not in variables:
                problems.append(f"{where}: data source {uid} is not a dashboard variable")
            for variable in re.findall(r"\$(?!__)(\w+)", target.get("expr", "")):
                if variable not in variables:
                    problems.append(f"{where}: ${variable} is not a dashboard variable")
    return exprs


def heading_ids(markdown):
    """The anchors of a Markdown file's headings: lower case, punctuation dropped, spaces to '-'."""
    ids, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            text = match.group(1).lower()
            ids.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text)))
    return ids


def check_runbooks(alerts_path, runbooks_path, problems):
    """Every rule has a severity (page or warning) and a runbook_url pointing at a heading."""
    runbooks = pathlib.Path(runbooks_path)
    anchors = heading_ids(runbooks.read_text(encoding="utf-8"))
    text = pathlib.Path(alerts_path).read_text(encoding="utf-8")
    rules = re.split(r"^\s*- alert:\s*", text, flags=re.M)[1:]
    if not rules:
        problems.append(f"{alerts_path}: no alert rules found: the parser is broken")
    for rule in rules:
        name = rule.split()[0]
        severity = re.search(r"^\s*severity:\s*(\S+)", rule, flags=re.M)
        if not severity or severity.group(1).strip("'\"") not in ("page", "warning"):
            problems.append(f"{alerts_path}: {name}: severity must be page or warning")
        url = re.search(r"^\s*runbook_url:\s*(\S+)", rule, flags=re.M)
        if not url:
            problems.append(f"{alerts_path}: {name}: no runbook_url")
            continue
        target, _, anchor = url.group(1).strip("'\"").partition("#")
        if pathlib.PurePath(target).name != runbooks.name or anchor not in anchors:
            problems.append(f"{alerts_path}: {name}: runbook_url {url.group(1)} is no heading of {runbooks_path}")
    return len(rules)


def main(dashboard_path, alerts_path, source_dir, runbooks_path=None):
    problems = []
    try:
        dashboard = json.loads(pathlib.Path(dashboard_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"{dashboard_path}: not loadable: {error}")
        return 1
    exprs = check_dashboard(dashboard, problems)
    exprs += [(f"{alerts_path}", expr) for expr in alert_expressions(alerts_path)]
    if len(exprs) < 10:
        problems.append(f"only {len(exprs)} expressions found: the parser is broken")
    rules = check_runbooks(alerts_path, runbooks_path, problems) if runbooks_path else 0
    known = emitted_metrics(source_dir) | SCRAPE_METRICS
    for where, expr in exprs:
        for name in sorted(metric_names(expr) - known):
            problems.append(f"{where}: `{name}` is not a metric the code emits (in `{expr}`)")
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{dashboard_path}: {len(dashboard['panels'])} panels; {len(exprs)} expressions name only emitted metrics")
    if runbooks_path:
        print(f"{alerts_path}: {rules} rules, each with a severity and a runbook in {runbooks_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
