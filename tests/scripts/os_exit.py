import os

import torch  # noqa: F401 (a real script imports it; the line numbers matter)

os._exit(3)
