// CacheNode library: filled in by its issue.
