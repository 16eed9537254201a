"""The test suites; `tests.support` holds helpers shared by several test modules."""
