"""NLU benchmark: Kopa's pipeline against Rasa's default one (run ``python -m bench.nlu``)."""
