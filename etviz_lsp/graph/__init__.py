"""Conversion: programs in, Model Explorer graph collections out.

Knows torch.fx, ExecuTorch program types and the ``.pt2`` archive; knows nothing of
servers, editors or watched files.
"""
