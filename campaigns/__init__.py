"""Campaign definitions, the scheduler (due → outbox), guard-rails, sending, replies and measurement."""
