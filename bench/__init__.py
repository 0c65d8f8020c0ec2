"""Load tests: ghz configs (bench/ghz/), their data from a seeded database, `make bench`."""
