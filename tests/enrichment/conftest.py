from tests.peers.conftest import fake_model  # noqa: F401  (shared fixture)
