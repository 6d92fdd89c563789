"""Kopa's own Rasa NLU components, named in ``nlu/config.yml`` as ``components.<module>.<class>``.

Rasa imports them by that module path, so the directory that holds this package (``nlu/``) must be
on the Python path: Rasa adds its working directory, which is ``nlu/`` for ``kopa train`` and the
Docker image, and ``kopa.stack`` sets ``PYTHONPATH`` for ``rasa run``.
"""
