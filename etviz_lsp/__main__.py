from etviz_lsp.cli import run

run()
