"""The callback queue: call tasks for unhappy customers, claims, outcomes and SLAs."""
