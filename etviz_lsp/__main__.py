from etviz_lsp.cli import main

raise SystemExit(main())
