"""Data intake: POS CSV files and API batches, validated per row and merged idempotently by external id."""
