"""Analysis tier: statistics, fronts and summaries computed from the loaded tables."""
