"""Staff accounts (admin, marketer, agent) and their passwords."""
