"""The in-server audit: what already exists, judged off the request path.

`judging` is the pure core (stored objects in, violations and PolicyReports out); `auditor`
is the loop (passes, pacing, the gauge, the reports), reading the audit's watch caches
(webhook.audit.watches) and writing through webhook.audit.reports.
"""
