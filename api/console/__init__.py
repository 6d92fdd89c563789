"""The officers' web console: server-rendered pages under ``/console`` on the loan API.

Officers sign in with an email and a password (Argon2 hashes on :class:`api.branches.models.
Officer`), hold a server-side session (:mod:`api.console.models`), and work the same cases the
chat buttons work, through :mod:`api.cases.officers`: the console adds pages, not rules.
"""
