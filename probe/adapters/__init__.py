"""Adapters: the only modules of probe that touch another distribution's private names,
one module per library, each naming the versions it was read from and what it relies on.
Their contract tests (``tests/adapters``) run against the pinned versions and, in
``.ci/contracts-newest``, against the newest releases; ``tests/adapters/test_private_names.py``
fails if any other module of probe reaches into a library's private names."""
