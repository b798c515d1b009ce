"""SQL over the ``results`` table: KPIs by group, score histogram, agents' dimensions and findings, warnings.

KPIs follow qa/kpis.py (docs/metrics.md) exactly, recomputed from each record's ``timing`` and ``rating``.
Missing shop/agent read ``-`` and a missing day ``unknown``, as in ``qa metrics``. A conversation id read twice
(in two files, or twice in one) counts once: its first record is kept (docs/ingest.md).
"""

from __future__ import annotations

from typing import Any

import duckdb

# grouping(shop, agent, day) bit mask → level name
LEVELS = {7: "all", 3: "shop", 1: "agent", 2: "day", 6: "all_day"}
LEVEL_ORDER = ("all", "shop", "agent", "day", "all_day")

_CONV = """CREATE OR REPLACE TEMP VIEW conv AS
WITH base AS (
  SELECT file, record, id, platform, coalesce(shop, '-') AS shop, coalesce(agent, '-') AS agent,
         coalesce(day, 'unknown') AS day, profile, score, band, failed, dimensions, findings,
         coalesce(TRY_CAST(timing->>'human_service' AS BOOLEAN), false) AS human,
         coalesce(TRY_CAST(timing->>'first_response_ok' AS BOOLEAN), false) AS first_ok,
         TRY_CAST(timing->>'first_response_s' AS DOUBLE) AS first_s,
         coalesce(TRY_CAST(timing->>'reply_runs' AS INTEGER), 0) AS runs,
         coalesce(TRY_CAST(timing->>'replies_ok' AS INTEGER), 0) AS runs_ok,
         coalesce(TRY_CAST(timing->>'unanswered_runs' AS INTEGER), 0) AS unanswered,
         coalesce(TRY_CAST(timing->'reply_delays_s' AS DOUBLE[]), []) AS delays,
         TRY_CAST(timing->>'responded_24h' AS BOOLEAN) AS responded,
         TRY_CAST(rating->>'stars' AS INTEGER) AS stars, rating->>'label' AS label
  FROM results QUALIFY row_number() OVER (PARTITION BY id ORDER BY rowid) = 1)
SELECT *,
  CASE WHEN stars IS NOT NULL THEN stars >= 4 WHEN label IS NOT NULL THEN label = '满意' END AS satisfied,
  CASE WHEN stars IS NOT NULL THEN stars <= 2 WHEN label IS NOT NULL THEN label = '失望' END AS dissatisfied,
  CASE WHEN label IS NOT NULL THEN label WHEN stars >= 4 THEN '满意' WHEN stars = 3 THEN '一般'
       WHEN stars IS NOT NULL THEN '失望' END AS review
FROM base"""

_KPIS = """SELECT grouping(shop, agent, day) AS g, shop, agent, day,
  count(*) AS conversations, count(*) FILTER (human) AS human_conversations, sum(runs) AS reply_runs,
  count(satisfied) AS rated, avg(score) AS mean_score, count(*) FILTER (failed) AS failed,
  histogram(profile) AS profiles,
  count(*) FILTER (human AND first_ok) / nullif(count(*) FILTER (human), 0) AS first_response_rate_2min,
  sum(runs_ok) / nullif(sum(runs), 0) AS reply_rate_3min,
  sum(list_sum(delays)) / nullif(sum(len(delays)), 0) AS avg_reply_s,
  count(*) FILTER (responded) / nullif(count(responded), 0) AS response_rate_24h,
  count(*) FILTER (satisfied) / nullif(count(satisfied), 0) AS satisfaction_rate,
  count(*) FILTER (dissatisfied) / nullif(count(satisfied), 0) AS dissatisfaction_rate,
  count(*) FILTER (review = '满意') / nullif(count(review), 0) AS good_review_rate
FROM conv GROUP BY GROUPING SETS ((), (shop), (shop, agent), (shop, day), (day))"""

_AGENTS = """SELECT shop, agent, count(*) AS conversations, avg(score) AS mean_score,
  median(score) AS median_score, min(score) AS min_score, max(score) AS max_score,
  count(*) FILTER (failed) AS failed, count(*) FILTER (band = '优秀') AS "优秀",
  count(*) FILTER (band = '良好') AS "良好", count(*) FILTER (band = '合格') AS "合格",
  count(*) FILTER (band = '不合格') AS "不合格"
FROM conv GROUP BY shop, agent ORDER BY shop, agent"""

