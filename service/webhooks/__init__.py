"""Webhook delivery: signing, the guarded HTTP sender, and the workers that drain the outbox."""
