"""The config file: `model` is the pure core (pydantic models, loading and validation, every
error naming key and value), `quantity` reads Kubernetes quantities, and `store` is the loop
that polls the file and swaps in a new config only when it is valid.
"""
