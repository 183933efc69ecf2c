"""A user's own classifier for export_classifier.py --module standin_classifier:build."""

import torch


class SmallNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU())
        self.pool = torch.nn.AdaptiveAvgPool2d(1)   # r: 8 channels
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        x = self.pool(self.body(x))
        return self.fc(x.flatten(1))


def build() -> torch.nn.Module:
    torch.manual_seed(0)
    return SmallNet()
