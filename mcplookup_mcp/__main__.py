from mcplookup_mcp.cli import main

raise SystemExit(main())
