"""Background work on RQ: the Redis connection, queue names, the job shells and the periodic tick."""
