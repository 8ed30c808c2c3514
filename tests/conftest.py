import os

# No network at test time: a hub tag fails at once instead of retrying (design.md §5).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app, launched for one test module (the API and the browser tests): (url, resources)."""
    from tests.test_app_api import launch_for_tests  # lazily: it configures gradio's environment on import

    demo, url, resources = launch_for_tests(tmp_path_factory)
    yield url, resources
    demo.close()
