"""Database access: schema, migrations, the write path, rollups and their checks."""
