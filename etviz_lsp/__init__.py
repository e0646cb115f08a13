"""etviz-lsp: torch.export / ExecuTorch programs as Model Explorer graphs in your editor."""

__version__ = "0.1.0"
