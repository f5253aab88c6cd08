"""The admission core: one AdmissionReview in, one decision out.

`review` parses and answers AdmissionReviews, `decide` is the pure core (the kinds table and
the dispatch to webhook.policies), `patch` builds the JSONPatch of the mutating answer.
"""
