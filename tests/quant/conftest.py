import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: one torch thread avoids oversubscribing the shared cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
