import time

import torch  # noqa: F401 (a real script imports it; the line numbers matter)

print("about to hang", flush=True)
while True:
    time.sleep(0.1)  # line 7
