"""Risk prioritisation: a points scorecard per open loan, for officers only (issue 17)."""
