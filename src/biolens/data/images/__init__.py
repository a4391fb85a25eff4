"""Image data: sources (folders, manifests, bundled sets), decoding, the decode-once cache, splits and batches."""
