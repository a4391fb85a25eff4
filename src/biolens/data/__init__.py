"""Reading, encoding, filtering, splitting and batching input data."""
