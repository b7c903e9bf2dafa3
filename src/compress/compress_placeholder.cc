// Replaced by the compression sources.
