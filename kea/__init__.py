"""The Ketamine Evidence Atlas application: wires crawler/, pipeline/ and dashboard/ from the top.

The layers below never import this package: ``crawler`` fetches, ``pipeline`` parses,
stores, classifies and reads, ``dashboard`` displays through ``pipeline.query``. The
import contracts in pyproject.toml (checked by ``make test``) hold them to it.
"""
