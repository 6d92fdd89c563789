"""Portfolios written in bulk: the synthetic seed, the demo borrowers and the CSV importer.

They write the loan API's tables directly, for speed, but with the API's own rules
(:mod:`api.loans.rules`, :mod:`api.payments.service`), so they sit above ``api/`` and below the
``kopa`` command that runs them.
"""
