"""Run folders as portable model bundles, and prediction."""
