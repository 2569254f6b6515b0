"""README's promises: the two set-up commands, and the PyTorch snippet that loads a saved model."""

import re
from pathlib import Path

import numpy as np
import pytest

from core import lstm, task
from core.session import save_session

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_names_the_two_commands():
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    assert [block.strip() for block in blocks] == ['pip install . && lstm-explorer', 'pip install ".[test]" && pytest']


def test_readme_pytorch_snippet_loads_a_saved_session(tmp_path, monkeypatch, learning_lstm):
    torch = pytest.importorskip("torch")
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", README, flags=re.S)
                   if "load_state_dict" in block)
    trainer = learning_lstm  # part-way through learning: weights far from their initial values
    save_session(tmp_path / "model.npz", trainer)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(snippet, namespace)  # the README's code, as a user would paste it
    a, b = task.sample_operands(np.random.default_rng(0), 64, 8)
    x, _ = task.make_batch(a, b, 8)
    with torch.no_grad():
        torch_probs = namespace["model"](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(torch_probs, lstm.forward(trainer.params, x)[0], rtol=0, atol=1e-10)
