// Catalog library: filled in by its issue.
