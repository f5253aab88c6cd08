"""`tenant-guard analyze` and `audit`: manifests and cluster objects judged by decide().

`manifests` reads input into positioned documents, `judge` turns each object into the admission
requests the API server would send and keeps the answers, `report`, `sarif` and `junit` write
them, and `command` wires the two commands to files, config and cluster reads.
"""
