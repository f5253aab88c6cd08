"""Serving certificates: `authority` makes the CA and serving certificates and reloads them
live, `rotation` is the pure core (when to renew, which CAs a caBundle keeps), and `manager` is
the self-managed loop of `serve --manage-certs`, whose API calls are webhook.certificates.api.
"""
