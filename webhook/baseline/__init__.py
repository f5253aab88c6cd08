"""The tenant baseline: the objects every tenant namespace gets, kept in place.

`templates` (the kinds and `${...}` substitution) and `desired` (every object of every tenant
namespace) are the pure core; `reconciler` is the loop that applies them, its API calls being
webhook.baseline.api and its one-replica-at-a-time Lease webhook.baseline.lease.
"""
