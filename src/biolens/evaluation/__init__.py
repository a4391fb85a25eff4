"""Metrics and reports for trained classifiers."""
