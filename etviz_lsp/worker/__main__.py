"""``python -m etviz_lsp.worker FD [--warm-up]``: the warm worker (see ``zygote``)."""

import sys

from etviz_lsp.worker.zygote import main

raise SystemExit(main(sys.argv[1:]))
