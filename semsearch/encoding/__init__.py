"""Text to vectors (layer 1): ``model_folder`` reads a sentence-transformers folder and fingerprints it,
``pooling`` pools token vectors, ``encoder`` batches, runs the model and normalises."""
