"""The officers' console in a real browser."""
