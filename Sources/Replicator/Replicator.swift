// Replicator library: filled in by its issue.
