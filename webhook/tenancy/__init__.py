"""Who owns what: the tenancy view the policies read.

`view` is the pure core (namespaces to tenants, claims from the config), `hosts` normalises
and classifies host names, `snapshot` holds the immutable cache states swapped by reference,
`routing` says which kinds route which hostnames (for the live host index and the audit), and
`live` builds the view from the cluster's watch caches.
"""
