"""Dispute review on top of the event store: reviewers' rulings (`decisions`), the evidence
bundle and its offline check (`bundle`), the day's results for the exam's records system
(`results`) and the result webhook (`webhook`). The HTTP API and the CLI call these; the
rules of a ruling themselves are pure and live in `khfsm.domain.review`.
"""
