"""The servers every part of the suite may use: Redis (shared, private and a cluster),
PostgreSQL, MariaDB and moto's S3 server; see tests/servers/."""

pytest_plugins = ["tests.servers.redis", "tests.servers.s3", "tests.servers.sql"]
