"""Models fitted jointly (logistic regression, k-means), one package per analysis."""
