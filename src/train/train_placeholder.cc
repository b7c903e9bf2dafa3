// Replaced by the training sources.
