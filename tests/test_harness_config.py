"""The full effective configuration is collected from the objects, never typed by hand."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.config import collect


@dataclass
class _Cfg:
    lr: float = 1e-3
    l1_penalty: float = 2.0
    activation: str = "relu"


class _Trainer:
    def __init__(self, sae: torch.nn.Module, lr: float, l1_penalty: float, ortho_alpha: float):
        self.sae, self.lr, self.l1_penalty = sae, lr, l1_penalty
        self.ortho_alpha = ortho_alpha  # a hyperparameter an idea added
        self.optimizer = torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.99))
        self._private = 7


class _SAE(torch.nn.Module):
    def __init__(self, d_in: int, d_sae: int, n_groups: int = 4):
        super().__init__()
        self.d_in, self.d_sae, self.n_groups = d_in, d_sae, n_groups
        self.W_dec = torch.nn.Parameter(torch.zeros(d_sae, d_in))


def test_new_hyperparameters_are_collected_without_being_declared() -> None:
    sae = _SAE(4, 16, n_groups=8)
    config = collect(_Cfg(), _Trainer(sae, 1e-3, 2.0, ortho_alpha=0.1), sae)
    assert config["ortho_alpha"] == 0.1
    assert config["n_groups"] == 8
    assert config["l1_penalty"] == 2.0 and config["activation"] == "relu"
    assert config["optimizer"] == "Adam" and config["optimizer_betas"] == [0.9, 0.99]


def test_tensors_modules_and_private_attributes_are_left_out() -> None:
    sae = _SAE(4, 16)
    config = collect(_Trainer(sae, 1e-3, 2.0, 0.0), sae)
    assert "sae" not in config and "W_dec" not in config and "_private" not in config
    assert "training" not in config and "optimizer_lr" not in config


def test_a_trainer_disagreeing_with_the_config_is_recorded_not_hidden() -> None:
    sae = _SAE(4, 16)
    config = collect(_Cfg(l1_penalty=2.0), _Trainer(sae, 1e-3, 5.0, 0.0))
    assert config["l1_penalty"] == 2.0
    assert config["_Trainer.l1_penalty"] == 5.0
