// Gateway library: filled in by its issue.
