"""Governed test prompts (the scope's ``prompt | expect | cross`` table), context fit and
the token budget. ``probe.prompts.plugin`` plugs them into the spine's extension points."""
