"""seqkit's tests: a package, so that `tests.helpers` imports however pytest is started."""
