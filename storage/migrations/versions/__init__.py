"""Migration scripts, applied in order by Database.migrate()."""
