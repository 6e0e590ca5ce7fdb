"""The cluster tests run on one process under ``make test`` (pytest-xdist, ``--dist loadgroup``):
some kill or reshard the session's cluster, which a test on another process would see mid-run.
pytest-xdist groups by a suffix it adds to each node id; a pytest release that changed how
node ids are stored (9.2) dropped the suffixes, and every group fell apart without a word."""

import pytest


def test_each_cluster_test_is_in_the_cluster_group(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("runs on an xdist process of `--dist loadgroup` (make test)")
    assert request.node.nodeid.endswith("@cluster"), request.node.nodeid
