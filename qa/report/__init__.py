"""``qa report``: graded results (docs/results.md) → KPIs against thresholds, score distributions, agents'
weakest dimensions and findings, a follow-up list; as a self-contained HTML page and CSV files.
"""

from qa.report.build import Report, build_report

__all__ = ["Report", "build_report"]
