"""qa.report.load reads results with DuckDB (fast, SQL over JSON); the fields it requires must be fields of the
one record type, qa.grade.Grade, so the two cannot drift apart."""

from __future__ import annotations

from qa.grade import FIELDS, NESTED
from qa.report.load import FIELDS as REPORT_FIELDS
from qa.report.load import NESTED as REPORT_NESTED


def test_report_load_fields_are_grade_fields():
    assert set(REPORT_FIELDS) <= set(FIELDS)
    assert set(REPORT_NESTED) <= set(NESTED)