_DIMS = """SELECT shop, agent, k AS dim, any_value(d->>'name') AS name,
  avg(TRY_CAST(d->>'level' AS DOUBLE)) AS mean_level,
  avg(TRY_CAST(d->>'weight' AS DOUBLE) - TRY_CAST(d->>'points' AS DOUBLE)) AS mean_lost
FROM (SELECT shop, agent, k, dimensions->k AS d
      FROM (SELECT shop, agent, dimensions, unnest(json_keys(dimensions)) AS k FROM conv))
GROUP BY shop, agent, k"""

_FINDINGS = """SELECT shop, agent, f->>'rule' AS rule, any_value(coalesce(f->>'name', f->>'rule')) AS name,
  any_value(f->>'severity') AS severity, count(DISTINCT (file, record)) AS conversations
FROM (SELECT shop, agent, file, record, unnest(CAST(findings AS JSON[])) AS f FROM conv)
WHERE f->>'rule' IS NOT NULL GROUP BY shop, agent, rule"""

_HISTOGRAM = """SELECT greatest(0, least(9, CAST(floor(score / 10) AS INTEGER))) AS bin, count(*) AS n
FROM conv GROUP BY bin"""

_WARNINGS = """WITH red AS (
  SELECT file, record, list(DISTINCT coalesce(f->>'name', f->>'rule') ORDER BY coalesce(f->>'name', f->>'rule'))
         AS red_lines, first(f->>'evidence' ORDER BY f->>'evidence') FILTER (WHERE f->>'evidence' <> '') AS evidence
  FROM (SELECT file, record, unnest(CAST(findings AS JSON[])) AS f FROM conv)
  WHERE f->>'severity' = 'red_line' GROUP BY file, record)
SELECT c.shop, c.agent, c.day, c.id, c.score, c.band, c.stars, c.label,
  c.failed OR red.red_lines IS NOT NULL AS red_line, coalesce(red.red_lines, []) AS red_lines, red.evidence,
  coalesce(c.stars <= 2, false) OR coalesce(c.label = '失望', false) AS bad_rating,
  c.human AND NOT c.first_ok AS slow_first, c.first_s AS first_response_s,
  list_max(c.delays) AS max_reply_s, len(c.delays) - c.runs_ok AS slow_replies, c.unanswered AS unanswered_runs,
  c.file
FROM conv c LEFT JOIN red USING (file, record)
WHERE c.failed OR red.red_lines IS NOT NULL OR coalesce(c.stars <= 2, false) OR coalesce(c.label = '失望', false)
   OR (c.human AND NOT c.first_ok) OR len(c.delays) > c.runs_ok OR c.unanswered > 0
ORDER BY red_line DESC, bad_rating DESC, c.score, c.shop, c.agent, c.id"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Define the ``conv`` view: one row per record with the flat figures the queries use."""
    con.execute(_CONV)


def duplicate_count(con: duckdb.DuckDBPyConnection) -> int:
    """Records left out because their id was already read."""
    return con.execute("SELECT count(*) - count(DISTINCT id) FROM results").fetchone()[0]


def kpi_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """One row per group, levels in LEVEL_ORDER; ``records_profile`` is the group's most frequent profile, of two as
    frequent the first by name (the same records give the same report in any order)."""
    rows = _rows(con, _KPIS)
    for r in rows:
        r["level"] = LEVELS[r.pop("g")]
        counts = r.pop("profiles") or {}
        r["records_profile"] = min(counts, key=lambda p: (-counts[p], p)) if counts else None
    order = {lvl: i for i, lvl in enumerate(LEVEL_ORDER)}
    return sorted(rows, key=lambda r: (order[r["level"]], r["shop"] or "", r["agent"] or "", r["day"] or ""))


def agent_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return _rows(con, _AGENTS)


def dimension_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return _rows(con, _DIMS)


def finding_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return _rows(con, _FINDINGS)


def histogram(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Conversations per score bin of 10: [0, 10), …, [80, 90), [90, 100]."""
    counts = [0] * 10
    for b, n in con.execute(_HISTOGRAM).fetchall():
        counts[b] = n
    return counts


def warning_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Conversations to follow up: red lines, 失望 / 1–2★ ratings, slow or missing replies."""
    return _rows(con, _WARNINGS)
