"""The MIL anomaly-scoring head of Sultani et al. (CVPR 2018): per-segment feature -> anomaly score in [0, 1].

Layout (their Keras model): FC in_dim -> 512, ReLU, dropout 0.6; FC 512 -> 32 (no activation), dropout
0.6; FC 32 -> 1, sigmoid; Glorot-normal weights, zero biases. The paper's baseline reads 4096-d C3D
features (`in_dim=4096`); synthact's anomaly task reads 512-d X-CLIP-B/32 features (`in_dim=512`). The
hidden widths and the dropout are configurable.
"""

from __future__ import annotations

import torch
from torch import nn


class MILHead(nn.Module):
    """Scores every segment of a bag independently.

    Args:
        in_dim: feature size D of the cached segment features (512 for X-CLIP-B/32, 4096 for C3D fc6).
        hidden_dims: widths of the hidden layers; a ReLU follows the first only (as in Sultani et al.).
        dropout: dropout after every hidden layer (0.6 in the paper).
    """

    def __init__(self, in_dim: int = 512, hidden_dims: tuple[int, ...] = (512, 32), dropout: float = 0.6):
        super().__init__()
        if in_dim < 1 or any(h < 1 for h in hidden_dims):
            raise ValueError(f"MILHead: in_dim and hidden_dims must be positive, got {in_dim} and {hidden_dims}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MILHead: dropout must be in [0, 1), got {dropout}")
        self.in_dim = in_dim
        layers: list[nn.Module] = []
        width = in_dim
        for i, hidden in enumerate(hidden_dims):
            layers.append(nn.Linear(width, hidden))
            if i == 0:
                layers.append(nn.ReLU())
            layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_normal_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, S, D) segment features -> (B, S) anomaly scores in [0, 1]."""
        return torch.sigmoid(self.layers(features)).squeeze(-1)  # (B, S, 1) -> (B, S)
