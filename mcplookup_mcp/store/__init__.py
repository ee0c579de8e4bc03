"""PostgreSQL and Redis: the repository, its named SQL, migrations, the embedded server. Imports core only."""
