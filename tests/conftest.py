"""Shared pytest configuration: slow tests are opt-in (``--run-slow``)."""
import pytest


def pytest_addoption(parser):
    parser.addoption('--run-slow', action='store_true', default=False,
                     help='also run tests marked slow')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long-running test')


def pytest_collection_modifyitems(config, items):
    if config.getoption('--run-slow'):
        return
    skip_slow = pytest.mark.skip(reason='slow: run with --run-slow')
    for item in items:
        if 'slow' in item.keywords:
            item.add_marker(skip_slow)
